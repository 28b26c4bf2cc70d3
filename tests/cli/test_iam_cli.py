"""An API deployed with ``ApiAuth=AWS_IAM``, through the ``gitferry`` console script against the
local stack: the CLI signs with SigV4 (``login --aws``) from credentials moto's IAM and STS
issued, the runner verifies them as API Gateway would (local/sigv4.py), the audit names the
principal ARN. (Its own module: one LocalWorld per process at a time, moto's state is global.)"""

from __future__ import annotations

import json
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.story import DEPLOYMENT, LocalWorld
from tests.cli.test_cli import OUTPUTS, Cli

# ---------------------------------------------------------------------------- IAM (SigV4)


@pytest.fixture(scope="module")
def iam_world() -> Iterator[LocalWorld]:
    with LocalWorld(api_auth="AWS_IAM") as w:
        w.stack.start_loop(schedule_interval=2)
        yield w


def aws_env(cli: Cli, tmp_path: Path, key_id: str, secret: str, session_token: str | None = None) -> None:
    """Only these credentials: nothing from this machine's AWS config."""
    for k in list(cli.env):
        if k.startswith("AWS_"):
            del cli.env[k]
    cli.env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
                    "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")})
    if session_token:
        cli.env["AWS_SESSION_TOKEN"] = session_token


def signed_get(world: LocalWorld, path: str, key_id: str, secret: str) -> Any:
    url = world.api.rstrip("/") + path
    request = AWSRequest(method="GET", url=url, headers={"Accept": "application/json"})
    SigV4Auth(Credentials(key_id, secret), "execute-api", "us-east-1").add_auth(request)
    with urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers.items())), timeout=60) as r:
        return json.loads(r.read())


def test_iam_auth_the_cli_signs_with_sigv4_and_the_audit_names_the_principal(
        iam_world: LocalWorld, tmp_path: Path) -> None:
    iam = iam_world.stack.resources.client("iam")
    user = iam.create_user(UserName="deployer")["User"]
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    cli = Cli(iam_world, tmp_path / "xdg")
    aws_env(cli, tmp_path, key["AccessKeyId"], key["SecretAccessKey"])

    # no signature: API Gateway's own 403 before any handler runs; a bearer token means nothing
    status, answer = iam_world.call("GET", "/api/v1/clusters", headers={"Authorization": "Bearer whatever"})
    assert status == 403 and answer == {"message": "Missing Authentication Token"}
    wrong = Cli(iam_world, tmp_path / "wrong")
    aws_env(wrong, tmp_path, key["AccessKeyId"], "0" * 40)
    refused = wrong("login", iam_world.api, "--aws")
    assert refused.code == 4 and "signature we calculated does not match" in refused.err
    unknown = Cli(iam_world, tmp_path / "unknown")
    aws_env(unknown, tmp_path, "AKIAIOSFODNN7EXAMPLE", key["SecretAccessKey"])
    assert "security token included in the request is invalid" in unknown("login", iam_world.api, "--aws").err
    assert cli("login", iam_world.api, "--aws", "--token", "x").code == 2

    out = cli.ok("login", iam_world.api, "--aws")
    assert "with AWS SigV4" in out
    config = tmp_path / "xdg" / "gitferry" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"server": iam_world.api, "auth": "aws", "region": "us-east-1"}

    cli.ok("cluster", "add", "local", "--kubeconfig", iam_world.kube.kubeconfig_path)
    repo = iam_world.git.make_repo("iamapp", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
    cli.ok("app", "create", "--name", "iamapp", "--repo", repo, "--path", "app", "--dest-server",
           iam_world.kube.url, "--dest-namespace", "iamapp", "--sync-option", "CreateNamespace=true")
    synced = cli("app", "sync", "iamapp", "--timeout", "120")
    assert synced.code == 0, synced.out + synced.err
    cli.ok("app", "wait", "iamapp", "--health", "--timeout", "120")

    events = signed_get(iam_world, "/api/v1/audit?limit=1000", key["AccessKeyId"], key["SecretAccessKey"])["items"]
    actors = {(e["action"], e["target"]): e["actor"] for e in events}
    assert actors[("app.sync", "iamapp")] == f"api:{user['Arn']}" == "api:arn:aws:iam::123456789012:user/deployer"
    assert actors[("cluster.register", "local")] == f"api:{user['Arn']}"

    # temporary credentials of an assumed role: its session token must come along, unchanged
    iam.create_role(RoleName="ci", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}]}))
    creds = iam_world.stack.resources.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/ci", RoleSessionName="pipeline")["Credentials"]
    role_cli = Cli(iam_world, tmp_path / "role")
    aws_env(role_cli, tmp_path, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    role_cli.ok("login", iam_world.api, "--aws")
    role_cli.ok("app", "refresh", "iamapp")
    events = signed_get(iam_world, "/api/v1/audit?limit=1000", key["AccessKeyId"], key["SecretAccessKey"])["items"]
    refreshes = [e["actor"] for e in events if e["action"] == "app.refresh" and e["target"] == "iamapp"]
    assert "api:arn:aws:sts::123456789012:assumed-role/ci/pipeline" in refreshes
    tampered = Cli(iam_world, tmp_path / "tampered")
    aws_env(tampered, tmp_path, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"][:-4] + "AAAA")
    assert tampered("login", iam_world.api, "--aws").code == 4

    # the webhook route keeps its own HMAC check (no SigV4): no secret configured is its 401
    status, _ = iam_world.push_webhook(repo, "0" * 40)
    assert status == 401
    for text in OUTPUTS:
        assert key["SecretAccessKey"] not in text and creds["SessionToken"] not in text
