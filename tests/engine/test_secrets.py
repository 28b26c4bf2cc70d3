"""SecretStore against a real moto Secrets Manager server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gitferry.errors import NotFoundError
from gitferry.secrets import RepoCredentials, SecretStore


@pytest.fixture
def secrets(secretsmanager: Any) -> SecretStore:
    return SecretStore(prefix=f"t{uuid.uuid4().hex[:8]}/", client=secretsmanager, max_age=300)


def test_kubeconfig_create_update_delete(secrets: SecretStore, secretsmanager: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        secrets.get_kubeconfig("prod")
    assert "prod" in str(info.value)
    secrets.put_kubeconfig("prod", "apiVersion: v1\nkind: Config\n# one\n")
    assert secrets.get_kubeconfig("prod").endswith("# one\n")
    # update: the writer's own cache is cleared, so it reads the new value at once
    secrets.put_kubeconfig("prod", "apiVersion: v1\nkind: Config\n# two\n")
    assert secrets.get_kubeconfig("prod").endswith("# two\n")
    described = secretsmanager.describe_secret(SecretId=secrets.cluster_secret_name("prod"))
    assert described["Name"].endswith("clusters/prod/kubeconfig")
    secrets.delete_kubeconfig("prod")
    with pytest.raises(NotFoundError):
        secrets.get_kubeconfig("prod")
    # a deleted name can be registered again straight away
    secrets.put_kubeconfig("prod", "again")
    assert secrets.get_kubeconfig("prod") == "again"


def test_reads_are_cached_for_max_age(secrets: SecretStore, secretsmanager: Any) -> None:
    secrets.put_webhook_secret("github", "s1")
    assert secrets.get_webhook_secret("github") == "s1"
    # changed behind our back: the warm cache still answers (no call per message) ...
    secretsmanager.put_secret_value(SecretId=secrets.webhook_secret_name("github"), SecretString="s2")
    assert secrets.get_webhook_secret("github") == "s1"
    # ... and a store without caching sees the change
    fresh = SecretStore(prefix=secrets.prefix, client=secretsmanager, max_age=0)
    assert fresh.get_webhook_secret("github") == "s2"
    assert fresh.get_webhook_secret("gitlab") is None


def test_repo_credentials_never_shown(secrets: SecretStore) -> None:
    url = "https://git.example:8443/team/private.git"
    assert secrets.get_repo_credentials(url) is None
    creds = RepoCredentials(username="bob", password="hunter2-secret")
    secrets.put_repo_credentials(url, creds)
    got = secrets.get_repo_credentials(url)
    assert got == creds and got.basic_auth() == ("bob", "hunter2-secret")
    assert "hunter2" not in repr(got)
    assert ":" not in secrets.repo_secret_name(url)  # secret names may not hold a URL
    secrets.put_repo_credentials(url, RepoCredentials(token="tok-123"))
    token = secrets.get_repo_credentials(url)
    assert token is not None and token.basic_auth() == ("x-access-token", "tok-123")
    assert "tok-123" not in repr(token)


def test_a_repository_without_credentials_is_not_asked_for_again_until_max_age(secretsmanager: Any) -> None:
    """A public repository has no secret: the poll used to ask Secrets Manager on every tick."""
    prefix = f"t{uuid.uuid4().hex[:8]}/"
    secrets = SecretStore(prefix=prefix, client=secretsmanager, max_age=300)
    calls: list[str] = []
    secretsmanager.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue",
                                        lambda params, **_: calls.append(params["SecretId"]))
    url = "https://git.example.com/public.git"
    assert secrets.get_repo_credentials(url) is None
    assert secrets.get_repo_credentials(url) is None
    assert calls == [secrets.repo_secret_name(url)]  # the absence is remembered
    # registering credentials (this store) forgets it at once; another store's reader after max_age
    secrets.put_repo_credentials(url, RepoCredentials(username="u", password="p"))
    got = secrets.get_repo_credentials(url)
    assert got is not None and got.password == "p"
    other = SecretStore(prefix=prefix, client=secretsmanager, max_age=0)  # max_age 0: nothing remembered
    second = "https://git.example.com/other.git"
    assert other.get_repo_credentials(second) is None
    secrets.put_repo_credentials(second, RepoCredentials(username="u", password="q"))
    again = other.get_repo_credentials(second)
    assert again is not None and again.password == "q"
    # webhook secrets and the API token are not remembered missing: adding one works at once
    before = len(calls)
    assert secrets.get_webhook_secret("gitlab") is None and secrets.get_webhook_secret("gitlab") is None
    assert len(calls) == before + 2
