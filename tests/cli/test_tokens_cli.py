"""Named API tokens through the ``gitferry`` console script against the local stack:
``token create|list|rm``, a read-only token reading and refreshing but refused on writes (exit 4,
403), a revoked one 401, and no token value in any output but the one ``token create`` prints."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

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
