"""The console's pure JavaScript modules (form <-> manifest, filters, topology) under node's own
test runner, with the npm packages of console/package-lock.json (make console installs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def test_console_logic() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the console (make console installs it)")
    if not (CONSOLE / "node_modules" / ".installed").exists():
        subprocess.run(["make", "console"], cwd=CONSOLE.parent, check=True)
    proc = subprocess.run([node, "--test", "test/"], cwd=CONSOLE, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# fail 0" in proc.stdout
