"""The management API over HTTP, the login file, and the exit codes an API answer maps to."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

#: exit codes (documented in ``gitferry --help`` and the README)
OK, FAILED, USAGE = 0, 1, 2
NOT_LOGGED_IN_OR_UNREACHABLE, UNAUTHORIZED, NOT_FOUND, CONFLICT, REFUSED, SERVER_ERROR = 3, 4, 5, 6, 7, 8

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  differences (app diff) or a failed condition (sync failed, wait timed out)
  2  usage error (unknown option, missing argument)
  3  not logged in, or the API cannot be reached
  4  the API refused the token (401)
  5  not found (404)
  6  conflict (409: already registered, in use, an operation is running)
  7  invalid or impossible request (400, 413, 422)
  8  the API failed (5xx)"""


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/gitferry/config.json`` (``~/.config/gitferry`` by default)."""
    return Path(click.get_app_dir("gitferry")) / "config.json"


@dataclass
class Login:
    """Where the API is and how to authenticate: a bearer ``token``, or (``auth="aws"``) SigV4
    signatures from the caller's AWS credentials for an API deployed with ApiAuth=AWS_IAM."""

    server: str
    token: str = ""
    auth: str = "token"  # token | aws
    region: str | None = None

    def to_json(self) -> dict[str, str]:
        if self.auth == "aws":
            return {"server": self.server, "auth": "aws", "region": self.region or ""}
        return {"server": self.server, "token": self.token}


def save_login(login: Login) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(login.to_json(), f)
    os.chmod(path, 0o600)  # an existing file keeps its old mode otherwise
    return path


def load_login() -> Login:
    """GITFERRY_SERVER / GITFERRY_TOKEN override the login file."""
    doc: dict[str, Any] = {}
    path = config_path()
    if path.exists():
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            raise ApiError(NOT_LOGGED_IN_OR_UNREACHABLE, f"{path} is not valid JSON: run gitferry login again") from None
    server = os.environ.get("GITFERRY_SERVER") or doc.get("server")
    token = os.environ.get("GITFERRY_TOKEN") or doc.get("token")
    if server and not os.environ.get("GITFERRY_TOKEN") and doc.get("auth") == "aws":
        return Login(str(server).rstrip("/"), auth="aws", region=str(doc.get("region") or "") or None)
    if not server or not token:
        raise ApiError(NOT_LOGGED_IN_OR_UNREACHABLE, "not logged in: run gitferry login API_URL")
    return Login(str(server).rstrip("/"), str(token))


class ApiError(Exception):
    """An answer (or a failure to get one) that ends the command with ``code``."""

    def __init__(self, code: int, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _code_for(status: int) -> int:
    if status == 401 or status == 403:
        return UNAUTHORIZED
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if status in (400, 413, 422):
        return REFUSED
    return SERVER_ERROR


class Client:
    def __init__(self, login: Login, timeout: float = 60.0) -> None:
        self.login = login
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        url = self.login.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.login.auth == "aws":
            headers = sign_sigv4(method, url, headers, data, self.login.region)
        else:
            headers["Authorization"] = f"Bearer {self.login.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            raise ApiError(_code_for(err.code), f"{method} {path}: {err.code} {_message(text)}", err.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(NOT_LOGGED_IN_OR_UNREACHABLE, f"cannot reach {self.login.server}: {reason}") from None
        return json.loads(text) if text else None


def region_of(server: str) -> str | None:
    """The region of an ``https://<id>.execute-api.<region>.amazonaws.com`` URL."""
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", server)
    return match.group(1) if match else None


def default_region(session: Any = None) -> str | None:
    """``AWS_REGION``, else the region of the AWS config (``AWS_DEFAULT_REGION``, profile)."""
    import botocore.session

    session = session or botocore.session.get_session()
    return os.environ.get("AWS_REGION") or session.get_config_variable("region") or None


def sign_sigv4(method: str, url: str, headers: dict[str, str], data: bytes | None,
               region: str | None) -> dict[str, str]:
    """``headers`` plus a SigV4 ``Authorization`` for API Gateway (service ``execute-api``),
    signed with the caller's AWS credentials (environment, profile, SSO, instance role: boto3's
    chain). The credentials themselves are never stored or printed."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ApiError(NOT_LOGGED_IN_OR_UNREACHABLE, "no AWS credentials found (environment, profile or role): "
                       "gitferry login --aws signs requests with them")
    region = region or default_region(session)
    if not region:
        raise ApiError(NOT_LOGGED_IN_OR_UNREACHABLE, "no AWS region: run gitferry login --aws --region REGION")
    request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def _message(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:500]
    if not isinstance(doc, dict):
        return text[:500]
    message = str(doc.get("message", ""))
    problems = doc.get("problems") or []
    return message + "".join(f"\n  {p}" for p in problems)
