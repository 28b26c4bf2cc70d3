"""Named API tokens: who calls the management API, and whether it may change anything.

A token is ``gft_<name>_<secret>``; its name says which Secrets Manager secret to check, so
a request costs at most one read (cached :data:`CACHE_SECONDS`). Secrets Manager holds only
the token's SHA-256 and role (``<prefix>api-tokens/<name>``, JSON ``{"role", "sha256"}``): the
token itself is shown once, in the answer that creates it, and nowhere else. The state table
keeps the metadata the list shows (``TOKEN#<name>``: name, role, created; no hash).

The bootstrap token (``<prefix>api-token``, what ``make up`` and the README create) is the
token named ``admin``, role admin; it is rotated in Secrets Manager, not through the API.

Roles, as Argo CD's built-in ``role:admin`` / ``role:readonly``: ``readonly`` may do every
GET and ``POST .../refresh`` (a refresh re-reads Git and the cluster and changes neither; in
Argo CD a refresh is part of ``applications, get``, argoproj/argo-cd#15385), every other
method is 403. Revocation deletes the secret: a warm Lambda may accept the token for at most
:data:`CACHE_SECONDS` more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets as pysecrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from gitferry.errors import (
    ConflictError,
    ForbiddenError,
    InvalidSpecError,
    NotFoundError,
    SecretError,
    UnauthorizedError,
)
from gitferry.secrets import SecretStore
from gitferry.state import StateStore

__all__ = ["Principal", "TokenStore", "ROLES", "BOOTSTRAP", "check_role", "READONLY", "ADMIN"]

Role = Literal["admin", "readonly"]
ADMIN: Role = "admin"
READONLY: Role = "readonly"
ROLES: tuple[Role, ...] = (ADMIN, READONLY)
BOOTSTRAP = "admin"  # the name of the bootstrap token (<prefix>api-token)
PREFIX = "gft_"
#: seconds a looked-up token (or its absence) is trusted: the revocation bound (README "Bounds")
CACHE_SECONDS = 5.0
#: a name no secret exists for is asked again at most this often (wrong tokens cannot hammer SM)
MISS_SECONDS = 1.0
CACHE_ENTRIES = 1024
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63
#: methods a read-only token may use, and the one POST that only re-reads (refresh)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REFRESH = re.compile(r"^/api/v1/applications/[^/]+/refresh/?$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``actor`` is what the audit trail records."""

    actor: str
    role: Role

    def check(self, method: str, path: str) -> None:
        """403 unless the role allows ``method path``."""
        if self.role == ADMIN:
            return
        if method.upper() in _READ_METHODS or (method.upper() == "POST" and _REFRESH.match(path)):
            return
        raise ForbiddenError(f"{self.actor} has the read-only role: {method.upper()} {path} needs an admin token")


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not _NAME.match(name):
        raise ValueError(f"must be a DNS-1123 label of at most {NAME_MAX} characters "
                         "(lower case letters, digits and '-')")
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"must be one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, list, revoke and check named tokens."""

    def __init__(self, secrets: SecretStore, state: StateStore, clock: Any = time.monotonic) -> None:
        self.secrets = secrets
        self.state = state
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, dict[str, str] | None]] = OrderedDict()

    def secret_name(self, name: str) -> str:
        return f"{self.secrets.prefix}api-tokens/{name}"

    # ------------------------------------------------------------------ checking

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of ``Authorization: Bearer <token>``, or UnauthorizedError (401)."""
        scheme, _, given = (authorization or "").partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            self._require_some_token()
            raise UnauthorizedError("missing or invalid bearer token")
        if given.startswith(PREFIX):
            name, _, rest = given[len(PREFIX):].partition("_")
            record = self._record(name) if rest and _NAME.match(name) and len(name) <= NAME_MAX else None
            if record and hmac.compare_digest(_digest(given), record.get("sha256", "")):
                return Principal(f"api:{name}", check_role(record.get("role", READONLY)))
            raise UnauthorizedError("missing or invalid bearer token")
        expected = self.secrets.get_api_token()
        if expected and not _same(given, expected):
            expected = self.secrets.get_api_token(fresh=True)  # rotated just now? (rate-limited)
        if expected and _same(given, expected):
            return Principal(f"api:{BOOTSTRAP}", ADMIN)
        self._require_some_token(expected)
        raise UnauthorizedError("missing or invalid bearer token")

    def _require_some_token(self, bootstrap: str | None = "") -> None:
        """No token at all configured is worth saying: the API never runs open by default."""
        if bootstrap == "":
            bootstrap = self.secrets.get_api_token()
        if not bootstrap and not self.state_has_tokens():
            raise UnauthorizedError("no API token configured: put one in Secrets Manager as "
                                    f"{self.secrets.api_token_name()}")

    def state_has_tokens(self) -> bool:
        return bool(self.state.list_tokens())

    def _record(self, name: str) -> dict[str, str] | None:
        now = self.clock()
        hit = self._cache.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            value = self.secrets.client.get_secret_value(SecretId=self.secret_name(name))["SecretString"]
            record: dict[str, str] | None = json.loads(value)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise SecretError(f"reading token {name!r} failed: {exc.response['Error'].get('Code')}") from None
            record = None
        except (ValueError, KeyError):
            record = None
        self._cache[name] = (now + (CACHE_SECONDS if record else MISS_SECONDS), record)
        self._cache.move_to_end(name)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return record

    # ------------------------------------------------------------------ managing

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``{name, role}`` -> the token's metadata and, this once, ``token``."""
        problems = [f"{k}: field required" for k in ("name", "role") if not doc.get(k)]
        problems += [f"{k}: unknown field" for k in sorted(set(doc) - {"name", "role"}, key=str)]
        for key, check in (("name", check_name), ("role", check_role)):
            value = doc.get(key)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                problems.append(f"{key}: must be a string")
                continue
            try:
                check(value)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise InvalidSpecError(problems, "invalid token")
        name, role = str(doc["name"]), check_role(str(doc["role"]))
        if name == BOOTSTRAP:
            raise ConflictError(f"token {BOOTSTRAP!r} is the bootstrap token ({self.secrets.api_token_name()} "
                                "in Secrets Manager): choose another name")
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        meta = {"name": name, "role": role, "created": created}
        if not self.state.create_token(name, meta):
            raise ConflictError(f"token {name!r} already exists: revoke it first (DELETE /api/v1/tokens/{name})")
        token = f"{PREFIX}{name}_{pysecrets.token_urlsafe(32)}"
        try:
            self.secrets.client.create_secret(Name=self.secret_name(name),
                                              SecretString=json.dumps({"role": role, "sha256": _digest(token)}))
        except ClientError as exc:
            self.state.delete_token(name)
            code = exc.response.get("Error", {}).get("Code")
            raise SecretError(f"storing token {name!r} failed: {code}") from None
        self._cache.pop(name, None)
        return {**meta, "token": token}

    def list(self) -> list[dict[str, Any]]:
        """Every token's name, role and creation time (never a value), the bootstrap one first."""
        rows: list[dict[str, Any]] = []
        bootstrap = self._bootstrap_created()
        if bootstrap is not None:
            rows.append({"name": BOOTSTRAP, "role": ADMIN, "created": bootstrap, "bootstrap": True})
        rows += sorted(self.state.list_tokens(), key=lambda t: str(t.get("name")))
        return rows

    def _bootstrap_created(self) -> str | None:
        try:
            described = self.secrets.client.describe_secret(SecretId=self.secrets.api_token_name())
        except ClientError:
            return None
        when = described.get("CreatedDate")
        return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(when, datetime) else None

    def revoke(self, name: str) -> dict[str, Any]:
        if name == BOOTSTRAP:
            raise ConflictError(f"token {BOOTSTRAP!r} is the bootstrap token: rotate or delete "
                                f"{self.secrets.api_token_name()} in Secrets Manager instead")
        meta = self.state.get_token(name)
        if meta is None:
            raise NotFoundError(f"token {name!r} not found")
        try:
            self.secrets.client.delete_secret(SecretId=self.secret_name(name), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise SecretError(f"deleting token {name!r} failed: {exc.response['Error'].get('Code')}") from None
        self.state.delete_token(name)
        self._cache.pop(name, None)
        return {"revoked": name, "role": meta.get("role")}


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
