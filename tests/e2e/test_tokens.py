"""Named API tokens through API Gateway on the local stack: an admin creates read-only and admin
tokens, the value is shown once, a read-only token reads (and refreshes, as Argo CD's readonly
role does) but gets 403 on every write, the audit trail names the token, a revoked token is 401.
The revocation bound of a second warm Lambda is checked with its own token cache on a controlled
clock (no timing in the test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitferry import tokens
from gitferry.secrets import SecretStore
from gitferry.state import StateStore

from local.story import DEPLOYMENT, LocalWorld, application


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        repo = w.git.make_repo("tokapp", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
        w.api_ok("POST", "/api/v1/applications", application("tokapp", repo, w.kube.url, automated=False,
                                                              path="app", namespace="tokapp"))
        w.settle()
        yield w


def as_token(world: LocalWorld, token: str, method: str, path: str, body: object = None) -> tuple[int, object]:
    return world.call(method, path, body, headers={"Authorization": f"Bearer {token}"})


def audit_actors(world: LocalWorld, action: str, target: str) -> list[str]:
    items = world.api_ok("GET", "/api/v1/audit?limit=1000")["items"]
    return [e["actor"] for e in items if e["action"] == action and e["target"] == target]


@pytest.fixture(scope="module")
def viewer(world: LocalWorld) -> str:
    status, created = world.call("POST", "/api/v1/tokens", {"name": "viewer", "role": "readonly"})
    assert status == 201, created
    assert created["name"] == "viewer" and created["role"] == "readonly" and created["created"].endswith("Z")
    return str(created["token"])


def test_created_token_is_shown_once_and_listed_without_its_value(world: LocalWorld, viewer: str) -> None:
    listed = world.api_ok("GET", "/api/v1/tokens")["items"]
    rows = {t["name"]: t for t in listed}
    assert rows["admin"]["role"] == "admin" and rows["admin"]["bootstrap"] is True
    assert rows["viewer"]["role"] == "readonly" and set(rows["viewer"]) == {"name", "role", "created"}
    assert viewer not in json.dumps(listed) and world.api_token not in json.dumps(listed)
    # Secrets Manager keeps a hash, never the token
    sm = world.stack.resources.client("secretsmanager")
    stored = sm.get_secret_value(SecretId="gitferry/api-tokens/viewer")["SecretString"]
    assert viewer not in stored and json.loads(stored)["role"] == "readonly"
    assert audit_actors(world, "token.create", "viewer") == ["api:admin"]


def test_read_only_token_reads_and_refreshes_but_every_write_is_403(world: LocalWorld, viewer: str) -> None:
    for path in ("/api/v1/applications", "/api/v1/applications/tokapp", "/api/v1/applications/tokapp/history",
                 "/api/v1/applications/tokapp/resources", "/api/v1/clusters", "/api/v1/repositories",
                 "/api/v1/audit", "/api/v1/tokens"):
        status, answer = as_token(world, viewer, "GET", path)
        assert status == 200, (path, answer)
    status, answer = as_token(world, viewer, "POST", "/api/v1/applications/tokapp/refresh")
    assert status == 202, answer
    assert audit_actors(world, "app.refresh", "tokapp")[0] == "api:viewer"
    kubeconfig = Path(world.kube.kubeconfig_path).read_text()
    writes = [
        ("POST", "/api/v1/applications", application("other", "http://127.0.0.1:1/x.git", world.kube.url,
                                                     automated=False)),
        ("POST", "/api/v1/applications?upsert=true", application("tokapp", "http://127.0.0.1:1/x.git",
                                                                 world.kube.url, automated=False)),
        ("DELETE", "/api/v1/applications/tokapp", None),
        ("POST", "/api/v1/applications/tokapp/sync", None),
        ("POST", "/api/v1/applications/tokapp/rollback/1", None),
        ("POST", "/api/v1/clusters", {"name": "x", "kubeconfig": kubeconfig}),
        ("DELETE", "/api/v1/clusters/local", None),
        ("POST", "/api/v1/repositories", {"url": "https://example.com/r.git"}),
        ("DELETE", "/api/v1/repositories?url=https://example.com/r.git", None),
        ("POST", "/api/v1/tokens", {"name": "escalate", "role": "admin"}),
        ("DELETE", "/api/v1/tokens/viewer", None),
        ("PUT", "/api/v1/applications/tokapp", None),
        ("PATCH", "/api/v1/applications/tokapp", None),
    ]
    for method, path, body in writes:
        status, answer = as_token(world, viewer, method, path, body)
        assert status == 403, (method, path, status, answer)
        assert "read-only" in answer["message"] and "api:viewer" in answer["message"], answer
    names = [t["name"] for t in world.api_ok("GET", "/api/v1/tokens")["items"]]
    assert "escalate" not in names
    world.api_ok("GET", "/api/v1/applications/tokapp")  # still there: the DELETE did nothing


def test_admin_token_writes_and_the_audit_names_it(world: LocalWorld) -> None:
    status, created = world.call("POST", "/api/v1/tokens", {"name": "ci", "role": "admin"})
    assert status == 201, created
    ci = created["token"]
    status, answer = as_token(world, ci, "POST", "/api/v1/applications/tokapp/sync")
    assert status == 202, answer
    world.settle()
    assert audit_actors(world, "app.sync", "tokapp") == ["api:ci"]
    assert audit_actors(world, "app.create", "tokapp") == ["api:admin"]
    status, answer = as_token(world, ci, "DELETE", "/api/v1/tokens/ci")
    assert status == 200 and answer == {"revoked": "ci", "role": "admin"}
    assert audit_actors(world, "token.revoke", "ci") == ["api:ci"]
    # this warm Lambda forgot it at once
    status, answer = as_token(world, ci, "GET", "/api/v1/applications")
    assert status == 401, answer
    assert "ci" not in [t["name"] for t in world.api_ok("GET", "/api/v1/tokens")["items"]]


def test_token_requests_that_are_refused(world: LocalWorld, viewer: str) -> None:
    status, answer = world.call("POST", "/api/v1/tokens", {"name": "viewer", "role": "admin"})
    assert status == 409 and "already exists" in answer["message"]
    status, answer = world.call("POST", "/api/v1/tokens", {"name": "admin", "role": "admin"})
    assert status == 409 and "bootstrap" in answer["message"]
    status, answer = world.call("DELETE", "/api/v1/tokens/admin")
    assert status == 409 and "Secrets Manager" in answer["message"]
    status, answer = world.call("DELETE", "/api/v1/tokens/nobody")
    assert status == 404
    status, answer = world.call("POST", "/api/v1/tokens", {"name": "Bad_Name", "role": "owner", "ttl": 3})
    assert status == 400
    assert set(answer["problems"]) == {"ttl: unknown field", "name: must be a DNS-1123 label of at most 63 "
                                       "characters (lower case letters, digits and '-')",
                                       "role: must be one of admin, readonly"}
    for bad in (viewer + "x", "gft_viewer_" + "A" * 43, "gft_" + "n" * 70 + "_x", "gft_", "gft__x"):
        status, _ = as_token(world, bad, "GET", "/api/v1/applications")
        assert status == 401, bad


def test_a_revoked_token_stops_working_in_another_warm_lambda_within_the_cache_bound(world: LocalWorld) -> None:
    status, created = world.call("POST", "/api/v1/tokens", {"name": "soon-gone", "role": "readonly"})
    assert status == 201
    now = [1000.0]
    sm = world.stack.resources.client("secretsmanager")
    ddb = world.stack.resources.client("dynamodb")
    table = world.stack.resources.functions["ApiFunction"].environment["TABLE_NAME"]
    other = tokens.TokenStore(SecretStore("gitferry/", client=sm), StateStore(table, client=ddb), clock=lambda: now[0])
    header = f"Bearer {created['token']}"
    assert other.authenticate(header).actor == "api:soon-gone"
    world.api_ok("DELETE", "/api/v1/tokens/soon-gone")
    now[0] += tokens.CACHE_SECONDS - 0.1
    assert other.authenticate(header).role == "readonly"  # still cached: inside the documented bound
    now[0] += 0.2
    with pytest.raises(tokens.UnauthorizedError):
        other.authenticate(header)
