"""Engine error types.

Every error the engine raises on purpose derives from :class:`GitferryError` so
handlers can catch one type and turn it into an app ``condition`` (the
``condition_type`` attribute names the Argo CD condition type users know) or an
API answer. Messages are written for a person and never contain credentials:
callers pass URLs through :func:`redact_url` before building a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "GitferryError",
    "InvalidSpecError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "LeaseHeldError",
    "StateError",
    "SecretError",
    "GitError",
    "GitAuthError",
    "RevisionNotFoundError",
    "RenderError",
    "HelmRepoError",
    "OciError",
    "redact_url",
]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """Drop any ``user:password@`` part of a URL so it can be shown safely."""
    return _USERINFO.sub(r"\g<scheme>", url)


class GitferryError(Exception):
    """Base of every error the engine raises deliberately."""

    #: Argo CD condition type this error maps to when recorded on an app status.
    condition_type: str = "UnknownError"


class InvalidSpecError(GitferryError):
    """An Application (or other user document) is refused; ``problems`` lists
    every bad field as ``path: message`` so the user fixes them all in one go."""

    condition_type = "InvalidSpecError"

    def __init__(self, problems: Iterable[str], subject: str = "invalid Application spec") -> None:
        self.problems: list[str] = list(problems)
        self.subject = subject
        super().__init__(f"{subject}:\n" + "\n".join(f"  {p}" for p in self.problems))


class NotFoundError(GitferryError):
    """A stored item (application, repository, cluster, secret, blob) is missing."""


class UnauthorizedError(GitferryError):
    """A management API call without the right bearer token."""


class ForbiddenError(GitferryError):
    """An authenticated caller whose role does not allow the request (HTTP 403)."""


class PayloadTooLargeError(GitferryError):
    """A request body over the API's size bound (HTTP 413)."""


class ConflictError(GitferryError):
    """An optimistic-lock write lost: someone else changed the item first."""


class UnprocessableError(GitferryError):
    """A well-formed request naming something that does not exist where it must (a sync
    ``revision`` the repository does not have): HTTP 422."""


class LeaseHeldError(GitferryError):
    """Another operation holds the application's operation lease."""

    def __init__(self, app: str, holder: str, expires_at: int) -> None:
        self.app = app
        self.holder = holder
        self.expires_at = expires_at
        super().__init__(f"application {app!r} has operation {holder!r} running (lease until {expires_at})")


class StateError(GitferryError):
    """The state store could not do what was asked (bad stored data, AWS error)."""


class SecretError(GitferryError):
    """Secrets Manager failed; the message never includes the secret value."""


class GitError(GitferryError):
    """Fetching from a Git repository failed (network, protocol, missing object)."""

    condition_type = "ComparisonError"

    def __init__(self, message: str, url: str = "", revision: str = "") -> None:
        self.url = redact_url(url)
        self.revision = revision
        super().__init__(message)


class GitAuthError(GitError):
    """The repository refused our credentials (or asked for some we do not have)."""


class RevisionNotFoundError(GitError):
    """``targetRevision`` names no branch, tag or known commit of the repository."""


class HelmRepoError(GitferryError):
    """A Helm chart repository failed us: unreachable, credentials refused, chart or version
    not in its index (the message lists what is there), or an archive that does not match
    the index's digest or would extract outside its directory. Shown on the app like a Git
    error, since it stops the comparison the same way."""

    condition_type = "ComparisonError"

    def __init__(self, message: str, url: str = "", revision: str = "") -> None:
        self.url = redact_url(url)
        self.revision = revision
        super().__init__(message)


class OciError(HelmRepoError):
    """An OCI registry failed us (unreachable, credentials missing or refused, tag or digest
    not there, an artifact of a media type gitferry does not render). A HelmRepoError, so it
    stops a comparison the same way and is shown as a ComparisonError."""


class RenderError(GitferryError):
    """A source could not be turned into manifests; names the file (relative to
    the repository) and, where known, the line, so the user can find it."""

    condition_type = "ComparisonError"

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")
