"""The ``gitferry app`` verbs of issue 11 run as a user runs them (a subprocess) against the local
stack's API: the filtered list paging through every page, set / patch / update / edit, terminate-op
and events, with their exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application
from tests.cli import test_cli as base
from tests.cli.test_cli import OUTPUTS, Cli, _eventually

# The same fixtures as test_cli.py (a world of its own for this module, the CLI logged in to it).
world = base.world
cli = base.cli

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n" \
             "    argocd.argoproj.io/sync-wave: \"1\"\ndata:\n  k: v\n"


def _create(cli: Cli, world: LocalWorld, tmp_path: Path, name: str, repo: str, labels: dict[str, str],
            namespace: str) -> None:
    doc = yaml.safe_load(application(name, repo, world.kube.url, automated=False, path="app", namespace=namespace))
    doc["metadata"]["labels"] = labels
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    cli.ok("app", "create", "-f", str(path))


def test_app_list_filters_and_pages_through_every_page(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    repo = world.git.make_repo("clilist", {"app/service.yaml": SERVICE})
    for name, labels, ns in (("v-cc", {"suite": "cli", "tier": "web"}, "one"), ("v-aa", {"suite": "cli"}, "two"),
                             ("v-bb", {"suite": "cli", "tier": "db"}, "one")):
        _create(cli, world, tmp_path, name, repo, labels, ns)
    cli.env["GITFERRY_PAGE_SIZE"] = "2"  # three apps: two pages
    try:
        assert cli.ok("app", "list", "-l", "suite=cli", "-o", "name").split() == ["v-aa", "v-bb", "v-cc"]
        assert [i["metadata"]["name"] for i in json.loads(cli.ok("app", "list", "-l", "suite", "-o", "json"))] == [
            "v-aa", "v-bb", "v-cc"]
    finally:
        del cli.env["GITFERRY_PAGE_SIZE"]
    assert cli.ok("app", "list", "-l", "suite=cli,tier", "--namespace", "one", "-o", "name").split() == ["v-bb", "v-cc"]
    assert cli.ok("app", "list", "-l", "suite,tier!=web", "--search", "B", "-o", "name").split() == ["v-bb"]
    assert cli.ok("app", "list", "-l", "suite", "--cluster", world.kube.url, "--repo", repo, "--project", "default",
                  "-o", "name").split() == ["v-aa", "v-bb", "v-cc"]
    _eventually("compared", lambda: cli.ok("app", "list", "-l", "suite", "--sync", "OutOfSync", "-o", "name").split()
                == ["v-aa", "v-bb", "v-cc"])
    assert cli.ok("app", "list", "-l", "suite", "--sync", "Synced", "-o", "name") == ""
    wide = cli.ok("app", "list", "-l", "suite=cli", "-o", "wide").splitlines()
    assert wide[0].split()[-1] == "LABELS" and any("suite=cli,tier=web" in line for line in wide)
    bad = cli("app", "list", "-l", "tier in (")
    assert bad.code == 7 and "selector:" in bad.err
    assert cli("app", "list", "--health", "Fine").code == 2  # not one of the choices: a usage error


def test_app_set_patch_update_and_edit(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    repo = world.git.make_repo("cliset", {"app/service.yaml": SERVICE, "other/service.yaml": SERVICE})
    _create(cli, world, tmp_path, "setme", repo, {"team": "a"}, "setme")
    out = cli.ok("app", "set", "setme", "--path", "other", "--revision", "main", "-l", "tier=web",
                 "--sync-policy", "automated", "--self-heal")
    assert "application 'setme' updated (resourceVersion 2)" in out
    doc = json.loads(cli.ok("app", "get", "setme", "-o", "json"))
    assert doc["spec"]["source"]["path"] == "other" and doc["spec"]["source"]["targetRevision"] == "main"
    assert doc["spec"]["syncPolicy"]["automated"] == {"prune": False, "selfHeal": True, "allowEmpty": False}
    assert doc["metadata"]["labels"] == {"team": "a", "tier": "web"}
    assert cli.ok("app", "set", "setme", "--sync-policy", "none", "-o", "name").strip() == "setme"
    assert "automated" not in json.loads(cli.ok("app", "get", "setme", "-o", "json"))["spec"]["syncPolicy"]
    assert cli("app", "set", "setme").code == 2  # nothing to set
    assert cli("app", "set", "absent", "--path", "x").code == 5
    refused = cli("app", "patch", "setme", "--patch", '{"spec": {"project": "team-a"}}')
    assert refused.code == 7 and "spec.project" in refused.err and "not supported by gitferry" in refused.err
    cli.ok("app", "patch", "setme", "--patch", '{"spec": {"source": {"targetRevision": "HEAD"}}}')

    current = json.loads(cli.ok("app", "get", "setme", "-o", "json"))
    current.pop("status")
    current["spec"]["source"]["path"] = "app"
    path = tmp_path / "update.yaml"
    path.write_text(yaml.safe_dump(current))
    assert "updated" in cli.ok("app", "update", "-f", str(path))
    stale = cli("app", "update", "-f", str(path))  # the same resourceVersion again: changed since
    assert stale.code == 6 and "changed since resourceVersion" in stale.err
    assert cli("app", "update", "-f", "-", stdin="kind: Application\n").code == 2  # no metadata.name

    editor = tmp_path / "editor.py"  # an editor that changes the target revision in the file it is given
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('targetRevision: HEAD', 'targetRevision: v9'))\n")
    cli.env["EDITOR"] = f"{sys.executable} {editor}"
    try:
        assert "updated" in cli.ok("app", "edit", "setme")
        assert json.loads(cli.ok("app", "get", "setme", "-o", "json"))["spec"]["source"]["targetRevision"] == "v9"
        assert "unchanged" in cli.ok("app", "edit", "setme")  # nothing left to replace: no edits
    finally:
        del cli.env["EDITOR"]
    events = json.loads(cli.ok("app", "events", "setme", "-o", "json"))
    methods = [e["details"]["method"] for e in events if e["action"] == "app.update"]
    assert methods == ["PATCH", "PUT", "PATCH", "PATCH", "PATCH"], methods


def _stuck(world: LocalWorld) -> str:
    deployment = yaml.safe_load(DEPLOYMENT.format(replicas=1, image="nginx:neverready"))
    return world.git.make_repo("clistuck", {"app/deployment.yaml": yaml.safe_dump(deployment),
                                            "app/config.yaml": CONFIG_MAP.format(name="after")})


def _phase(world: LocalWorld, name: str) -> Any:
    return (world.status(name).get("operationState") or {}).get("phase")


def test_terminate_op_and_events(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    _create(cli, world, tmp_path, "stuckcli", _stuck(world), {}, "stuckcli")
    nothing = cli("app", "terminate-op", "stuckcli")
    assert nothing.code == 6 and "no operation running" in nothing.err
    cli.ok("app", "sync", "stuckcli", "--async")
    _eventually("the sync waits for wave 0", lambda: _phase(world, "stuckcli") == "Running")
    out = cli.ok("app", "terminate-op", "stuckcli")
    assert "terminat" in out and "stuckcli" in out
    cli.ok("app", "wait", "stuckcli", "--operation", "--timeout", "60")
    op = world.status("stuckcli")["operationState"]
    assert op["phase"] == "Failed" and op["message"] == "terminated by api"
    assert cli("app", "terminate-op", "stuckcli").code == 6
    assert cli("app", "terminate-op", "absent").code == 5
    events = json.loads(cli.ok("app", "events", "stuckcli", "-o", "json"))
    actions = [e["action"] for e in events]
    assert actions[:3] == ["operation.failed", "app.terminate-op", "app.sync"] and actions[-1] == "app.create"
    assert cli.ok("app", "events", "stuckcli", "--limit", "2", "-o", "name").split() == actions[:2]
    table = cli.ok("app", "events", "stuckcli").splitlines()
    assert table[0].split() == ["AT", "ACTOR", "ACTION", "DETAILS"] and "terminated by api" in table[1]
    assert cli("app", "events", "absent").code == 5
    assert not [o for o in OUTPUTS if world.api_token in o]


def test_help_has_examples(cli: Cli) -> None:
    for verb in ("list", "set", "patch", "update", "edit", "terminate-op", "events"):
        assert "Example" in cli.ok("app", verb, "--help"), verb
