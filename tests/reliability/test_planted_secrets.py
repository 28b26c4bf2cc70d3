"""Planted secrets: a repository password, an ssh key, the cluster's kubeconfig token, the API
token and a Secret's ``data`` / ``stringData`` go through a whole local-stack run (register,
render, diff, sync, a changed Secret, drift, a refused request), then every place gitferry
writes to is searched for them: API answers, the handlers' captured output at DEBUG level, every
S3 object version, every DynamoDB item, every SNS notification, the diffs and conditions
(in the answers). Only Secrets Manager may hold them."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.story import LocalWorld, application

REPO_PASSWORD = "planted-repo-pw-" + uuid.uuid4().hex[:12]
SSH_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
           + uuid.uuid4().hex + "\n-----END OPENSSH PRIVATE KEY-----\n")
DATA_VALUE = "planted-data-" + uuid.uuid4().hex[:12]
STRING_DATA = "planted-stringdata-" + uuid.uuid4().hex[:12]
CHANGED_VALUE = "planted-changed-" + uuid.uuid4().hex[:12]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_yaml(data_value: str, string_value: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"}, "type": "Opaque",
        "data": {"password": b64(data_value)},
        "stringData": {"token": string_value, "id_ed25519": SSH_KEY},
    })


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.stack.extra_env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"  # every level is searched
        yield w


def needles(world: LocalWorld) -> dict[str, str]:
    kubeconfig = yaml.safe_load(Path(world.kube.kubeconfig_path).read_text())
    kube_token = kubeconfig["users"][0]["user"]["token"]
    plain = {"repository password": REPO_PASSWORD, "ssh key": SSH_KEY.splitlines()[1],
             "kubeconfig token": kube_token, "API token": world.api_token,
             "Secret data": DATA_VALUE, "Secret stringData": STRING_DATA, "changed Secret value": CHANGED_VALUE}
    out = dict(plain)
    for what, value in plain.items():
        out[f"{what} (base64)"] = b64(value)
    return out


def find(haystack: str, where: str, found: list[str], world: LocalWorld) -> None:
    for what, needle in needles(world).items():
        if needle and needle in haystack:
            found.append(f"{what} in {where}")


def test_no_planted_secret_leaves_secrets_manager(world: LocalWorld, outcome: Any) -> None:
    answers: list[tuple[str, Any]] = []

    def call(method: str, path: str, body: Any = None) -> Any:
        code, answer = world.call(method, path, body)
        answers.append((f"{method} {path} -> {code}", answer))
        return answer

    queue = world.subscribe_notifications()
    server = world.register_cluster("local")
    url = world.git.make_repo("vault", {"app/secret.yaml": secret_yaml(DATA_VALUE, STRING_DATA),
                                        "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"},
                              auth=("deploy", REPO_PASSWORD))
    call("POST", "/api/v1/repositories", {"url": url, "username": "deploy", "password": REPO_PASSWORD})
    # an ssh key for an https URL is refused, and the refusal must not echo it
    refused = call("POST", "/api/v1/repositories", {"url": url + "x", "sshPrivateKey": SSH_KEY})
    assert "problems" in refused
    call("POST", "/api/v1/applications", application("vault", url, server, automated=True, path="app",
                                                     namespace="vault"))
    world.until("vault synced", lambda: (world.status("vault").get("operationState") or {}).get("phase")
                == "Succeeded")
    # a changed Secret (diff + sync), then drift on the live Secret (diff against a changed value)
    world.git.commit("vault", {"app/secret.yaml": secret_yaml(CHANGED_VALUE, STRING_DATA)}, "rotate")
    world.until("rotated", lambda: world.status("vault").get("sync", {}).get("status") == "Synced"
                and (world.status("vault").get("operationState") or {}).get("syncResult", {}).get("revision")
                == world.status("vault")["sync"]["revision"])
    from kubernetes import client

    client.CoreV1Api(world.k8s).patch_namespaced_secret("db-credentials", "vault",
                                                        {"stringData": {"token": "drifted-by-hand"}})
    world.api_ok("POST", "/api/v1/applications/vault/refresh")
    world.settle()
    for path in ("/api/v1/applications", "/api/v1/applications/vault", "/api/v1/applications/vault/resources",
                 "/api/v1/applications/vault/sync-results", "/api/v1/applications/vault/resource-tree",
                 "/api/v1/applications/vault/history", "/api/v1/clusters", "/api/v1/repositories",
                 "/api/v1/audit"):
        call("GET", path)
    live = client.CoreV1Api(world.k8s).read_namespaced_secret("db-credentials", "vault")
    assert base64.b64decode(live.data["password"]).decode() == CHANGED_VALUE  # the values did reach the cluster

    found: list[str] = []
    places = 0
    for where, answer in answers:
        find(json.dumps(answer), f"API answer {where}", found, world)
        places += 1
    for inv in world.stack.invocations:
        find((inv.output or "") + (inv.error or ""), f"{inv.function} output", found, world)
        places += 1
    res = world.stack.resources
    s3 = res.client("s3")
    bucket = res.physical["ManifestBucket"]
    versions = s3.list_object_versions(Bucket=bucket)
    assert versions.get("Versions"), "nothing in S3?"
    for v in versions.get("Versions", []):
        body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read().decode()
        find(body, f"s3://{v['Key']}", found, world)
        places += 1
    ddb = res.client("dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                find(json.dumps(item), f"DynamoDB {table} {item.get('pk', item.get('id'))}", found, world)
                places += 1
    notes = world.notifications(queue)
    assert notes, "no notification to search"
    for note in notes:
        find(json.dumps(note), "SNS notification", found, world)
        places += 1
    outcome("planted secrets (7 kinds, plain + base64)", cases=places,
            result="none found" if not found else f"{len(found)} leaks")
    assert found == []
