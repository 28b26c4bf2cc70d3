"""kubesim's EKS authentication mode against a real moto STS (local/motosts.py): every check
aws-iam-authenticator's Verify makes, the mapping, and the API server's 401 wording."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from gitferry import eks

from local.aws import MotoServer, client
from local.kubesim import eksauth
from local.kubesim.server import KubeSim

ACCOUNT = "123456789012"
WRITER = f"arn:aws:iam::{ACCOUNT}:role/gitferry-apply"
READER = f"arn:aws:iam::{ACCOUNT}:role/gitferry-reader"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as m:
        yield m


@pytest.fixture(scope="module")
def sim(moto: MotoServer) -> Iterator[KubeSim]:
    config = eksauth.EksAuthConfig(cluster_id="prod", sts_endpoints=[moto.endpoint], map_roles=[
        {"rolearn": WRITER, "username": "apply:{{SessionName}}", "groups": ["system:masters"]},
        {"rolearn": READER, "username": "reader-{{AccountID}}", "groups": ["viewers"]}])
    with KubeSim(eks_auth=config) as s:
        yield s


def _token(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, role: str, cluster: str = "prod",
           session: str = "worker") -> str:
    """A token exactly as gitferry makes it, signed with ``role``'s moto credentials."""
    creds = client("sts", moto.endpoint).assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    for key, value in (("AWS_ACCESS_KEY_ID", creds["AccessKeyId"]), ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"]),
                       ("AWS_SESSION_TOKEN", creds["SessionToken"]), ("AWS_ENDPOINT_URL", moto.endpoint)):
        monkeypatch.setenv(key, value)
    return eks.EksAccess(eks.EksTarget(cluster, "us-east-1")).token()


def _url(token: str) -> str:
    body = token[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _retoken(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for k, v in changes.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = v
    new = parts._replace(query=urlencode(query)).geturl()
    return "k8s-aws-v1." + base64.urlsafe_b64encode(new.encode()).decode().rstrip("=")


def _call(sim: KubeSim, token: str, method: str = "GET", path: str = "/api/v1/namespaces",
          body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cadata=sim.certs.ca_pem.decode())
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(sim.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_token_format_is_the_authenticators(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _token(moto, monkeypatch, WRITER)
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    parts = urlsplit(_url(token))
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}" == moto.endpoint and parts.path == "/"
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")


def test_mapped_roles_read_and_write_as_their_groups_allow(sim: KubeSim, moto: MotoServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _token(moto, monkeypatch, WRITER, session="apply-fn")
    assert _call(sim, writer)[0] == 200
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "eks-written"}}
    assert _call(sim, writer, "POST", "/api/v1/namespaces", ns)[0] == 201
    reader = _token(moto, monkeypatch, READER)
    assert _call(sim, reader)[0] == 200
    code, status = _call(sim, reader, "POST", "/api/v1/namespaces",
                         {**ns, "metadata": {"name": "eks-refused"}})
    assert code == 403 and f'User "reader-{ACCOUNT}" cannot create' in status["message"]
    assert sim.eks_auth is not None and {WRITER, READER} <= sim.eks_auth.seen


@pytest.mark.parametrize("case", ["prefix", "base64", "host", "path", "parameter", "action", "unsigned",
                                  "expires", "no-date", "expired", "foreign", "unmapped", "large"])
def test_refused_tokens_are_401_unauthorized(case: str, sim: KubeSim, moto: MotoServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    good = _token(moto, monkeypatch, WRITER)
    url = _url(good)
    bad = {
        "prefix": good.removeprefix("k8s-aws-v1."),
        "base64": "k8s-aws-v1.%%%",
        "host": _retoken(url.replace(urlsplit(url).netloc, "sts.evil.example")),
        "path": _retoken(url.replace(urlsplit(url).netloc + "/", urlsplit(url).netloc + "/other")),
        "parameter": _retoken(url, Extra="1"),
        "action": _retoken(url, Action="GetSessionToken"),
        "unsigned": _retoken(url, **{"X-Amz-SignedHeaders": "host"}),
        "expires": _retoken(url, **{"X-Amz-Expires": "901"}),
        "no-date": _retoken(url, **{"X-Amz-Date": None}),
        "expired": _retoken(url, **{"X-Amz-Date": "20200101T000000Z"}),
        "foreign": _token(moto, monkeypatch, WRITER, cluster="staging"),
        "unmapped": _token(moto, monkeypatch, f"arn:aws:iam::{ACCOUNT}:role/stranger"),
        "large": "k8s-aws-v1." + "A" * 5000,
    }[case]
    # None: not an EKS token at all, so the authenticator never sees it (other authenticators refuse it)
    reasons: dict[str, str | None] = {
        "prefix": None, "base64": "not properly formatted", "host": "unexpected hostname",
        "path": "unexpected path", "parameter": 'non-whitelisted query parameter "Extra"',
        "action": "unexpected action", "unsigned": "did not sign the x-k8s-aws-id header",
        "expires": "invalid X-Amz-Expires", "no-date": "X-Amz-Date parameter must be present",
        "expired": "X-Amz-Date parameter is expired", "foreign": "SignatureDoesNotMatch",
        "unmapped": f"ARN is not mapped: arn:aws:iam::{ACCOUNT}:role/stranger", "large": "token is too large",
    }
    code, status = _call(sim, bad)
    assert (code, status["reason"], status["message"]) == (401, "Unauthorized", "Unauthorized")
    reason = reasons[case]
    assert sim.eks_auth is not None
    if reason is not None:
        assert reason in sim.eks_auth.log[-1], sim.eks_auth.log[-1]


def test_canonical_arns() -> None:
    assert eksauth.canonicalize(f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/session-1") == \
        f"arn:aws:iam::{ACCOUNT}:role/Deploy"
    assert eksauth.canonicalize(f"arn:aws:iam::{ACCOUNT}:user/bob") == f"arn:aws:iam::{ACCOUNT}:user/bob"
    with pytest.raises(eksauth.TokenRefused):
        eksauth.canonicalize(f"arn:aws:s3::{ACCOUNT}:bucket")
