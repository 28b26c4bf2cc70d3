"""Git over ssh without an ``ssh`` binary (Lambda has none): a dulwich ``SSHVendor`` on paramiko.

The private key and the known hosts come from the repository's credentials (Secrets Manager),
never from files or an agent: ``look_for_keys``/``allow_agent`` are off and an unknown or
changed host key is refused (``RejectPolicy``), as ``StrictHostKeyChecking=yes`` does. Every
error names the host, never the key.
"""

from __future__ import annotations

import io
from typing import Any

import paramiko

from gitferry.errors import GitAuthError, GitError, redact_url

__all__ = ["KeyVendor", "load_private_key", "load_known_hosts", "SSH_TIMEOUT_SECONDS"]

SSH_TIMEOUT_SECONDS = 30.0
_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def load_private_key(text: str) -> paramiko.PKey:
    """The key of an OpenSSH / PEM private key text (unencrypted); ValueError saying why not."""
    last = "not a private key"
    for kind in _KEY_TYPES:
        try:
            return kind.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            raise ValueError("is encrypted with a passphrase: register an unencrypted key") from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError) as exc:
            last = type(exc).__name__
    raise ValueError(f"is not an OpenSSH or PEM private key (ed25519, ecdsa or rsa) ({last})")


def load_known_hosts(text: str) -> paramiko.HostKeys:
    """known_hosts lines (``host[,host] keytype base64``, ``[host]:port`` for other ports,
    hashed ``|1|`` names); ValueError naming the first bad line."""
    keys = paramiko.HostKeys()
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            entry = None
        if entry is None or entry.key is None:
            raise ValueError(f"line {number}: not a known_hosts entry (host keytype base64-key)")
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
        count += 1
    if not count:
        raise ValueError("has no host key")
    return keys


class _Channel:
    """What dulwich's Protocol reads from and writes to: one ``exec`` channel."""

    def __init__(self, client: paramiko.SSHClient, channel: paramiko.Channel) -> None:
        self.client = client
        self.channel = channel
        self.stderr = None

    def can_read(self) -> bool:
        return bool(self.channel.recv_ready())

    def write(self, data: bytes) -> None:
        self.channel.sendall(data)

    def read(self, n: int | None = None) -> bytes:
        if n is None:
            chunks = []
            while chunk := self.channel.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        out = bytearray()
        while len(out) < n:
            chunk = self.channel.recv(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def close(self, timeout: int | None = None) -> None:
        del timeout
        self.channel.close()
        self.client.close()


class KeyVendor:
    """dulwich SSH vendor with one key and the hosts it may talk to."""

    def __init__(self, private_key: str, known_hosts: str, url: str,
                 timeout: float = SSH_TIMEOUT_SECONDS) -> None:
        self.pkey = load_private_key(private_key)
        self.host_keys = load_known_hosts(known_hosts)
        self.url = url
        self.timeout = timeout

    def run_command(self, host: str, command: bytes | str, username: str | None = None, port: int | None = None,
                    password: str | None = None, key_filename: str | None = None, ssh_command: str | None = None,
                    protocol_version: int | None = None, **_: Any) -> _Channel:
        del password, key_filename, ssh_command, protocol_version  # never from the URL or files
        client = paramiko.SSHClient()
        for name, by_type in self.host_keys.items():
            for key in by_type.values():
                client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = f"{host}:{port or 22}"
        try:
            client.connect(host, port=port or 22, username=username or "git", pkey=self.pkey,
                           look_for_keys=False, allow_agent=False, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout)
        except paramiko.BadHostKeyException:
            client.close()
            raise GitError(f"ssh host key of {where} does not match the registered known hosts", self.url) from None
        except paramiko.AuthenticationException:
            client.close()
            raise GitAuthError(f"ssh authentication failed for {redact_url(self.url)}: the private key was refused",
                               self.url) from None
        except paramiko.SSHException as exc:
            client.close()
            text = str(exc)
            if "not found in known_hosts" in text:
                raise GitError(f"ssh host {where} is not in the registered known hosts", self.url) from None
            raise GitError(f"ssh to {where} failed: {type(exc).__name__}", self.url) from None
        except OSError as exc:
            client.close()
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
            raise GitError(f"cannot reach {redact_url(self.url)}: {reason}", self.url) from None
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=self.timeout)
        channel.settimeout(self.timeout)
        channel.exec_command(command.decode() if isinstance(command, bytes) else command)
        return _Channel(client, channel)
