"""``make up`` (python -m local.up) as a user runs it: one `ready` line and a JSON file of what it
printed, the CLI logs in with what that file says, a second start on the same port is refused with
a message (no traceback), and Ctrl-C removes the temporary directories and the file."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from local.runner import REPO_ROOT

GITFERRY = Path(sys.executable).parent / "gitferry"


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    """The lines printed up to and including `ready` (read on a thread: a pipe has no timeout)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line == "ready":
            return seen
    raise AssertionError(f"no ready line; exit {proc.poll()}; printed {seen[-20:]}")


def test_up_writes_its_info_refuses_a_second_start_and_cleans_up(tmp_path: Path) -> None:
    info_file = tmp_path / "up.json"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("GITFERRY_TOKEN", None)
    log = (tmp_path / "stderr").open("w")  # a file, not a pipe nobody reads (it could fill and block)
    proc = subprocess.Popen([sys.executable, "-m", "local.up", "--port", "0", "--quiet", "--info-file", str(info_file)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        printed = _wait_ready(proc)
        info = json.loads(info_file.read_text())
        assert oct(info_file.stat().st_mode & 0o777) == "0o600"
        assert info["api"] in "\n".join(printed) and info["kubeconfig"] in "\n".join(printed)
        assert Path(info["kubeconfig"]).exists() and info["git"].startswith("http://")
        assert Path(info["tokenFile"]).read_text().strip() == info["token"]
        workdir = Path(info["workdir"])

        login = subprocess.run([str(GITFERRY), "login", info["api"], "--token-stdin"], env=env, text=True,
                               input=Path(info["tokenFile"]).read_text(), capture_output=True, timeout=60)
        assert login.returncode == 0, login.stderr
        clusters = subprocess.run([str(GITFERRY), "cluster", "list", "-o", "name"], env=env, text=True,
                                  capture_output=True, timeout=60)
        assert clusters.stdout.split() == ["local"]
        eks = subprocess.run([str(GITFERRY), "cluster", "add", "eks", "--eks", "local-eks"], env=env, text=True,
                             capture_output=True, timeout=60)  # the EKS cluster `make up` prepared in moto
        assert eks.returncode == 0 and info["eksCluster"].endswith(":cluster/local-eks"), eks.stderr

        port = info["api"].rsplit(":", 1)[1]
        second = subprocess.run([sys.executable, "-m", "local.up", "--port", port, "--quiet", "--info-file",
                                 str(tmp_path / "second.json")], cwd=REPO_ROOT, env=env, text=True,
                                capture_output=True, timeout=120)
        assert second.returncode == 1
        assert f"port {port} on 127.0.0.1 is in use" in second.stderr and "Traceback" not in second.stderr
        assert info_file.exists()  # the refused start leaves the running one's file alone
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == 0
    assert not info_file.exists() and not workdir.exists()
