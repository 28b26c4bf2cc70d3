"""local/sigv4.py, the runner's stand-in for API Gateway's AWS_IAM check, on requests signed by
botocore against keys a real (in-process) moto server issued: what passes, and each refusal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local import sigv4
from local.aws import ACCOUNT_ID, MotoServer, client

URL = "http://127.0.0.1:8080/api/v1/applications?limit=5"


@pytest.fixture(scope="module")
def key() -> Iterator[dict[str, Any]]:
    with MotoServer() as moto:
        iam = client("iam", moto.endpoint)
        iam.create_user(UserName="alice")
        yield iam.create_access_key(UserName="alice")["AccessKey"]


def signed(key_id: str, secret: str, *, region: str = "us-east-1", service: str = "execute-api",
           body: bytes = b"", method: str = "GET") -> AWSRequest:
    request = AWSRequest(method=method, url=URL, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key_id, secret), service, region).add_auth(request)
    request.headers["Host"] = "127.0.0.1:8080"
    return request


def check(request: AWSRequest, body: bytes = b"", now: dt.datetime | None = None) -> sigv4.Identity:
    return sigv4.verify(request.method, URL, list(request.headers.items()), body, region="us-east-1",
                        account_id=ACCOUNT_ID, now=now)


def test_a_valid_signature_names_the_user(key: dict[str, Any]) -> None:
    who = check(signed(key["AccessKeyId"], key["SecretAccessKey"]))
    assert who.user_arn == f"arn:aws:iam::{ACCOUNT_ID}:user/alice" and who.access_key == key["AccessKeyId"]
    body = b'{"name": "x"}'
    assert check(signed(key["AccessKeyId"], key["SecretAccessKey"], body=body, method="POST"), body).user_arn


def test_each_refusal_has_api_gateways_message(key: dict[str, Any]) -> None:
    good = signed(key["AccessKeyId"], key["SecretAccessKey"], body=b"{}", method="POST")
    with pytest.raises(sigv4.SigV4Refused, match="signature we calculated does not match"):
        check(good, b'{"changed": true}')  # the body is signed
    with pytest.raises(sigv4.SigV4Refused, match="signature we calculated does not match"):
        check(signed(key["AccessKeyId"], "x" * 40))
    with pytest.raises(sigv4.SigV4Refused, match="security token included in the request is invalid"):
        check(signed("AKIAIOSFODNN7EXAMPLE", key["SecretAccessKey"]))
    with pytest.raises(sigv4.SigV4Refused, match="in region 'us-east-1', not 'eu-west-1/execute-api'"):
        check(signed(key["AccessKeyId"], key["SecretAccessKey"], region="eu-west-1"))
    with pytest.raises(sigv4.SigV4Refused, match="not 'us-east-1/s3'"):
        check(signed(key["AccessKeyId"], key["SecretAccessKey"], service="s3"))
    with pytest.raises(sigv4.SigV4Refused, match="Signature expired"):
        check(signed(key["AccessKeyId"], key["SecretAccessKey"]), now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    with pytest.raises(sigv4.SigV4Refused, match="Missing Authentication Token"):
        sigv4.verify("GET", URL, [("Authorization", "Bearer abc")], b"", region="us-east-1", account_id=ACCOUNT_ID)
    assert sigv4.error_type(sigv4.MISMATCH) == "InvalidSignatureException"
