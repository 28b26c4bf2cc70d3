"""Planted credentials of every kind gitferry is given (a repository password and a wrong one, a
real ssh private key for a repository served by Debian's sshd, the cluster's kubeconfig token,
the bootstrap API token and named admin / read-only tokens) go through a run driven by the
``gitferry`` CLI and the API: registrations refused and accepted, ssh and https syncs, token
create / list / revoke, a read-only caller refused. Then every place a person or an operator
reads is searched: every API answer, every CLI output, every audit entry, every log line the
handlers printed (DEBUG), every DynamoDB item and S3 object. The one exception is by design:
a token's value in the answer (and the CLI output) that creates it."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.sshd import SshServer
from local.story import DEPLOYMENT, LocalWorld, application, synced_healthy
from tests.cli.test_cli import GITFERRY

REPO_PASSWORD = "planted-pw-" + secrets.token_hex(8)
WRONG_PASSWORD = "planted-wrong-pw-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.stack.extra_env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"  # every level is searched
        token = "planted-api-" + secrets.token_urlsafe(18)
        w.put_secret("gitferry/api-token", token)
        w.api_token = token
        w.stack.start_loop(schedule_interval=2)
        yield w


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_no_planted_credential_is_shown_logged_or_audited(world: LocalWorld, tmp_path: Path, outcome: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the handlers' log records reach the root logger: keep them all
    answers: list[tuple[str, str]] = []
    outputs: list[tuple[str, str]] = []
    allowed: dict[str, str] = {}  # where -> the one token value that place may hold

    def call(method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or world.api_token}"}
        status, answer = world.call(method, path, body, headers=headers)
        answers.append((f"{method} {path} -> {status}", json.dumps(answer)))
        return status, answer

    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin:/bin"}

    def gitferry(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(GITFERRY), *args], env=env, capture_output=True, text=True, input=stdin,
                              timeout=180)
        outputs.append((f"gitferry {' '.join(args)}", proc.stdout + proc.stderr))
        return proc

    assert gitferry("login", world.api, "--token-stdin", stdin=world.api_token + "\n").returncode == 0
    assert gitferry("cluster", "add", "local", "--kubeconfig", world.kube.kubeconfig_path).returncode == 0
    kube_token = yaml.safe_load(Path(world.kube.kubeconfig_path).read_text())["users"][0]["user"]["token"]

    https = world.git.make_repo("leak-https", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")},
                                auth=("deploy", REPO_PASSWORD))
    assert gitferry("repo", "add", https, "--username", "deploy", "--password-stdin",
                    stdin=WRONG_PASSWORD + "\n").returncode == 7
    assert gitferry("repo", "add", https, "--username", "deploy", "--password-stdin",
                    stdin=REPO_PASSWORD + "\n").returncode == 0
    with SshServer(tmp_path / "sshd", world.git.root) as ssh:
        world.git.make_repo("leak-ssh", {"app/deployment.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.25")})
        key, hosts = tmp_path / "key", tmp_path / "known_hosts"
        key.write_text(ssh.private_key)
        hosts.write_text(ssh.known_hosts)
        assert gitferry("repo", "add", ssh.url("leak-ssh"), "--ssh-private-key-path", str(key),
                        "--ssh-known-hosts-path", str(hosts)).returncode == 0
        # a refused ssh registration (the key for an https URL) must not echo the key either
        call("POST", "/api/v1/repositories", {"url": https + "x", "sshPrivateKey": ssh.private_key})
        for name, url, ns in (("leak-https", https, "leak-https"), ("leak-ssh", ssh.url("leak-ssh"), "leak-ssh")):
            call("POST", "/api/v1/applications", application(name, url, world.kube.url, automated=False, path="app",
                                                             namespace=ns))
            assert gitferry("app", "sync", name, "--timeout", "120").returncode == 0
            world.until(f"{name} healthy", synced_healthy(world, name), timeout=120, tick=False)
        private_key = ssh.private_key

    status, created = call("POST", "/api/v1/tokens", {"name": "leak-viewer", "role": "readonly"})
    assert status == 201
    viewer = created["token"]
    allowed[answers[-1][0]] = viewer
    made = gitferry("token", "create", "leak-ci", "--role", "admin")
    assert made.returncode == 0
    ci = made.stdout.strip()
    allowed[outputs[-1][0]] = ci
    assert call("POST", "/api/v1/applications/leak-https/sync", token=viewer)[0] == 403
    assert call("POST", "/api/v1/applications/leak-https/refresh", token=ci)[0] == 202
    assert call("GET", "/api/v1/applications/leak-https", token=viewer + "x")[0] == 401
    for args in (("token", "list"), ("repo", "list", "-o", "yaml"), ("repo", "get", ssh.url("leak-ssh")),
                 ("repo", "get", https, "-o", "json"), ("cluster", "list", "-o", "json"), ("app", "get", "leak-ssh"),
                 ("app", "list", "-o", "json"), ("token", "rm", "leak-ci")):
        assert gitferry(*args).returncode == 0, args
    world.settle()
    for path in ("/api/v1/audit?limit=1000", "/api/v1/tokens", "/api/v1/repositories", "/api/v1/clusters",
                 "/api/v1/applications", "/api/v1/applications/leak-ssh", "/api/v1/applications/leak-https/history"):
        call("GET", path)

    plain = {"repository password": REPO_PASSWORD, "wrong repository password": WRONG_PASSWORD,
             "ssh private key": private_key.splitlines()[1], "ssh private key (end)": private_key.splitlines()[-2],
             "kubeconfig token": kube_token, "bootstrap API token": world.api_token,
             "read-only token": viewer, "admin token": ci}
    needles = {**plain, **{f"{k} (base64)": b64(v) for k, v in plain.items()}}
    places: list[tuple[str, str]] = [(f"API answer {w}", a) for w, a in answers]
    places += [(f"CLI output of {w}", o) for w, o in outputs]
    places += [(f"{inv.function} log/output", (inv.output or "") + (inv.error or "")) for inv in world.stack.invocations]
    res = world.stack.resources
    ddb = res.client("dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            places += [(f"DynamoDB {table} {it.get('pk', it.get('id'))}", json.dumps(it)) for it in page["Items"]]
    s3 = res.client("s3")
    bucket = res.physical["ManifestBucket"]
    for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        places.append((f"s3://{v['Key']}", body.decode(errors="replace")))
    audit = [e for w, a in answers if w.startswith("GET /api/v1/audit") for e in json.loads(a)["items"]]
    assert {e["actor"] for e in audit} >= {"api:admin", "api:leak-ci"}  # the trail was searched, and names callers
    records = [r for r in caplog.records if r.name.startswith("gitferry")]
    places += [(f"log record {r.name}:{r.lineno}", json.dumps({**r.__dict__, "message": r.getMessage()}, default=str))
               for r in records]
    assert len(records) > 20 and {r.levelname for r in records} >= {"INFO"}

    found = []
    for where, text in places:
        for what, needle in needles.items():
            if needle in text and not (allowed.get(where.split(" ", 2)[-1].removeprefix("of ")) == needle):
                found.append(f"{what} in {where}")
    # the allowed places hold their token exactly where it was meant to be shown
    assert viewer in dict(answers)[next(iter(k for k in allowed if k.startswith("POST /api/v1/tokens")))]
    outcome("planted credentials (8 kinds, plain + base64) via CLI + API", cases=len(places),
            result="none found" if not found else f"{len(found)} leaks")
    assert found == [], found
