"""The web console's static files: index.html for every page path, the bundled JS/CSS assets.

The console is a single-page app (sources in ``console/``, bundled by esbuild into the api
function's ``console/`` directory by ``make dev`` / ``make package``; never committed). Pages
(``/``, ``/applications``, ``/applications/<name>``, ``/repositories``, ``/clusters``) are
unauthenticated static files holding no data: the browser sends the API token with every
``/api/v1`` call it makes. The token never travels in a URL the server sees (``#token=`` is a
fragment).

Assets are served only by the names the build wrote (content-hashed, so they are cached for a
year); anything else is 404. Every answer carries a Content-Security-Policy that allows scripts
and styles from this origin only, so even a rendering mistake cannot run an injected script.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

__all__ = ["PAGE_PATHS", "Console", "Page", "is_page", "stage_prefix"]

#: Single-page routes answered with index.html (the browser's router draws them).
PAGE_PATHS = re.compile(r"^/(?:(?:applications(?:/[^/]+)?|repositories|clusters)/?)?$")
ASSET_PATH = re.compile(r"^/assets/([A-Za-z0-9][A-Za-z0-9._-]{0,120})$")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: How the server tells the page where it lives (the API Gateway stage, e.g. ``/Prod``).
BASE_PLACEHOLDER = "%GITFERRY_BASE%"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gitferry console not built</title></head>
<body><h1>The gitferry console is not built</h1>
<p>This api function was packaged without the console's assets (<code>{where}</code> has no
<code>index.html</code>). Build them with <code>make dev</code> (it runs <code>npm ci</code> and the
esbuild bundle in <code>console/</code>) or <code>make package</code> for a deployment.</p>
<p>The API itself works: <code>curl -H "Authorization: Bearer $TOKEN" .../api/v1/applications</code>.</p>
</body></html>
"""


def is_page(path: str) -> bool:
    """A console page or asset path (static, no token needed)."""
    return bool(PAGE_PATHS.match(path) or ASSET_PATH.match(path))


def stage_prefix(request_context_path: str | None, path: str) -> str:
    """The prefix the caller's URL has before ``path`` (``/Prod`` on an execute-api URL, ``""``
    on a custom domain): the page builds its links and API calls under it."""
    full = request_context_path or path
    if path == "/":
        prefix = full.rstrip("/")
    elif full.endswith(path) and full != path:
        prefix = full[: -len(path)]
    else:
        prefix = ""
    return prefix if re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", prefix) else ""


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Console:
    """The build output directory (``index.html`` + ``assets/``), read once per process."""

    root: Path

    @cached_property
    def _index(self) -> str | None:
        index = self.root / "index.html"
        return index.read_text(encoding="utf-8") if index.is_file() else None

    @cached_property
    def _assets(self) -> dict[str, tuple[str, str]]:
        """name -> (content type, text), read once: a few hundred KB, served from memory."""
        folder = self.root / "assets"
        if not folder.is_dir():
            return {}
        return {p.name: (CONTENT_TYPES[p.suffix], p.read_text(encoding="utf-8"))
                for p in folder.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}

    def page(self, base: str) -> Page:
        """index.html with the base path filled in, or the "not built" page (503)."""
        if self._index is None:
            return Page(503, "text/html; charset=utf-8", NOT_BUILT.format(where=html.escape(str(self.root))),
                        {**SECURITY_HEADERS, "Cache-Control": "no-store"})
        body = self._index.replace(BASE_PLACEHOLDER, html.escape(base, quote=True))
        return Page(200, "text/html; charset=utf-8", body, {**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    def asset(self, path: str) -> Page:
        match = ASSET_PATH.match(path)
        found = self._assets.get(match.group(1)) if match else None
        if found is None:
            return Page(404, "text/plain; charset=utf-8", "no such console asset\n", dict(SECURITY_HEADERS))
        return Page(200, found[0], found[1], {**SECURITY_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"})
