"""Webhook signature checks and push parsing, with payloads shaped like the providers' own."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from gitferry.webhooks import WebhookError, normalise_repo_url, parse_push, verify_signature

SECRET = "s3cret"


def github_push(ref: str = "refs/heads/main", after: str = "a" * 40) -> bytes:
    return json.dumps({
        "ref": ref,
        "before": "0" * 40,
        "after": after,
        "repository": {
            "full_name": "org/guestbook",
            "clone_url": "https://github.com/org/guestbook.git",
            "html_url": "https://github.com/org/guestbook",
            "ssh_url": "git@github.com:org/guestbook.git",
        },
    }).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_signature_accepted_and_push_parsed() -> None:
    body = github_push()
    headers = {"X-Hub-Signature-256": sign(body), "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}
    verify_signature("github", headers, body, SECRET)
    event = parse_push("github", headers, body)
    assert event.branch == "main"
    assert event.commit == "a" * 40
    assert event.delivery == "d-1"
    assert "https://github.com/org/guestbook.git" in event.repo_urls


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_github_bad_or_missing_signature_is_401(header: str | None) -> None:
    body = github_push()
    headers = {"X-GitHub-Event": "push"}
    if header:
        headers["X-Hub-Signature-256"] = header
    with pytest.raises(WebhookError) as err:
        verify_signature("github", headers, body, SECRET)
    assert err.value.status == 401


def test_signature_with_another_secret_is_refused() -> None:
    body = github_push()
    with pytest.raises(WebhookError):
        verify_signature("github", {"X-Hub-Signature-256": sign(body, "other")}, body, SECRET)


def test_headers_are_case_insensitive() -> None:
    body = github_push()
    verify_signature("github", {"x-hub-signature-256": sign(body)}, body, SECRET)


def test_oversized_body_is_refused_before_hashing() -> None:
    body = b"x" * (1024 * 1024 + 1)
    with pytest.raises(WebhookError) as err:
        verify_signature("github", {"X-Hub-Signature-256": sign(body)}, body, SECRET)
    assert err.value.status == 413


def test_gitlab_token() -> None:
    body = json.dumps({"ref": "refs/tags/v1", "after": "b" * 40,
                       "project": {"git_http_url": "https://gitlab.com/org/app.git"}}).encode()
    headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Tag Push Hook"}
    verify_signature("gitlab", headers, body, SECRET)
    event = parse_push("gitlab", headers, body)
    assert event.tag == "v1" and event.branch is None
    with pytest.raises(WebhookError):
        verify_signature("gitlab", {"X-Gitlab-Token": "nope"}, body, SECRET)


def test_unknown_provider_and_event() -> None:
    with pytest.raises(WebhookError) as err:
        verify_signature("svn", {}, b"{}", SECRET)
    assert err.value.status == 404
    with pytest.raises(WebhookError) as err:
        parse_push("github", {"X-GitHub-Event": "issues"}, b"{}")
    assert err.value.status == 400


def test_ping_is_recognised() -> None:
    event = parse_push("github", {"X-GitHub-Event": "ping"}, github_push())
    assert event.kind == "ping"


@pytest.mark.parametrize("url", [
    "https://github.com/Org/Guestbook.git",
    "http://user:token@github.com/org/guestbook",
    "git@github.com:org/guestbook.git",
    "https://github.com/org/guestbook/",
])
def test_repo_urls_normalise_to_one_identity(url: str) -> None:
    assert normalise_repo_url(url) == "github.com/org/guestbook"


def test_a_deeply_nested_payload_is_400_not_a_crash() -> None:
    body = b'{"ref": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(WebhookError) as err:
        parse_push("github", {"X-GitHub-Event": "push"}, body)
    assert err.value.status == 400
    assert "nested deeper than" in err.value.message
