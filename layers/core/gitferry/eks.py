"""EKS clusters without a stored credential: endpoint + CA from ``eks:DescribeCluster``, and the
bearer token EKS expects, made in-process from the function's IAM role (or a role it assumes).

The token is what ``aws eks get-token`` / aws-iam-authenticator print: ``k8s-aws-v1.`` followed by
the unpadded base64url of a SigV4-presigned ``GET https://sts.<region>.amazonaws.com/?Action=
GetCallerIdentity&Version=2011-06-15`` whose signed headers include ``x-k8s-aws-id: <cluster
name>``. The API server calls that URL (with the header set to its own name: a token made for
another cluster fails STS's signature check) and maps the ARN STS answers with through its
access entries / aws-auth ConfigMap. ``X-Amz-Expires`` is 60 as the authenticator sends it (STS
ignores it: a presigned URL is valid 15 minutes after its X-Amz-Date), and a token is used until
one minute before those 15 minutes end, then made again.

Nothing here is stored: the kubeconfig equivalent is rebuilt from DescribeCluster in each warm
process, so Secrets Manager holds no token for an EKS cluster.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

TOKEN_PREFIX: Final = "k8s-aws-v1."
CLUSTER_ID_HEADER: Final = "x-k8s-aws-id"
#: what the authenticator sets X-Amz-Expires to (ignored by STS; kept for old verifiers)
PRESIGN_EXPIRES_SECONDS: Final = 60
#: a presigned STS URL is valid this long after its X-Amz-Date
TOKEN_VALIDITY_SECONDS: Final = 15 * 60
#: a token is replaced this long before it expires (the authenticator's cushion)
TOKEN_REFRESH_MARGIN_SECONDS: Final = 60
#: assumed-role credentials are renewed this long before they expire
CREDENTIALS_REFRESH_MARGIN_SECONDS: Final = 5 * 60

_CLUSTER_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):eks:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
                          r"cluster/(?P<name>[A-Za-z0-9][A-Za-z0-9_-]{0,99})$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class EksError(Exception):
    """DescribeCluster / AssumeRole / token failure, with the AWS error code when there is one."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class EksTarget:
    """Which EKS cluster, where, and as whom: ``cluster`` is the EKS name (an ARN is split into
    name and region at parsing), ``role_arn`` the role to assume first (another account)."""

    cluster: str
    region: str
    role_arn: str | None = None


def parse_target(cluster: str, region: str | None = None, role_arn: str | None = None,
                 default_region: str | None = None) -> EksTarget:
    """An :class:`EksTarget` from what a user registers; ValueError naming the field otherwise."""
    match = _CLUSTER_ARN.match(cluster)
    if match:
        if region and region != match["region"]:
            raise ValueError(f"eks.region: {region!r} differs from the region of the cluster ARN ({match['region']})")
        name, region = match["name"], match["region"]
    elif _CLUSTER_NAME.match(cluster):
        name = cluster
    else:
        raise ValueError("eks.cluster: must be an EKS cluster name (letters, digits, '-', '_', at most 100) "
                         "or a cluster ARN arn:aws:eks:<region>:<account>:cluster/<name>")
    region = region or default_region
    if not region:
        raise ValueError("eks.region: required when eks.cluster is a name and the function has no AWS_REGION")
    if not _REGION.match(region):
        raise ValueError(f"eks.region: {region!r} is not an AWS region name")
    if role_arn is not None and not _ROLE_ARN.match(role_arn):
        raise ValueError("eks.roleArn: must be an IAM role ARN arn:aws:iam::<account>:role/<name>")
    return EksTarget(cluster=name, region=region, role_arn=role_arn or None)


@dataclass(frozen=True)
class ClusterEndpoint:
    """What DescribeCluster says about reaching the API server."""

    arn: str
    endpoint: str
    ca_pem: str
    version: str
    status: str


def _client(service: str, target: EksTarget, credentials: dict[str, str] | None) -> Any:
    """A boto3 client in the target's region, with the assumed role's credentials when given
    (the default session otherwise: the function's own role)."""
    import boto3

    if credentials is None:
        # Lambda puts the role's credentials in the environment; read them now rather than the
        # ones the default session resolved first (the local runner runs every function in one
        # process, so that could be another function's role). Elsewhere: the default chain.
        env = {k: os.environ.get(v) for k, v in (("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                                                 ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                                                 ("aws_session_token", "AWS_SESSION_TOKEN"))}
        if env["aws_access_key_id"] and env["aws_secret_access_key"]:
            return boto3.client(service, region_name=target.region, **env)
        return boto3.client(service, region_name=target.region)
    return boto3.client(service, region_name=target.region,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def _aws_error(exc: Exception, doing: str) -> EksError:
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str((response.get("Error") or {}).get("Code") or "")
        message = str((response.get("Error") or {}).get("Message") or exc)
    else:
        message = str(exc)
    return EksError(f"{doing}: {code + ': ' if code else ''}{message}", code=code)


class EksAccess:
    """Credentials, DescribeCluster and tokens for one :class:`EksTarget` (thread-safe).

    ``now`` is the clock (tests and the refresh arithmetic); the session name of an assumed role
    is ``gitferry-<function>`` so CloudTrail shows which stage acted.
    """

    def __init__(self, target: EksTarget, *, now: Callable[[], float] = time.time) -> None:
        self.target = target
        self._now = now
        self._lock = threading.Lock()
        self._credentials: dict[str, str] | None = None
        self._credentials_expire = 0.0
        self._token = ""
        self._token_expires = 0.0

    # ------------------------------------------------------------------ credentials

    def _role_credentials(self) -> dict[str, str] | None:
        """Temporary credentials of ``role_arn`` (renewed near their expiry), or None to sign
        with the function's own role."""
        if self.target.role_arn is None:
            return None
        if self._credentials is not None and self._now() < self._credentials_expire - CREDENTIALS_REFRESH_MARGIN_SECONDS:
            return self._credentials
        session_name = "gitferry-" + re.sub(r"[^\w+=,.@-]", "-", os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "api"))[:55]
        try:
            sts = _client("sts", self.target, None)
            answer = sts.assume_role(RoleArn=self.target.role_arn, RoleSessionName=session_name)
        except Exception as exc:  # botocore ClientError / endpoint errors
            raise _aws_error(exc, f"cannot assume role {self.target.role_arn}") from None
        creds = answer["Credentials"]
        self._credentials = {k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        expiration = creds.get("Expiration")
        self._credentials_expire = expiration.timestamp() if hasattr(expiration, "timestamp") else self._now() + 900
        return self._credentials

    # ------------------------------------------------------------------ DescribeCluster

    def describe(self) -> ClusterEndpoint:
        """Endpoint, CA and version of the cluster (``eks:DescribeCluster``, as the assumed role
        when there is one: the cluster lives in that role's account)."""
        with self._lock:
            creds = self._role_credentials()
        try:
            eks = _client("eks", self.target, creds)
            cluster = eks.describe_cluster(name=self.target.cluster)["cluster"]
        except Exception as exc:
            raise _aws_error(exc, f"cannot describe EKS cluster {self.target.cluster!r} in {self.target.region}") from None
        endpoint = str(cluster.get("endpoint") or "")
        ca_data = str((cluster.get("certificateAuthority") or {}).get("data") or "")
        status = str(cluster.get("status") or "")
        if not endpoint or not ca_data:
            raise EksError(f"EKS cluster {self.target.cluster!r} has no endpoint yet (status {status or 'unknown'})",
                           code="ClusterNotReady")
        try:
            ca_pem = base64.b64decode(ca_data, validate=True).decode()
        except ValueError:
            raise EksError(f"EKS cluster {self.target.cluster!r}: certificateAuthority.data is not base64 PEM",
                           code="InvalidCertificate") from None
        return ClusterEndpoint(arn=str(cluster.get("arn") or ""), endpoint=endpoint.rstrip("/"), ca_pem=ca_pem,
                               version=str(cluster.get("version") or ""), status=status)

    # ------------------------------------------------------------------ token

    def token(self) -> str:
        """A valid bearer token, made again one minute before the current one expires."""
        with self._lock:
            if self._token and self._now() < self._token_expires - TOKEN_REFRESH_MARGIN_SECONDS:
                return self._token
            signed_at = self._now()
            self._token = self._presign(self._role_credentials())
            self._token_expires = signed_at + TOKEN_VALIDITY_SECONDS
            return self._token

    @property
    def token_expires(self) -> float:
        """When the current token stops being valid (epoch seconds; 0 before the first)."""
        return self._token_expires

    def _presign(self, creds: dict[str, str] | None) -> str:
        sts = _client("sts", self.target, creds)
        name = self.target.cluster

        def add_cluster_header(request: Any, **_: Any) -> None:
            request.headers[CLUSTER_ID_HEADER] = name

        sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
        try:
            url = sts.generate_presigned_url("get_caller_identity", Params={},
                                             ExpiresIn=PRESIGN_EXPIRES_SECONDS, HttpMethod="GET")
        except Exception as exc:  # no credentials at all
            raise _aws_error(exc, "cannot sign an EKS token") from None
        return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")

    def refresh_hook(self, configuration: Any) -> None:
        """The kubernetes client's ``refresh_api_key_hook``: put the current token on the
        configuration before a request (a cached one unless it is near its expiry)."""
        configuration.api_key["BearerToken"] = "Bearer " + self.token()


_ACCESS: dict[tuple[EksTarget, str], EksAccess] = {}
_ACCESS_LOCK = threading.Lock()


def access_for(target: EksTarget) -> EksAccess:
    """The process-wide :class:`EksAccess` of ``target`` for the credentials in the environment
    (its token and role credentials are reused by every client of a warm Lambda; a token belongs
    to the credentials that signed it, so other credentials get their own)."""
    key = (target, os.environ.get("AWS_ACCESS_KEY_ID", ""))
    with _ACCESS_LOCK:
        access = _ACCESS.get(key)
        if access is None:
            access = _ACCESS[key] = EksAccess(target)
        return access


def api_client(target: EksTarget) -> tuple[Any, ClusterEndpoint]:
    """A kubernetes ``ApiClient`` for the EKS cluster (endpoint + CA from DescribeCluster, the
    token from :meth:`EksAccess.refresh_hook`) and what DescribeCluster said."""
    from gitferry import kube

    access = access_for(target)
    described = access.describe()
    return kube.api_client_for_token_source(described.endpoint, described.ca_pem, access.refresh_hook), described
