"""Engine test fixtures: real servers over real sockets.

- ``moto_endpoint``: one moto server (``ThreadedMotoServer(port=0)``) per test
  session; boto3 reaches it through ``endpoint_url`` with dummy credentials.
- ``table`` / ``bucket``: a fresh DynamoDB table (key schema of
  docs/engine-design.md) / S3 bucket per test, so tests never see each other.
- ``git_server``: one ``GitServer`` (real ``git http-backend``) per session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.gitserver import GitServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # Dummy credentials so nothing on this machine (or a developer's) is ever used.
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[k] = v
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_table(ddb: Any, name: str) -> None:
    """The single table of docs/engine-design.md: pk/sk plus GSI byType (type, name)."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "type", "AttributeType": "S"},
            {"AttributeName": "name", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byType",
                "KeySchema": [
                    {"AttributeName": "type", "KeyType": "HASH"},
                    {"AttributeName": "name", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@pytest.fixture
def ddb(moto_endpoint: str) -> Any:
    return aws_client("dynamodb", moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return aws_client("s3", moto_endpoint)


@pytest.fixture
def secretsmanager(moto_endpoint: str) -> Any:
    return aws_client("secretsmanager", moto_endpoint)


@pytest.fixture
def table(ddb: Any) -> str:
    name = f"gitferry-{uuid.uuid4().hex[:12]}"
    create_table(ddb, name)
    return name


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"gitferry-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("gitserver")) as server:
        yield server


@pytest.fixture
def git_cache(tmp_path: Path) -> Path:
    return tmp_path / "git-cache"


@pytest.fixture(autouse=True)
def _git_server_errors_fail_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A crash inside the git server's handler fails the test that caused it."""
    yield
    if "git_server" in request.fixturenames:
        server: GitServer = request.getfixturevalue("git_server")
        errors, server.errors[:] = list(server.errors), []
        assert not errors, "git server errors:\n" + "\n".join(errors)
