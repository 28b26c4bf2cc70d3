"""Git provider webhooks: signature checks and push-event parsing (pure functions).

Unauthenticated webhooks were a denial-of-service vector in Argo CD: the body is
bounded before anything else, signatures are compared in constant time, and the
only work done per request is a lookup and a queue message.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gitferry import loader

MAX_BODY_BYTES = 1024 * 1024  # GitHub caps payloads at 25 MB; a push we care about is far smaller.
_PAYLOAD_LIMITS = loader.Limits(max_bytes=MAX_BODY_BYTES, max_documents=1, max_nodes=200_000, max_depth=64)


class WebhookError(Exception):
    """A webhook we refuse; ``status`` is the HTTP code to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PushEvent:
    """What a push tells us: which repository (all its URLs), which ref, which commit."""

    provider: str
    delivery: str
    repo_urls: tuple[str, ...]
    ref: str  # refs/heads/main or refs/tags/v1
    commit: str  # the new tip ("after"); all zeros when the ref was deleted
    kind: str  # "push" | "ping"

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None


def _header(headers: dict[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return lowered.get(name.lower(), "")


#: the providers whose signatures gitferry verifies (anything else is a 404)
PROVIDERS = ("github", "gitea", "gitlab", "bitbucket", "bitbucket-server")


def verify_signature(provider: str, headers: dict[str, str], body: bytes, secret: str) -> None:
    """Raise WebhookError(401) unless the request is signed with ``secret``."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    if provider in ("github", "gitea"):
        header = _header(headers, "X-Hub-Signature-256")
        if provider == "gitea" and not header:
            header = "sha256=" + _header(headers, "X-Gitea-Signature")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not header or not hmac.compare_digest(header, expected):
            raise WebhookError(401, "invalid or missing X-Hub-Signature-256")
    elif provider == "gitlab":
        token = _header(headers, "X-Gitlab-Token")
        if not token or not hmac.compare_digest(token.encode(), secret.encode()):
            raise WebhookError(401, "invalid or missing X-Gitlab-Token")
    elif provider in ("bitbucket", "bitbucket-server"):
        header = _header(headers, "X-Hub-Signature")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not header or not hmac.compare_digest(header, expected):
            raise WebhookError(401, "invalid or missing X-Hub-Signature")
    else:
        raise WebhookError(404, f"unknown webhook provider {provider!r}: use github, gitea, gitlab, bitbucket or bitbucket-server")


def parse_push(provider: str, headers: dict[str, str], body: bytes) -> PushEvent:
    """Parse a verified push payload; raise WebhookError(400) when it is not one we understand."""
    try:
        payload = loader.load_one(body or b"{}", as_json=True, limits=_PAYLOAD_LIMITS)
    except loader.LoadError as exc:
        raise WebhookError(400, f"body is not JSON: {exc.message}") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "body is not a JSON object")
    if provider in ("github", "gitea"):
        event = _header(headers, "X-GitHub-Event") or _header(headers, "X-Gitea-Event")
        delivery = _header(headers, "X-GitHub-Delivery") or _header(headers, "X-Gitea-Delivery")
        repo = payload.get("repository") or {}
        urls = tuple(u for u in (repo.get("clone_url"), repo.get("html_url"), repo.get("ssh_url"), repo.get("url")) if u)
        if event == "ping":
            return PushEvent(provider, delivery, urls, "", "", "ping")
        if event != "push":
            raise WebhookError(400, f"unsupported event {event!r}: gitferry acts on push and ping")
        return PushEvent(provider, delivery, urls, str(payload.get("ref", "")), str(payload.get("after", "")), "push")
    if provider == "gitlab":
        event = _header(headers, "X-Gitlab-Event")
        delivery = _header(headers, "X-Gitlab-Event-UUID")
        project = payload.get("project") or {}
        urls = tuple(u for u in (project.get("git_http_url"), project.get("web_url"), project.get("git_ssh_url")) if u)
        if event not in ("Push Hook", "Tag Push Hook"):
            raise WebhookError(400, f"unsupported event {event!r}: gitferry acts on Push Hook and Tag Push Hook")
        return PushEvent(provider, delivery, urls, str(payload.get("ref", "")), str(payload.get("after", "")), "push")
    if provider == "bitbucket":
        delivery = _header(headers, "X-Request-UUID")
        repo = payload.get("repository") or {}
        html = ((repo.get("links") or {}).get("html") or {}).get("href")
        changes = ((payload.get("push") or {}).get("changes") or [{}])
        new = (changes[-1] or {}).get("new") or {}
        ref_type = "tags" if new.get("type") == "tag" else "heads"
        return PushEvent(provider, delivery, tuple(u for u in (html,) if u), f"refs/{ref_type}/{new.get('name', '')}",
                         str((new.get("target") or {}).get("hash", "")), "push")
    if provider == "bitbucket-server":
        delivery = _header(headers, "X-Request-Id")
        repo = payload.get("repository") or {}
        clones = [link.get("href") for link in ((repo.get("links") or {}).get("clone") or []) if link.get("href")]
        changes = payload.get("changes") or [{}]
        change = changes[-1] or {}
        return PushEvent(provider, delivery, tuple(clones), str(change.get("refId", "")), str(change.get("toHash", "")), "push")
    raise WebhookError(404, f"unknown webhook provider {provider!r}")


def normalise_repo_url(url: str) -> str:
    """Compare repositories by host + path, ignoring scheme, credentials, ``.git`` and case,
    so ``https://github.com/Org/App.git`` from a webhook matches ``https://github.com/org/app``
    in an Application."""
    text = url.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    elif text.startswith("git@"):
        text = text[len("git@"):].replace(":", "/", 1)
    text = text.split("@", 1)[-1]
    return text.removesuffix("/").removesuffix(".git")


_parse_push_fields = parse_push


def parse_push(provider: str, headers: dict[str, str], body: bytes) -> PushEvent:  # noqa: F811
    """Parse a verified push payload; raise WebhookError(400) when it is not one we understand,
    including a JSON object whose fields have the wrong shapes (``"repository": 1``,
    ``"changes": [null]``), which the property tests of tests/reliability found crashing."""
    try:
        return _parse_push_fields(provider, headers, body)
    except (AttributeError, TypeError, IndexError, KeyError) as exc:
        raise WebhookError(400, f"body is not a {provider} push payload: {type(exc).__name__}") from None
