"""kubesim's EKS authentication mode: bearer tokens verified the way aws-iam-authenticator does.

A token ``k8s-aws-v1.<base64url(presigned STS URL)>`` is checked in the authenticator's order
(pkg/token/token.go ``Verify``): at most 4 KiB, the prefix, base64url, an allowed STS host (here:
the local moto endpoint, scheme included, since moto speaks plain HTTP), path ``/``, only the
allowed query parameters each once, ``Action=GetCallerIdentity``, ``x-k8s-aws-id`` among the signed
headers, ``X-Amz-Expires`` within 0..900, ``X-Amz-Date`` present and not older than 15 minutes.
Then the URL is called with ``x-k8s-aws-id: <this cluster>`` (so STS's signature check refuses a
token made for another cluster), the answer's ARN canonicalised (``assumed-role/R/S`` ->
``iam::<account>:role/R``) and looked up in the configured ``mapRoles`` / ``mapUsers`` (the
aws-auth ConfigMap's tables; access entries are the same mapping). Every failure is the API
server's 401 ``Unauthorized``; the authenticator's reason goes to :attr:`EksAuth.log` (the API
server's log) and never to the client.

As kube-apiserver caches webhook authentication results (``--authentication-token-webhook-
cache-ttl``, 2 minutes), a successful verification is reused for 2 minutes, never past the
token's 15 minutes. Authorization is coarse (kubesim has no RBAC): an identity whose groups
include ``system:masters`` may write; any other mapped identity may only read (403 on writes).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "k8s-aws-v1."
MAX_TOKEN_BYTES = 4 * 1024
CLUSTER_ID_HEADER = "x-k8s-aws-id"
VALIDITY_SECONDS = 15 * 60
CACHE_TTL_SECONDS = 120
ALLOWED_PARAMETERS = frozenset({"action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                                "x-amz-expires", "x-amz-security-token", "x-amz-signature", "x-amz-signedheaders"})
WRITER_GROUP = "system:masters"
_TEMPLATES = ("{{AccountID}}", "{{SessionName}}", "{{SessionNameRaw}}")


class TokenRefused(Exception):
    """Why a token was refused (the authenticator's wording); the client only sees 401."""


@dataclass(frozen=True)
class Identity:
    arn: str
    canonical_arn: str
    account: str
    session_name: str
    username: str
    groups: tuple[str, ...]

    @property
    def may_write(self) -> bool:
        return WRITER_GROUP in self.groups


@dataclass
class EksAuthConfig:
    """``cluster_id``: the EKS cluster name tokens must be made for; ``sts_endpoints``: allowed
    STS base URLs (``scheme://host:port``); ``map_roles`` / ``map_users``: aws-auth entries
    ``{"rolearn"|"userarn": ..., "username": ..., "groups": [...]}``."""

    cluster_id: str
    sts_endpoints: Sequence[str]
    map_roles: list[dict[str, Any]] = field(default_factory=list)
    map_users: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for entry in [*self.map_roles, *self.map_users]:
            username = str(entry.get("username", ""))
            rest = username
            for template in _TEMPLATES:
                rest = rest.replace(template, "")
            if "{{" in rest:
                raise ValueError(f"aws-auth username {username!r}: only {', '.join(_TEMPLATES)} are supported")


def canonicalize(arn: str) -> str:
    """aws-iam-authenticator's ``arn.Canonicalize``: STS assumed-role ARNs become the IAM role."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] not in ("aws", "aws-cn", "aws-us-gov"):
        raise TokenRefused(f"arn '{arn}' is invalid")
    _, partition, service, _, account, resource = parts
    kind, *rest = resource.split("/")
    if service == "sts":
        if kind == "federated-user":
            return arn
        if kind == "assumed-role":
            if len(rest) < 2:
                raise TokenRefused(f"assumed-role arn '{arn}' does not have a role")
            return f"arn:{partition}:iam::{account}:role/{'/'.join(rest[:-1])}"
        raise TokenRefused(f"unrecognized resource {resource} for service sts")
    if service == "iam" and kind in ("role", "user", "root"):
        return arn
    raise TokenRefused(f"service {service} in arn {arn} is not a valid service for identities")


class EksAuth:
    """Verifies EKS tokens for one cluster (thread-safe); ``now`` is the wall clock."""

    def __init__(self, config: EksAuthConfig, *, now: Callable[[], float] = time.time) -> None:
        self.config = config
        self._now = now
        self._allowed = {(urlsplit(u).scheme, urlsplit(u).netloc) for u in config.sts_endpoints}
        self._cache: dict[str, tuple[float, Identity]] = {}
        self._lock = threading.Lock()
        self.log: list[str] = []  # the API server's log: why a token was refused
        self.seen: set[str] = set()  # canonical ARNs that authenticated

    def authenticate(self, token: str) -> Identity | None:
        """The identity of a valid, mapped token; None (= 401 Unauthorized) otherwise."""
        now = self._now()
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            identity, valid_until = self._verify(token, now)
        except TokenRefused as refused:
            with self._lock:
                if len(self.log) >= 1000:
                    del self.log[:500]
                self.log.append(str(refused))
            return None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (min(now + CACHE_TTL_SECONDS, valid_until), identity)
            self.seen.add(identity.canonical_arn)
        return identity

    def _verify(self, token: str, now: float) -> tuple[Identity, float]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRefused("input token was not properly formatted: token is too large")
        if not token.startswith(PREFIX):
            raise TokenRefused(f'input token was not properly formatted: token is missing expected "{PREFIX}" prefix')
        encoded = token[len(PREFIX):]
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenRefused(f"input token was not properly formatted: {exc}") from None
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) not in self._allowed:
            raise TokenRefused(f'input token was not properly formatted: unexpected hostname "{parts.netloc}" '
                               "in pre-signed URL")
        if parts.path != "/":
            raise TokenRefused("input token was not properly formatted: unexpected path in pre-signed URL")
        params: dict[str, str] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key.lower() not in ALLOWED_PARAMETERS:
                raise TokenRefused(f'input token was not properly formatted: non-whitelisted query parameter "{key}"')
            if len(values) != 1:
                raise TokenRefused("input token was not properly formatted: query parameter with multiple values "
                                   "not supported")
            params[key.lower()] = values[0]
        if params.get("action") != "GetCallerIdentity":
            raise TokenRefused("input token was not properly formatted: unexpected action parameter in pre-signed URL")
        if CLUSTER_ID_HEADER not in [h.lower() for h in params.get("x-amz-signedheaders", "").split(";")]:
            raise TokenRefused(f"input token was not properly formatted: client did not sign the {CLUSTER_ID_HEADER} "
                               "header in the pre-signed URL")
        try:
            expires = int(params.get("x-amz-expires", ""))
        except ValueError:
            expires = -1
        if not 0 <= expires <= 900:
            raise TokenRefused("input token was not properly formatted: invalid X-Amz-Expires parameter in "
                               f"pre-signed URL: {expires}")
        date = params.get("x-amz-date", "")
        if not date:
            raise TokenRefused("input token was not properly formatted: X-Amz-Date parameter must be present in "
                               "pre-signed URL")
        try:
            signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise TokenRefused(f"input token was not properly formatted: error parsing X-Amz-Date parameter {date}") from None
        if now > signed_at + VALIDITY_SECONDS:
            raise TokenRefused(f"input token was not properly formatted: X-Amz-Date parameter is expired "
                               f"(15 minute expiration) {date}")
        arn, account, user_id = self._call_sts(url)
        canonical = canonicalize(arn)
        session = user_id.split(":", 1)[1] if ":" in user_id else ""
        username, groups = self._map(canonical, account, session)
        return Identity(arn, canonical, account, session, username, groups), signed_at + VALIDITY_SECONDS

    def _call_sts(self, url: str) -> tuple[str, str, str]:
        request = urllib.request.Request(url, headers={CLUSTER_ID_HEADER: self.config.cluster_id,
                                                       "accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - allow-listed host
                body = response.read(64 * 1024)
        except urllib.error.HTTPError as err:
            raise TokenRefused(f"sts getCallerIdentity failed: error from AWS (expected 200, got {err.code}). "
                               f"Body: {err.read(2048).decode(errors='replace')}") from None
        except OSError as exc:
            raise TokenRefused(f"sts getCallerIdentity failed: error during GET: {exc}") from None
        return _caller_identity(body)

    def _map(self, canonical: str, account: str, session: str) -> tuple[str, tuple[str, ...]]:
        for key, table in (("rolearn", self.config.map_roles), ("userarn", self.config.map_users)):
            for entry in table:
                if str(entry.get(key, "")) == canonical:
                    username = (str(entry.get("username") or canonical).replace("{{AccountID}}", account)
                                .replace("{{SessionNameRaw}}", session)
                                .replace("{{SessionName}}", session.replace("@", "-")))
                    return username, tuple(str(g) for g in entry.get("groups") or ())
        raise TokenRefused(f"ARN is not mapped: {canonical}")


def _caller_identity(body: bytes) -> tuple[str, str, str]:
    """(Arn, Account, UserId) from STS's JSON answer, or its XML one (moto answers XML)."""
    try:
        doc: Mapping[str, Any] = json.loads(body)
        result = doc["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        return str(result["Arn"]), str(result["Account"]), str(result["UserId"])
    except (ValueError, KeyError, TypeError):
        pass
    try:
        root = ET.fromstring(body)  # noqa: S314 - the allow-listed STS endpoint's answer, 64 KiB at most
    except ET.ParseError as exc:
        raise TokenRefused(f"sts getCallerIdentity failed: {exc}") from None
    values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    if not values.get("Arn"):
        raise TokenRefused("sts getCallerIdentity failed: no Arn in the answer")
    return values["Arn"], values.get("Account", ""), values.get("UserId", "")
