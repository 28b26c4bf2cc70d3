"""Named API tokens and repository credentials through the ``gitferry`` console script against
the local stack: ``token create|list|rm``, a read-only token reading and refreshing but refused
on writes (exit 4, 403), a revoked one 401; ``repo add`` with a password, a token or an ssh key
(a real sshd), checked before it is kept (exit 7 with the reason), ``repo get``, ``repo update``;
no token, password or key in any output but the one ``token create`` prints."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.sshd import SshServer, keygen
from local.story import DEPLOYMENT, LocalWorld
from tests.cli.test_cli import OUTPUTS, Cli

# ---------------------------------------------------------------------------- named tokens


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        token = "tok-" + secrets.token_urlsafe(18)
        w.put_secret("gitferry/api-token", token)
        w.api_token = token
        w.stack.start_loop(schedule_interval=2)
        yield w


@pytest.fixture(scope="module")
def cli(world: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    c = Cli(world, tmp_path_factory.mktemp("xdg"))
    c.ok("login", world.api, "--token-stdin", stdin=world.api_token + "\n")
    c.ok("cluster", "add", "local", "--kubeconfig", world.kube.kubeconfig_path)
    return c


def test_token_create_list_rm_and_a_read_only_token_is_refused_on_writes(
        cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    created = cli("token", "create", "viewer", "--role", "readonly")
    assert created.code == 0, created.err
    value = created.out.strip()
    assert value.startswith("gft_viewer_") and "shown only now" in created.err and value not in created.err
    OUTPUTS.remove(created.out)  # printed on purpose, once: the only output allowed to hold it
    listed = cli.ok("token", "list")
    assert listed.splitlines()[0].split() == ["NAME", "ROLE", "CREATED"]
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows["admin"][1:3] == ["(bootstrap)", "admin"] and rows["viewer"][1] == "readonly"
    assert value not in listed
    as_json = json.loads(cli.ok("token", "list", "-o", "json"))
    assert {t["name"] for t in as_json} == {"admin", "viewer"}
    assert cli("token", "create", "viewer", "--role", "admin").code == 6
    assert cli("token", "create", "x", "--role", "owner").code == 2

    viewer = Cli(world, tmp_path / "viewer")
    viewer.ok("login", world.api, "--token-stdin", stdin=value + "\n")
    repo = world.git.make_repo("cliview", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
    cli.ok("app", "create", "--name", "cliview", "--repo", repo, "--path", "app", "--dest-server", world.kube.url,
           "--dest-namespace", "cliview", "--sync-option", "CreateNamespace=true")
    assert "cliview" in viewer.ok("app", "list")
    assert viewer.ok("cluster", "list", "-o", "name").split() == ["local"]
    assert "refresh of 'cliview'" in viewer.ok("app", "refresh", "cliview")
    for args in (("app", "sync", "cliview"), ("app", "delete", "cliview"), ("cluster", "rm", "local"),
                 ("repo", "add", "https://example.com/x.git"), ("token", "create", "mine", "--role", "admin"),
                 ("token", "rm", "viewer")):
        refused = viewer(*args)
        assert refused.code == 4 and "403" in refused.err and "read-only" in refused.err, (args, refused)
    assert "token 'viewer' revoked" in cli.ok("token", "rm", "viewer")
    gone = viewer("app", "list")
    assert gone.code == 4 and "401" in gone.err
    assert cli("token", "rm", "viewer").code == 5
    for text in OUTPUTS:
        assert value not in text and world.api_token not in text


# ---------------------------------------------------------------------------- repositories


def test_repo_add_with_password_token_or_ssh_key_get_and_update(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    password = "pw-" + secrets.token_urlsafe(12)
    url = world.git.make_repo("clipriv", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")},
                              auth=("deploy", password))
    wrong = cli("repo", "add", url, "--username", "deploy", "--password-stdin", stdin="nope-" + password + "\n")
    assert wrong.code == 7 and "422" in wrong.err and "credentials were refused" in wrong.err
    cli.ok("repo", "add", url, "--name", "clipriv", "--username", "deploy", "--password-stdin", stdin=password + "\n")
    shown = cli.ok("repo", "get", "clipriv")
    assert "Type:         git" in shown and "Credentials:  yes" in shown and "Username:     deploy" in shown
    world.git.set_auth("clipriv", "deploy", "new-" + password)
    refused = cli("repo", "update", "clipriv", "--token-stdin", stdin="newer-" + password + "\n")
    assert refused.code == 7
    assert "updated" in cli.ok("repo", "update", "clipriv", "--token-stdin", stdin="new-" + password + "\n")
    assert json.loads(cli.ok("repo", "get", url, "-o", "json"))["hasCredentials"] is True
    assert cli("repo", "update", "clipriv").code == 2

    with SshServer(tmp_path / "sshd", world.git.root) as ssh:
        world.git.make_repo("clissh", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
        key = tmp_path / "deploy_key"
        key.write_text(ssh.private_key)
        hosts = tmp_path / "known_hosts"
        _, other = keygen(tmp_path / "other_host", "other")
        hosts.write_text(f"[127.0.0.1]:{ssh.port} " + " ".join(other.split()[:2]) + "\n")
        bad = cli("repo", "add", ssh.url("clissh"), "--ssh-private-key-path", str(key),
                  "--ssh-known-hosts-path", str(hosts))
        assert bad.code == 7 and "does not match the registered known hosts" in bad.err
        hosts.write_text(ssh.known_hosts)
        cli.ok("repo", "add", ssh.url("clissh"), "--ssh-private-key-path", str(key), "--ssh-known-hosts-path",
               str(hosts))
        assert "Credentials:  yes" in cli.ok("repo", "get", ssh.url("clissh"))
    key_line = ssh.private_key.splitlines()[1]
    for text in OUTPUTS:
        assert password not in text and key_line not in text
