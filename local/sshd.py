"""A real OpenSSH server (Debian ``openssh-server``) on a free loopback port serving the local git
server's bare repositories over ssh (``git-upload-pack`` through ``git-shell``), for the tests of
ssh repositories.

It generates its own host key and one client key; the client key is authorized for the current
user only with ``restrict`` and ``git-shell`` as its forced command (nothing but git's pack
commands can run), password and keyboard-interactive logins are off, and it listens on 127.0.0.1
only. ``known_hosts`` is the line a client must trust (``[127.0.0.1]:PORT ssh-ed25519 ...``).
``ensure_sshd`` installs the package when ``/usr/sbin/sshd`` is missing (CI is a clean machine).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


def ensure_sshd() -> Path:
    """``/usr/sbin/sshd``, installing Debian's openssh-server first when it is missing."""
    if not SSHD.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
    return SSHD


def keygen(path: Path, comment: str) -> tuple[str, str]:
    """A new ed25519 key pair at ``path``: (private key text, public key line)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SshServer:
    """``with SshServer(workdir, git_root) as ssh: ssh.url("repo")``, ``ssh.private_key``,
    ``ssh.known_hosts``."""

    def __init__(self, workdir: Path | str, git_root: Path | str) -> None:
        self.workdir = Path(workdir)
        self.git_root = Path(git_root).resolve()
        self.user = getpass.getuser()
        self.port = 0
        self.private_key = ""
        self.known_hosts = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SshServer:
        sshd = ensure_sshd()
        self.workdir.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
        _, host_pub = keygen(self.workdir / "host_ed25519", "gitferry-test-host")
        self.private_key, client_pub = keygen(self.workdir / "client_ed25519", "gitferry-test-client")
        git_shell = shutil.which("git-shell") or "/usr/bin/git-shell"
        authorized = self.workdir / "authorized_keys"
        authorized.write_text(f'restrict,command="{git_shell} -c \\"$SSH_ORIGINAL_COMMAND\\"" {client_pub}\n')
        authorized.chmod(0o600)
        self.port = _free_port()
        config = self.workdir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.workdir / 'host_ed25519'}",
            f"AuthorizedKeysFile {authorized}", "PubkeyAuthentication yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", f"AllowUsers {self.user}",
            "PermitRootLogin prohibit-password", f"PidFile {self.workdir / 'sshd.pid'}",
            "LogLevel ERROR", "",
        ]))
        self._proc = subprocess.Popen([str(sshd), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        break
            except OSError:
                pass
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"sshd exited {self._proc.returncode}: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sshd did not answer within 20 s")
            time.sleep(0.1)
        kind, key = host_pub.split()[:2]
        self.known_hosts = f"[127.0.0.1]:{self.port} {kind} {key}\n"
        return self

    def url(self, repo: str) -> str:
        """``ssh://user@127.0.0.1:PORT/abs/path/repo.git`` of a repository of the git server."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.git_root / (repo + '.git')}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
