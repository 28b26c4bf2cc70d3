"""Repository registration: what a request may say, and a connection check before it is kept.

``{url, type?, name?, username?, password? | token?, sshPrivateKey?, sshKnownHosts?, plainHttp?,
ecrRegistryId?}``, as Argo CD's repository: ``type`` is ``git`` (default; https or ssh), ``helm``
(an http(s) chart repository; credentials go as basic auth) or ``oci`` (an OCI registry,
``oci://host[/prefix]``, the default for an ``oci://`` URL; ``plainHttp`` for one without TLS,
``ecrRegistryId`` to log in to ECR with the function's role; docs/oci.md). An ssh URL needs ``sshPrivateKey`` (unencrypted
OpenSSH/PEM) and ``sshKnownHosts`` (known_hosts lines: host keys are always checked). Argo CD
fields gitferry does not implement are refused naming them.

Nothing is stored until the repository answers with these credentials (``ls-remote`` for Git,
``index.yaml`` for Helm): what cannot be read is 422 with the reason, never the secret.
"""

from __future__ import annotations

import re
from typing import Any

from gitferry.errors import GitferryError, InvalidSpecError, UnprocessableError
from gitferry.model import Repository, check_repo_url
from gitferry.secrets import RepoCredentials

__all__ = ["FIELDS", "parse", "merge", "check_connection"]

FIELDS = ("url", "type", "name", "username", "password", "token", "sshPrivateKey", "sshKnownHosts", "plainHttp",
          "ecrRegistryId")
#: bytes of a URL inside a DynamoDB key (the partition key limit is 2048 bytes)
MAX_URL_BYTES = 2000
_TEXT_FIELDS = tuple(f for f in FIELDS if f != "plainHttp")
#: Argo CD repository fields gitferry does not implement (refused, never ignored)
UNSUPPORTED = frozenset({"insecure", "insecureIgnoreHostKey", "enableLfs", "tlsClientCertData",
                         "tlsClientCertKey", "githubAppPrivateKey", "githubAppID", "githubAppInstallationID",
                         "githubAppEnterpriseBaseUrl", "proxy", "noProxy", "project", "enableOCI",
                         "gcpServiceAccountKey", "forceHttpBasicAuth", "useAzureWorkloadIdentity"})


def _is_ssh(url: str) -> bool:
    from gitferry.git import is_ssh_url

    return is_ssh_url(url)


def parse(doc: dict[str, Any]) -> tuple[Repository, RepoCredentials]:
    """The repository and its credentials from a request document; InvalidSpecError naming
    every bad field (a value of a secret field is never quoted)."""
    problems: list[str] = []
    for key in sorted(set(doc) - set(FIELDS), key=str):
        problems.append(f"{key}: {'not supported by gitferry' if key in UNSUPPORTED else 'unknown field'}")
    problems += [f"{k}: must be a string" for k in _TEXT_FIELDS
                 if doc.get(k) is not None and not isinstance(doc[k], str)]
    url = doc.get("url")
    kind = doc.get("type") or ("oci" if isinstance(url, str) and url.startswith("oci://") else "git")
    registry = kind == "oci" or (kind != "git" and isinstance(url, str) and url.startswith("oci://"))
    if not url:
        problems.append("url: field required")
    elif isinstance(url, str):
        from gitferry import oci

        try:
            (oci.check_oci_url if registry else check_repo_url)(url)
        except ValueError as exc:
            problems.append(f"url: {exc}")
        if len(url.encode("utf-8", errors="surrogatepass")) > MAX_URL_BYTES:
            problems.append(f"url: must be at most {MAX_URL_BYTES} bytes (it is part of a DynamoDB key)")
    if any(p.startswith(("url:", "type:")) or p.endswith("must be a string") for p in problems):
        raise InvalidSpecError(problems, "invalid repository")  # the rest depends on a usable URL
    if kind not in ("git", "helm", "oci"):
        problems.append(f"type: {kind!r} is not git, helm or oci")
    if doc.get("plainHttp") is not None and (not isinstance(doc["plainHttp"], bool) or not registry):
        problems.append("plainHttp: must be true or false, and only for an OCI registry (type oci)")
    ecr_id = doc.get("ecrRegistryId")
    if ecr_id is not None and (not registry or not isinstance(ecr_id, str) or not re.fullmatch(r"\d{12}", ecr_id)):
        problems.append("ecrRegistryId: must be a 12-digit AWS account id, for an OCI registry (type oci)")
    if ecr_id is not None and (doc.get("password") or doc.get("token")):
        problems.append("ecrRegistryId: ECR credentials come from the function's role; give no password or token")
    ssh = _is_ssh(url)
    if kind == "helm" and ssh:
        problems.append("url: a Helm repository is read over http(s), not ssh")
    if doc.get("password") and doc.get("token"):
        problems.append("token: give a password or a token, not both")
    if ssh:
        problems += [f"{k}: not used for an ssh URL (register sshPrivateKey)" for k in ("password", "token")
                     if doc.get(k)]
        problems += [f"{k}: field required for an ssh URL" for k in ("sshPrivateKey", "sshKnownHosts")
                     if not doc.get(k)]
        if doc.get("username"):
            problems.append("username: an ssh URL names its user (ssh://user@host/path or user@host:path)")
    else:
        problems += [f"{k}: only for an ssh URL (ssh://... or user@host:path)" for k in
                     ("sshPrivateKey", "sshKnownHosts") if doc.get(k)]
    if ssh and doc.get("sshPrivateKey") and doc.get("sshKnownHosts"):
        from gitferry.sshgit import load_known_hosts, load_private_key

        for key, check in (("sshPrivateKey", load_private_key), ("sshKnownHosts", load_known_hosts)):
            try:
                check(str(doc[key]))
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
    if problems:
        raise InvalidSpecError(problems, "invalid repository")
    creds = RepoCredentials(username=doc.get("username"), password=doc.get("password"), token=doc.get("token"),
                            ssh_private_key=doc.get("sshPrivateKey"), ssh_known_hosts=doc.get("sshKnownHosts"))
    repo = Repository(url=str(url), type=kind, name=doc.get("name"), username=doc.get("username"),
                      has_credentials=bool(creds.secret_values()), plain_http=True if doc.get("plainHttp") else None,
                      ecr_registry_id=ecr_id)
    return repo, creds


def merge(repo: Repository, creds: RepoCredentials | None, patch: dict[str, Any]) -> dict[str, Any]:
    """The document of a registration changed by ``patch`` (PATCH): ``url`` and ``type`` stay;
    a new password drops the token and the other way round; ``null`` removes a field."""
    problems = [f"{k}: cannot be changed (register the new URL, delete the old one)" for k in ("url", "type")
                if k in patch and patch[k] != getattr(repo, k)]
    if problems:
        raise InvalidSpecError(problems, "invalid repository update")
    doc: dict[str, Any] = {"url": repo.url, "type": repo.type, "name": repo.name,
                           "plainHttp": repo.plain_http or None, "ecrRegistryId": repo.ecr_registry_id}
    doc.update({k: v for k, v in ((creds.to_secret() if creds else {}) | {"username": repo.username}).items()})
    if patch.get("password"):
        doc.pop("token", None)
    if patch.get("token"):
        doc.pop("password", None)
    doc.update(patch)
    return {k: v for k, v in doc.items() if v is not None}


def check_connection(repo: Repository, creds: RepoCredentials) -> None:
    """Read the repository once with these credentials, as the poll will; 422 with the reason."""
    from gitferry import git, helmrepo

    given = creds if creds.secret_values() or creds.username else None
    try:
        if repo.type == "oci" or repo.url.startswith("oci://"):
            # A registration is a prefix over many repositories (the distribution API has no
            # "list"): what can be checked is the registry and the login, as `helm registry login`.
            from gitferry import oci

            oci.check_registry(repo.url, bool(getattr(repo, "plain_http", False)),
                               getattr(repo, "ecr_registry_id", None), given.basic_auth() if given else None)
        elif repo.type == "helm":
            helmrepo.fetch_index(repo.url, given)
        else:
            git.ls_remote(repo.url, given)
    except GitferryError as exc:
        text = str(exc)
        for secret in creds.secret_values():
            text = text.replace(secret, "***")
        raise UnprocessableError(f"cannot read repository {repo.url!r} with the given credentials: {text}") from None
