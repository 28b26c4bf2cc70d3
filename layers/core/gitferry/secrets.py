"""Secrets Manager: cluster kubeconfigs, repository credentials, webhook secrets.

Secret values only ever travel from Secrets Manager to the code that uses them:
they are never logged, never put in exception messages (errors name the secret
*name*, never the value), and the credential types hide their values from
``repr``. Reads go through Powertools' ``SecretsProvider`` so a warm Lambda
reuses a value for ``max_age`` seconds instead of paying a call per message;
writes clear that cache so this process sees its own change at once.

Names are ``<prefix>clusters/<name>/kubeconfig``, ``<prefix>repos/<sha256(url)[:32]>``
(URLs contain characters secret names may not) and ``<prefix>webhooks/<provider>``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import ClientError

from gitferry.errors import NotFoundError, SecretError

__all__ = ["RepoCredentials", "SecretStore"]

DEFAULT_MAX_AGE = 300  # seconds a warm Lambda trusts a cached secret
#: seconds a rotated or deleted API token keeps working in a warm Lambda (README: "Bounds")
API_TOKEN_MAX_AGE = 5
#: a token that does not match the cached one re-reads the secret at most this often, so a
#: freshly rotated token works at once while wrong tokens cannot hammer Secrets Manager
API_TOKEN_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class RepoCredentials:
    """Credentials for a repository: HTTPS username + password, or a token (sent as the
    basic-auth password, which is how GitHub, GitLab, Gitea and Bitbucket accept tokens), or
    for ``ssh://`` / ``git@host:path`` an ssh private key with the known hosts it may talk to.
    Values are hidden from ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    ssh_known_hosts: str | None = None  # public host keys: not secret, but kept with the key

    def basic_auth(self) -> tuple[str, str]:
        """(username, password) for HTTP basic auth."""
        if self.token:
            return (self.username or "x-access-token", self.token)
        return (self.username or "", self.password or "")

    def secret_values(self) -> list[str]:
        """What must never be shown (errors scrub these)."""
        return [v for v in (self.password, self.token, self.ssh_private_key) if v]

    def to_secret(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("username", self.username), ("password", self.password), ("token", self.token),
                         ("sshPrivateKey", self.ssh_private_key), ("sshKnownHosts", self.ssh_known_hosts))
            if v
        }

    @classmethod
    def from_secret(cls, doc: dict[str, Any]) -> RepoCredentials:
        return cls(username=doc.get("username"), password=doc.get("password"), token=doc.get("token"),
                   ssh_private_key=doc.get("sshPrivateKey"), ssh_known_hosts=doc.get("sshKnownHosts"))


class SecretStore:
    """Create-or-update and read gitferry's secrets under ``prefix`` (e.g. ``gitferry/``)."""

    def __init__(self, prefix: str = "gitferry/", client: Any = None, max_age: int = DEFAULT_MAX_AGE) -> None:
        self.prefix = prefix
        self.max_age = max_age
        self._client = client
        self._provider: SecretsProvider | None = None
        self._token_checked_at = float("-inf")
        # Secrets found missing, and when: a public repository has no secret, and asking again on
        # every tick cost one GetSecretValue per repository (max_age bounds it like a value).
        self._absent: dict[str, float] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            # the poll reads repositories' credentials from 16 threads (poll.READ_WORKERS):
            # botocore's default pool of 10 connections made the rest open and drop their own
            self._client = boto3.client("secretsmanager", config=Config(max_pool_connections=32))
        return self._client

    @property
    def provider(self) -> SecretsProvider:
        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self.client)
        return self._provider

    # -- names ------------------------------------------------------------------

    def cluster_secret_name(self, cluster: str) -> str:
        return f"{self.prefix}clusters/{cluster}/kubeconfig"

    def repo_secret_name(self, url: str) -> str:
        return f"{self.prefix}repos/{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    def webhook_secret_name(self, provider: str) -> str:
        return f"{self.prefix}webhooks/{provider}"

    def api_token_name(self) -> str:
        return f"{self.prefix}api-token"

    # -- typed accessors ------------------------------------------------------------

    def put_kubeconfig(self, cluster: str, kubeconfig: str) -> None:
        self._put(self.cluster_secret_name(cluster), kubeconfig, f"kubeconfig of cluster {cluster}")

    def get_kubeconfig(self, cluster: str) -> str:
        return self._get(self.cluster_secret_name(cluster), f"kubeconfig of cluster {cluster}")

    def delete_kubeconfig(self, cluster: str) -> None:
        self._delete(self.cluster_secret_name(cluster))

    def put_repo_credentials(self, url: str, creds: RepoCredentials) -> None:
        self._put(self.repo_secret_name(url), json.dumps(creds.to_secret()), f"credentials of {url}")

    def get_repo_credentials(self, url: str) -> RepoCredentials | None:
        """Credentials for ``url``, or None for a public repository."""
        try:
            raw = self._get(self.repo_secret_name(url), f"credentials of {url}", absence=True)
        except NotFoundError:
            return None
        try:
            return RepoCredentials.from_secret(json.loads(raw))
        except (ValueError, AttributeError):
            raise SecretError(f"credentials of {url} are not a JSON object") from None

    def delete_repo_credentials(self, url: str) -> None:
        self._delete(self.repo_secret_name(url))

    def put_webhook_secret(self, provider: str, value: str) -> None:
        self._put(self.webhook_secret_name(provider), value, f"webhook secret of {provider}")

    def get_webhook_secret(self, provider: str) -> str | None:
        try:
            return self._get(self.webhook_secret_name(provider), f"webhook secret of {provider}")
        except NotFoundError:
            return None

    def put_api_token(self, value: str) -> None:
        self._put(self.api_token_name(), value, "API token")

    def get_api_token(self, *, fresh: bool = False) -> str | None:
        """The management API's bearer token, or None when none was configured. Cached for
        only API_TOKEN_MAX_AGE seconds (revocation is bounded by it); ``fresh`` re-reads it,
        at most once per API_TOKEN_RECHECK_SECONDS."""
        force = False
        if fresh:
            now = time.monotonic()
            if now - self._token_checked_at >= API_TOKEN_RECHECK_SECONDS:
                self._token_checked_at = now
                force = True
        try:
            return self._get(self.api_token_name(), "API token", max_age=API_TOKEN_MAX_AGE, force=force)
        except NotFoundError:
            return None

    # -- plumbing -------------------------------------------------------------------

    def _put(self, name: str, value: str, what: str) -> None:
        """Create the secret, or add a new version when it exists."""
        try:
            try:
                self.client.put_secret_value(SecretId=name, SecretString=value)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                self.client.create_secret(Name=name, SecretString=value)
        except ClientError as exc:
            raise SecretError(f"storing {what} ({name}) failed: {_code(exc)}") from None
        self.provider.clear_cache()
        self._absent.pop(name, None)

    def _get(self, name: str, what: str, *, max_age: int | None = None, force: bool = False,
             absence: bool = False) -> str:
        """The secret's value, cached up to ``max_age``; ``absence``: a missing secret is
        remembered as long (for the repository credentials most repositories do not have)."""
        age = min(self.max_age, max_age or self.max_age)
        missing_since = self._absent.get(name)
        if absence and not force and missing_since is not None and time.monotonic() - missing_since < age:
            raise NotFoundError(f"{what} not found (secret {name})")
        try:
            value = self.provider.get(name, max_age=age, force_fetch=force)
        except Exception as exc:  # Powertools wraps every failure in GetParameterError
            cause = exc.__cause__ or exc.__context__
            code = _code(cause) if isinstance(cause, ClientError) else type(exc).__name__
            if code == "ResourceNotFoundException":
                if absence:
                    self._absent[name] = time.monotonic()
                raise NotFoundError(f"{what} not found (secret {name})") from None
            raise SecretError(f"reading {what} ({name}) failed: {code}") from None
        if isinstance(value, bytes):
            return value.decode()
        if not isinstance(value, str):
            raise SecretError(f"{what} ({name}) is not a string secret")
        return value

    def _delete(self, name: str) -> None:
        """Delete at once (no recovery window) so the name can be registered again."""
        try:
            self.client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise SecretError(f"deleting {name} failed: {_code(exc)}") from None
        self.provider.clear_cache()
        self._absent.pop(name, None)


def _code(exc: BaseException | None) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
