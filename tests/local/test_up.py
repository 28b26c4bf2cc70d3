"""``make up`` (python -m local.up) as a user runs it: one `ready` line and a JSON file of what it
printed, the CLI logs in with what that file says, a second start on the same port is refused with
a message (no traceback), and Ctrl-C removes the temporary directories and the file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
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
        import urllib.request

        with urllib.request.urlopen(f"http://{info['ociRegistry']}/v2/", timeout=10) as resp:  # docker-registry
            assert resp.status == 200 and resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        request = urllib.request.Request(f"{info['api']}/api/v1/repositories",
                                         headers={"Authorization": f"Bearer {info['token']}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            registered = json.load(resp)["items"]
        assert {"url": f"oci://{info['ociRegistry']}", "type": "oci", "plainHttp": True} in [
            {k: r.get(k) for k in ("url", "type", "plainHttp")} for r in registered]

        _own_repository_as_the_banner_says(info, printed, env, tmp_path)
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


def _own_repository_as_the_banner_says(info: dict, printed: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """The banner's commands, run as printed: a bare repo on the local git server, a push over
    HTTP, the app created with the CLI and Synced; then a push announced by a webhook signed with
    the secret `make up` created (202, and the new commit is synced)."""
    banner = "\n".join(printed)
    root = Path(info["gitRoot"])
    assert f"git init --bare --initial-branch=main {root}/myapp.git" in banner
    url = f"{info['git']}/myapp.git"
    assert f"push {url} HEAD:main" in banner and f"--repo {url}" in banner
    git_env = {**env, "GIT_AUTHOR_NAME": "me", "GIT_AUTHOR_EMAIL": "me@example.invalid",
               "GIT_COMMITTER_NAME": "me", "GIT_COMMITTER_EMAIL": "me@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}
    work = tmp_path / "my-manifests"
    work.mkdir()
    (work / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\ndata:\n  v: '1'\n")

    def git(*args: str, cwd: Path = work) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=git_env, check=True, capture_output=True,
                              text=True, timeout=60).stdout.strip()

    git("init", "--bare", "--initial-branch=main", f"{root}/myapp.git", cwd=tmp_path)
    git("init", "--initial-branch=main")
    git("add", ".")
    git("commit", "-m", "mine")
    git("push", url, "HEAD:main")

    def gitferry(*args: str) -> str:
        run = subprocess.run([str(GITFERRY), *args], env=env, text=True, capture_output=True, timeout=150)
        assert run.returncode == 0, f"gitferry {args}: {run.stdout}{run.stderr}"
        return run.stdout

    gitferry("repo", "add", url)
    gitferry("app", "create", "--name", "myapp", "--repo", url, "--path", ".", "--dest-name", "local",
             "--dest-namespace", "myapp", "--sync-option", "CreateNamespace=true", "--sync-policy", "automated")
    gitferry("app", "wait", "myapp", "--sync", "--timeout", "120")

    (work / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\ndata:\n  v: '2'\n")
    git("commit", "-am", "v2")
    git("push", url, "HEAD:main")
    sha = git("rev-parse", "HEAD")
    secret = Path(info["webhookSecretFile"]).read_text().strip()
    body = json.dumps({"ref": "refs/heads/main", "after": sha, "repository": {"clone_url": url}}).encode()
    req = urllib.request.Request(f"{info['api']}/webhooks/github", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 202
    # the template's poll runs once a minute: a Synced answer within 40 s is the webhook's doing
    gitferry("app", "wait", "myapp", "--revision", sha, "--timeout", "40")
