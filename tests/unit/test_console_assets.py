"""gitferry.console: which paths are pages, the stage prefix, the build output served by name
only, and a clear page (not a trace) when the api function was packaged without the build."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitferry.console import CSP, Console, is_page, stage_prefix


@pytest.mark.parametrize("path", ["/", "/applications", "/applications/", "/applications/guestbook",
                                  "/repositories", "/clusters", "/assets/app-X1.js"])
def test_console_paths_are_pages(path: str) -> None:
    assert is_page(path)


@pytest.mark.parametrize("path", ["/api/v1/applications", "/applications/a/b", "/assets/../app.py", "/assets/",
                                  "/assets/a/b.js", "/webhooks/github", "/openapi.json"])
def test_other_paths_are_not(path: str) -> None:
    assert not is_page(path)


@pytest.mark.parametrize(("context_path", "path", "prefix"), [
    ("/Prod/", "/", "/Prod"), ("/Prod", "/", "/Prod"), ("/Prod/applications/x", "/applications/x", "/Prod"),
    ("/applications", "/applications", ""), (None, "/clusters", ""),
    ('/"><x/applications', "/applications", ""),  # never a prefix that is not a plain path
])
def test_stage_prefix(context_path: str | None, path: str, prefix: str) -> None:
    assert stage_prefix(context_path, path) == prefix


def _built(tmp_path: Path) -> Console:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<base-is "%GITFERRY_BASE%"><script src="%GITFERRY_BASE%/assets/app-1.js">')
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "assets" / "notes.py").write_text("secret = 1")
    return Console(tmp_path)


def test_index_gets_the_base_escaped_and_security_headers(tmp_path: Path) -> None:
    page = _built(tmp_path).page('/Prod"<')
    assert page.status == 200 and '/Prod&quot;&lt;/assets/app-1.js' in page.body
    assert page.headers["Content-Security-Policy"] == CSP and page.headers["Cache-Control"] == "no-cache"


def test_assets_by_built_name_only(tmp_path: Path) -> None:
    console = _built(tmp_path)
    js = console.asset("/assets/app-1.js")
    assert js.status == 200 and js.content_type.startswith("text/javascript") and "immutable" in js.headers["Cache-Control"]
    assert console.asset("/assets/notes.py").status == 404  # not a served type
    assert console.asset("/assets/../index.html").status == 404
    assert console.asset("/assets/missing.js").status == 404


def test_missing_build_is_a_clear_page(tmp_path: Path) -> None:
    page = Console(tmp_path / "nothing").page("")
    assert page.status == 503 and page.content_type.startswith("text/html")
    assert "console is not built" in page.body and "make dev" in page.body
    assert Console(tmp_path / "nothing").asset("/assets/app.js").status == 404
