"""Browser tests of the web console: Playwright (PyPI) driving Debian's Chromium (installed here
when missing; no browser download) against the local stack's API, which serves the console's
built assets exactly as the api function does in AWS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.story import LocalWorld

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BUILT = ROOT / "functions" / "api" / "console" / "index.html"
#: screenshots of every page the tests visit (kept for a human to look at)
SCREENS = ROOT / ".cache" / "console-screens"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("the console tests need /usr/bin/chromium: apt-get install -y chromium (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=True)


def _ensure_console_built() -> None:
    if not BUILT.is_file():
        subprocess.run(["make", "console"], cwd=ROOT, check=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    _ensure_chromium()
    _ensure_console_built()
    SCREENS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.stack.start_loop(schedule_interval=2)  # the pipeline runs while the browser watches
        yield w


class Page:
    """A browser tab on the console with every page error and failed script collected."""

    def __init__(self, browser: object, world: LocalWorld, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.world = world
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        # (the browser logs every 4xx the API answers; the page shows those itself)
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" and not re.search(r"status of 4\d\d", m.text) else None)

    def goto(self, path: str) -> None:
        self.page.goto(self.world.api.rstrip("/") + path)

    def sign_in(self, page: str = "applications") -> None:
        """The token through the #token= fragment (never sent to the server)."""
        self.goto(f"/{page}#token={self.world.api_token}")
        self.page.wait_for_selector(f"main#{page}")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: object, world: LocalWorld) -> Iterator[Page]:
    p = Page(browser, world, DESKTOP)
    yield p
    p.close()
    assert not p.errors, p.errors
