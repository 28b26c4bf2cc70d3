"""End to end on the local stack: what an attack on gitferry tried, and how it is refused.

gitferry holds cluster-admin credentials for every cluster it deploys to, so each hole is
checked the way the attacker used it: through the API Gateway, the signed webhook and the
poll -> render -> diff -> apply handlers (moto server, kubesim, git over HTTP)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import yaml

from local.httpserver import LoopbackHTTPServer
from local.story import API_TOKEN, WEBHOOK_SECRET, LocalWorld, application, synced_healthy

POLL_REPO_TIMEOUT = 3


def configmap(value: str, name: str = "settings") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(extra_env={"POLL_REPO_TIMEOUT_SECONDS": str(POLL_REPO_TIMEOUT)}) as w:
        w.set_webhook_secret("github", WEBHOOK_SECRET)
        w.register_cluster("local")
        yield w


def _app(world: LocalWorld, name: str, repo: str, *, revision: str = "HEAD", path: str = "app",
         automated: bool = True) -> None:
    doc = yaml.safe_load(application(name, repo, world.kube.url, automated=automated, path=path, namespace=name))
    doc["spec"]["source"]["targetRevision"] = revision
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))


def _push(world: LocalWorld, repo: str, ref: str, sha: str) -> tuple[int, Any]:
    """A signed GitHub push delivery for any ref (a fresh delivery id each time)."""
    body = json.dumps({"ref": ref, "before": "0" * 40, "after": sha,
                       "repository": {"clone_url": repo, "html_url": repo.removesuffix(".git")}}).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return world.call("POST", "/webhooks/github", body, {
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature,
    })


def _live_value(world: LocalWorld, namespace: str) -> str:
    from kubernetes import client

    return client.CoreV1Api(world.k8s).read_namespaced_config_map("settings", namespace).data["value"]


def _conditions(world: LocalWorld, app: str) -> list[dict[str, Any]]:
    return world.status(app).get("conditions") or []


def _dead_letters(world: LocalWorld) -> dict[str, int]:
    return {q: world.stack.queue_depth(q) for q in world.stack.resources.queues if "DeadLetter" in q}


# --------------------------------------------------------------------------- webhooks


def test_a_replayed_old_push_does_not_roll_the_branch_back(world: LocalWorld) -> None:
    repo = world.git.make_repo("replay", {"app/cm.yaml": configmap("one")})
    first = world.git.rev_parse("replay", "HEAD")
    _app(world, "replay", repo, revision="main")  # tracks the branch by name
    world.tick()
    world.until("first commit synced", synced_healthy(world, "replay", first))
    second = world.git.commit("replay", {"app/cm.yaml": configmap("two")}, "two")
    status, answer = _push(world, repo, "refs/heads/main", second)
    assert status == 202, answer
    world.settle()
    world.until("second commit synced", synced_healthy(world, "replay", second))

    # The attacker re-sends the first push's signed body under a new delivery id.
    _app(world, "replay-head", repo)  # a second app on the same repository, tracking HEAD
    world.settle()
    seen = len(world.git.requests_for("replay"))
    status, answer = _push(world, repo, "refs/heads/main", first)
    assert status == 202, answer
    assert sorted(answer["queued"], key=lambda q: q["app"]) == [  # resolved from the repository
        {"app": "replay", "revision": second}, {"app": "replay-head", "revision": second}]
    ls_remotes = [r for r in world.git.requests_for("replay")[seen:] if r[1].endswith("/info/refs")]
    assert len(ls_remotes) == 1, ls_remotes  # one read of the repository for both apps
    world.settle()
    assert world.status("replay")["sync"]["revision"] == second
    assert _live_value(world, "replay") == "two"

    # A push to another branch moves neither the main app nor the HEAD app.
    feature = world.git.commit("replay", {"app/cm.yaml": configmap("feature")}, "wip", branch="feature")
    status, answer = _push(world, repo, "refs/heads/feature", feature)
    assert (status, answer["queued"]) == (202, [])


def test_a_branch_named_like_a_tracked_tag_does_not_deploy(world: LocalWorld) -> None:
    repo = world.git.make_repo("tagged", {"app/cm.yaml": configmap("released")})
    released = world.git.tag("tagged", "v1")
    _app(world, "tagged", repo, revision="v1")
    world.tick()
    world.until("tag synced", synced_healthy(world, "tagged", released))

    branch_tip = world.git.commit("tagged", {"app/cm.yaml": configmap("unreviewed")}, "evil", branch="v1")
    status, answer = _push(world, repo, "refs/heads/v1", branch_tip)
    assert status == 202, answer
    assert answer["queued"] == []
    world.settle()
    assert world.status("tagged")["sync"]["revision"] == released
    assert _live_value(world, "tagged") == "released"

    # Moving the tag itself is what moves the app.
    moved = world.git.tag("tagged", "v1", ref=branch_tip)
    status, answer = _push(world, repo, "refs/tags/v1", moved)
    assert answer["queued"] == [{"app": "tagged", "revision": moved}], answer
    world.settle()
    world.until("moved tag synced", synced_healthy(world, "tagged", moved))


# --------------------------------------------------------------------------- render


def test_kustomize_keys_in_any_case_cannot_leave_the_repository(world: LocalWorld) -> None:
    repo = world.git.make_repo("escape", {"app/kustomization.yaml": "RESOURCES: [../../other-checkout]\n",
                                          "app/cm.yaml": configmap("x")})
    _app(world, "escape", repo)
    world.tick()
    [condition] = _conditions(world, "escape")
    assert condition["type"] == "ComparisonError"
    assert "app/kustomization.yaml" in condition["message"]
    assert "resources '../../other-checkout' resolves outside the repository" in condition["message"]
    assert world.object_count("escape") == 0
    assert set(_dead_letters(world).values()) == {0}


def test_json_nested_ten_thousand_deep_is_a_condition_not_a_dead_letter(world: LocalWorld) -> None:
    repo = world.git.make_repo("deep", {"app/deep.json": "[" * 10_000 + "]" * 10_000})
    _app(world, "deep", repo)
    world.tick()
    [condition] = _conditions(world, "deep")
    assert condition["type"] == "ComparisonError"
    assert condition["message"].startswith("app/deep.json: nested deeper than")
    assert set(_dead_letters(world).values()) == {0}


# --------------------------------------------------------------------------- registration


@pytest.mark.parametrize("url", ["file:///srv/git/secret.git", "/var/task", "../other", "git://github.com/org/r.git"])
def test_repo_urls_other_than_http_or_ssh_are_refused_naming_the_field(world: LocalWorld, url: str) -> None:
    doc = yaml.safe_load(application("localpath", url, world.kube.url, automated=True))
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(doc))
    assert status == 400, answer
    assert answer["problems"][0].startswith("spec.source.repoURL: ")
    assert "not supported by gitferry" in answer["problems"][0]
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url})
    assert status == 400, answer
    assert answer["problems"][0].startswith("url: ")
    assert world.call("GET", "/api/v1/applications/localpath")[0] == 404


@pytest.mark.parametrize("name", ["../../etc", "/abs", "a/b", "UPPER", "has space", "x" * 200, "a..b"])
def test_cluster_names_must_be_dns_subdomains(world: LocalWorld, name: str) -> None:
    kubeconfig = open(world.kube.kubeconfig_path).read()
    status, answer = world.call("POST", "/api/v1/clusters", {"name": name, "kubeconfig": kubeconfig})
    assert status == 400, answer
    assert answer["problems"][0].startswith("name: ")
    assert name not in {c["name"] for c in world.api_ok("GET", "/api/v1/clusters")["items"]}
    secrets = world.stack.resources.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in secrets if "clusters/" in s["Name"] and s["Name"] != "gitferry/clusters/local/kubeconfig"]


def test_projects_other_than_default_are_refused(world: LocalWorld) -> None:
    doc = yaml.safe_load(application("projected", "https://git.example.com/r.git", world.kube.url, automated=True))
    doc["spec"]["project"] = "restricted"
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(doc))
    assert status == 400, answer
    assert answer["problems"] == ["spec.project: project 'restricted' is not supported by gitferry (AppProjects): "
                                  "use 'default'"]


# --------------------------------------------------------------------------- request bodies


def test_callers_body_mistakes_are_4xx_never_5xx(world: LocalWorld) -> None:
    status, answer = world.call("POST", "/api/v1/applications", b"apiVersion: \xff\xfe\n")
    assert status == 400, answer
    assert answer["problems"] == ["body: not UTF-8 text (invalid byte at offset 12)"]

    doc = yaml.safe_load(application("big", "https://git.example.com/r.git", world.kube.url, automated=True))
    doc["metadata"]["annotations"] = {"note": "x" * (8 * 1024 * 1024)}
    status, answer = world.call("POST", "/api/v1/applications", json.dumps(doc))
    assert status == 413, answer
    assert "larger than" in answer["message"]

    doc["metadata"]["annotations"] = {"note": "x" * (300 * 1024)}
    status, answer = world.call("POST", "/api/v1/applications", json.dumps(doc))
    assert status == 400, answer
    assert answer["problems"][0].startswith("metadata.annotations: Too long")

    del doc["metadata"]["annotations"]
    doc["spec"]["project"] = "p" * 1_000_000
    status, answer = world.call("POST", "/api/v1/applications", json.dumps(doc))
    assert status == 400, answer
    assert "not supported by gitferry (AppProjects)" in answer["problems"][0]
    assert len(json.dumps(answer)) < 1000  # the value is not echoed back

    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(7))
    status, answer = world.call("POST", "/api/v1/repositories", bomb)
    assert status == 400, answer
    assert "alias" in answer["problems"][0]


# --------------------------------------------------------------------------- audit


def test_audit_pages_with_a_cursor(world: LocalWorld) -> None:
    for i in range(7):
        # registration reads the repository first: local ones (this machine has no other network)
        url = world.git.make_repo(f"paged-{i}", {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"})
        world.api_ok("POST", "/api/v1/repositories", {"url": url})
    everything = world.api_ok("GET", "/api/v1/audit?limit=1000")
    assert "nextCursor" not in everything
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        answer = world.api_ok("GET", "/api/v1/audit?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert len(answer["items"]) <= 3
        seen.extend(answer["items"])
        pages += 1
        cursor = answer.get("nextCursor")
        if not cursor:
            break
    assert pages >= 3
    assert seen[:len(everything["items"])] == everything["items"][:len(seen)]
    assert len(seen) >= len(everything["items"]) >= 7
    status, answer = world.call("GET", "/api/v1/audit?cursor=bm90LWEtY3Vyc29y")
    assert status == 400 and answer["problems"][0].startswith("cursor: "), answer
    status, answer = world.call("GET", "/api/v1/audit?limit=0")
    assert status == 400 and answer["problems"][0].startswith("limit: "), answer


# --------------------------------------------------------------------------- tokens


def test_a_rotated_api_token_stops_working_within_the_bound(world: LocalWorld) -> None:
    assert world.call("GET", "/api/v1/clusters")[0] == 200  # the old token, now cached
    rotated = "rotated-" + uuid.uuid4().hex
    world.put_secret("gitferry/api-token", rotated)
    try:
        # The new token works at once (a mismatch re-reads the secret) ...
        status, _ = world.call("GET", "/api/v1/clusters", headers={"Authorization": f"Bearer {rotated}"})
        assert status == 200
        # ... and the old one stops within seconds, not after a five-minute cache.
        world.until("old token refused", lambda: world.call("GET", "/api/v1/clusters")[0] == 401,
                    timeout=30, tick=False)
    finally:
        world.put_secret("gitferry/api-token", API_TOKEN)
        world.until("token restored", lambda: world.call("GET", "/api/v1/clusters")[0] == 200,
                    timeout=30, tick=False)


# --------------------------------------------------------------------------- slow repositories


class _StallingHelmRepo:
    """A Helm repository that answers its first index request, then stalls every later one
    (what a hostile or overloaded repository looks like to the poll)."""

    INDEX = ("apiVersion: v1\nentries:\n  web:\n  - apiVersion: v2\n    name: web\n    version: 1.0.0\n"
             "    digest: " + "0" * 64 + "\n    urls: [web-1.0.0.tgz]\n")

    def __enter__(self) -> _StallingHelmRepo:
        self.release = threading.Event()
        self.server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler(self.release))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def _handler(self, release: threading.Event) -> type[BaseHTTPRequestHandler]:
        served = self.served = [0]
        index = self.INDEX.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                served[0] += 1
                if served[0] > 1:
                    release.wait(60)
                self.send_response(200 if self.path.endswith("index.yaml") else 404)
                self.send_header("Content-Length", str(len(index)))
                self.end_headers()
                self.wfile.write(index)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_stalling_repository_is_cut_off_and_does_not_hold_back_the_others(world: LocalWorld) -> None:
    with _StallingHelmRepo() as slow:
        doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "stalled"},
               "spec": {"source": {"repoURL": slow.url, "chart": "web", "targetRevision": "1.0.0"},
                        "destination": {"server": world.kube.url, "namespace": "stalled"}}}
        world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))
        repo = world.git.make_repo("neighbour", {"app/cm.yaml": configmap("one")})
        _app(world, "neighbour", repo)
        world.settle()
        second = world.git.commit("neighbour", {"app/cm.yaml": configmap("two")}, "two")

        world.tick()
        messages = [c["message"] for c in _conditions(world, "stalled")]
        assert f"Helm repository {slow.url} did not answer within {POLL_REPO_TIMEOUT}s; skipped this poll tick" \
            in messages, messages
        world.until("neighbour synced in the same ticks", synced_healthy(world, "neighbour", second), timeout=30)
        assert _live_value(world, "neighbour") == "two"


class _HungGitServer(_StallingHelmRepo):
    """Git repositories under one HTTP server that answer each repository's first request
    (404: the create's own look) and then hang every later one until released: a Git server
    that accepted the connection and went silent."""

    def _handler(self, release: threading.Event) -> type[BaseHTTPRequestHandler]:
        seen: set[str] = set()
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                repo = self.path.split("/info/refs")[0]
                with lock:
                    first = repo not in seen
                    seen.add(repo)
                if not first:
                    release.wait(60)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def test_more_hung_repositories_than_readers_do_not_starve_the_others(world: LocalWorld) -> None:
    """Each repository's read is bounded from its own start: when every reader of the tick is
    held by a hung server, the readers given up are replaced, and a repository queued behind
    them is still read in the same tick (its app syncs), while the hung ones are skipped."""
    from gitferry.poll import READ_WORKERS

    with _HungGitServer() as hung:
        hung_apps = [f"hung-{i:02d}" for i in range(READ_WORKERS + 2)]
        for name in hung_apps:
            _app(world, name, f"{hung.url}/{name}.git", automated=False)
        repo = world.git.make_repo("zz-behind-hung", {"app/cm.yaml": configmap("one")})
        _app(world, "zz-behind-hung", repo)  # sorts after the hung apps: read after them
        world.settle()
        world.until("zz-behind-hung synced", synced_healthy(world, "zz-behind-hung"), timeout=60, tick=False)
        second = world.git.commit("zz-behind-hung", {"app/cm.yaml": configmap("two")}, "two")

        before = len(world.git.requests_for("zz-behind-hung"))
        world.stack.tick("PollFunction")
        reads = [q for q in world.git.requests_for("zz-behind-hung")[before:] if "info/refs" in q[1]]
        assert len(reads) == 1, reads  # read once, in this tick
        world.settle()
        for name in hung_apps:
            messages = [c["message"] for c in _conditions(world, name)]
            assert f"Git repository {hung.url}/{name}.git did not answer within {POLL_REPO_TIMEOUT}s; " \
                   "skipped this poll tick" in messages, (name, messages)
        assert not [c for c in _conditions(world, "zz-behind-hung") if "did not answer" in c["message"]]
        world.until("zz-behind-hung synced at the new commit in the same tick",
                    synced_healthy(world, "zz-behind-hung", second), timeout=30, tick=False)
        assert _live_value(world, "zz-behind-hung") == "two"
    for name in hung_apps:
        world.api_ok("DELETE", f"/api/v1/applications/{name}?cascade=false")
    world.settle()
