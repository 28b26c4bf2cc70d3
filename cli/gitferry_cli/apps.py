"""``gitferry app`` verbs of the filtered list, updates, terminate-op and events (issue 11).

Registered on the ``app`` group of :mod:`gitferry_cli.main` (imported at its end). Each verb is
one or a few API calls; ``-o json|yaml`` prints the API's own documents, ``-o name`` one name a
line, ``-o wide`` more columns.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml

from gitferry_cli.client import FAILED, USAGE, ApiError
from gitferry_cli.main import OUTPUTS, _client, _dest, _dump, _table, app

#: page size the CLI asks for when it pages through a list (GITFERRY_PAGE_SIZE, 1 to 1000)
PAGE = 500


def _page_size() -> int:
    text = os.environ.get("GITFERRY_PAGE_SIZE", "")
    return min(max(int(text), 1), 1000) if text.isdigit() else PAGE


def _labels(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        out[key] = value
    return out


def all_pages(path: str, query: dict[str, str], most: int | None = None) -> list[dict[str, Any]]:
    """Every item of a paged list route (following ``nextCursor``), or the first ``most``."""
    client = _client()
    items: list[dict[str, Any]] = []
    cursor = None
    size = _page_size()
    while True:
        page_query = {**query, "limit": str(min(size, most - len(items)) if most else size)}
        if cursor:
            page_query["cursor"] = cursor
        answer = client.call("GET", path, query=page_query)
        items += answer["items"]
        cursor = answer.get("nextCursor")
        if not cursor or (most is not None and len(items) >= most):
            return items


def _policy(spec: dict[str, Any]) -> str:
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if automated is None:
        return "Manual"
    return "Auto" + ("-Prune" if automated.get("prune") else "")


def _print(doc: dict[str, Any], output: str | None, verb: str) -> None:
    if output in ("json", "yaml"):
        _dump(doc, output)
    elif output == "name":
        click.echo(doc["metadata"]["name"])
    else:
        click.echo(f"application '{doc['metadata']['name']}' {verb} (resourceVersion "
                   f"{doc['metadata'].get('resourceVersion', '?')})")


# ---------------------------------------------------------------------------- list


@app.command("list", epilog="""\b
Filters combine (all must hold); the list is in name order, every page fetched.
Examples:
  gitferry app list
  gitferry app list -l team=payments,tier!=db --sync OutOfSync
  gitferry app list --cluster prod --namespace shop -o name
  gitferry app list --repo https://github.com/org/deploy.git --health Degraded -o wide""")
@click.option("--project", help="spec.project (gitferry has only 'default')")
@click.option("--repo", help="spec.source.repoURL (.git, case and scheme ignored)")
@click.option("--cluster", help="a registered cluster's name or server")
@click.option("--namespace", help="spec.destination.namespace")
@click.option("--sync", "sync_status", type=click.Choice(["Synced", "OutOfSync", "Unknown"]), help="sync status")
@click.option("--health", type=click.Choice(["Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"]),
              help="health status")
@click.option("-l", "--selector", help="label selector on metadata.labels (Kubernetes syntax)")
@click.option("--search", help="part of the name")
@click.option("-o", "--output", type=OUTPUTS)
def app_list(project: str | None, repo: str | None, cluster: str | None, namespace: str | None,
             sync_status: str | None, health: str | None, selector: str | None, search: str | None,
             output: str | None) -> None:
    """List applications with their sync and health status."""
    query = {k: v for k, v in (("project", project), ("repo", repo), ("cluster", cluster), ("namespace", namespace),
                               ("sync", sync_status), ("health", health), ("selector", selector),
                               ("search", search)) if v}
    items = all_pages("/api/v1/applications", query)
    if output in ("json", "yaml"):
        return _dump(items, output)
    if output == "name":
        for item in items:
            click.echo(item["metadata"]["name"])
        return
    columns = ["NAME", "CLUSTER", "NAMESPACE", "STATUS", "HEALTH", "SYNCPOLICY", "REVISION"]
    if output == "wide":
        columns += ["REPO", "PATH", "TARGET", "LABELS"]
    rows = []
    for item in items:
        spec, status = item["spec"], item.get("status") or {}
        source = spec.get("source") or (spec.get("sources") or [{}])[0]  # spec.sources: the first
        row = [item["metadata"]["name"], _dest(spec), (spec.get("destination") or {}).get("namespace", ""),
               (status.get("sync") or {}).get("status", "Unknown"),
               (status.get("health") or {}).get("status", "Unknown"), _policy(spec),
               ((status.get("sync") or {}).get("revision") or "")[:7]]
        if output == "wide":
            labels = item["metadata"].get("labels") or {}
            row += [source.get("repoURL", ""), source.get("path") or source.get("chart") or "",
                    source.get("targetRevision", ""), ",".join(f"{k}={v}" for k, v in sorted(labels.items()))]
        rows.append(row)
    _table(columns, rows)


# ---------------------------------------------------------------------------- changes


@app.command("set", epilog="""\b
Only the fields given change (a JSON merge patch, PATCH /api/v1/applications/NAME).
Examples:
  gitferry app set guestbook --revision v1.2.0
  gitferry app set guestbook --path overlays/prod --dest-namespace shop
  gitferry app set guestbook --sync-policy automated --self-heal -l team=web""")
@click.argument("name")
@click.option("--repo", help="spec.source.repoURL")
@click.option("--path", help="spec.source.path")
@click.option("--revision", help="spec.source.targetRevision")
@click.option("--dest-server", help="spec.destination.server")
@click.option("--dest-name", help="spec.destination.name (a registered cluster)")
@click.option("--dest-namespace", help="spec.destination.namespace")
@click.option("--sync-policy", type=click.Choice(["automated", "none"]), help="none: manual syncs only")
@click.option("--auto-prune/--no-auto-prune", default=None, help="with automated: delete objects gone from Git")
@click.option("--self-heal/--no-self-heal", default=None, help="with automated: undo changes made in the cluster")
@click.option("--sync-option", "sync_options", multiple=True, help="replaces spec.syncPolicy.syncOptions (repeatable)")
@click.option("-l", "--label", "labels", multiple=True, help="KEY=VALUE on metadata.labels (repeatable)")
@click.option("-o", "--output", type=OUTPUTS)
def app_set(name: str, repo: str | None, path: str | None, revision: str | None, dest_server: str | None,
            dest_name: str | None, dest_namespace: str | None, sync_policy: str | None, auto_prune: bool | None,
            self_heal: bool | None, sync_options: tuple[str, ...], labels: tuple[str, ...],
            output: str | None) -> None:
    """Change some fields of an application."""
    if dest_server and dest_name:
        raise click.UsageError("give --dest-server or --dest-name, not both")
    source = {k: v for k, v in (("repoURL", repo), ("path", path), ("targetRevision", revision)) if v is not None}
    destination: dict[str, Any] = {}
    if dest_server:
        destination.update({"server": dest_server, "name": None})
    if dest_name:
        destination.update({"name": dest_name, "server": None})
    if dest_namespace:
        destination["namespace"] = dest_namespace
    policy: dict[str, Any] = {}
    if sync_policy == "none":
        if auto_prune or self_heal:
            raise click.UsageError("--auto-prune and --self-heal need --sync-policy automated")
        policy["automated"] = None
    elif sync_policy == "automated" or auto_prune is not None or self_heal is not None:
        automated: dict[str, Any] = {}
        if auto_prune is not None:
            automated["prune"] = auto_prune
        if self_heal is not None:
            automated["selfHeal"] = self_heal
        policy["automated"] = automated
    if sync_options:
        policy["syncOptions"] = list(sync_options)
    spec: dict[str, Any] = {}
    for key, value in (("source", source), ("destination", destination), ("syncPolicy", policy)):
        if value:
            spec[key] = value
    patch: dict[str, Any] = {"spec": spec} if spec else {}
    if labels:
        patch["metadata"] = {"labels": _labels(labels, "--label")}
    if not patch:
        raise click.UsageError("nothing to set: give at least one option (see --help)")
    _print(_client().call("PATCH", f"/api/v1/applications/{name}", patch), output, "updated")


@app.command("patch", epilog="""\b
Example:
  gitferry app patch guestbook --patch '{"spec": {"source": {"targetRevision": "v2"}}}'""")
@click.argument("name")
@click.option("--patch", "patch_text", required=True, help="a JSON (or YAML) merge patch of the Application")
@click.option("-o", "--output", type=OUTPUTS)
def app_patch(name: str, patch_text: str, output: str | None) -> None:
    """Apply a JSON merge patch (RFC 7386) to an application (as argocd app patch --type merge)."""
    _print(_client().call("PATCH", f"/api/v1/applications/{name}", patch_text), output, "patched")


@app.command("update", epilog="""\b
The manifest's metadata.resourceVersion (as app get -o yaml shows it), when present, makes the
update conditional: exit 6 if the application changed since.
Examples:
  gitferry app update -f guestbook.yaml
  gitferry app get guestbook -o yaml | sed 's/HEAD/v2/' | gitferry app update -f -""")
@click.option("-f", "--file", "file_", type=click.File("r"), required=True,
              help="the whole Application manifest (YAML or JSON; - for stdin)")
@click.option("-o", "--output", type=OUTPUTS)
def app_update(file_: Any, output: str | None) -> None:
    """Replace an application's manifest (PUT); its name says which application."""
    text = file_.read()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not YAML or JSON: {exc}", param_hint="-f") from None
    name = ((doc or {}).get("metadata") or {}).get("name") if isinstance(doc, dict) else None
    if not name:
        raise click.BadParameter("the manifest has no metadata.name", param_hint="-f")
    _print(_client().call("PUT", f"/api/v1/applications/{name}", text), output, "updated")


def merge_diff(before: Any, after: Any) -> Any:
    """The JSON merge patch that turns ``before`` into ``after`` (removed keys become null)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {k: None for k in before if k not in after}
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_diff(before[key], value)
    return patch


@app.command("edit", epilog="""\b
Opens the manifest in $VISUAL / $EDITOR (vi by default); on save, the changes are sent as a
merge patch conditional on the version you edited (exit 6 if it changed meanwhile).
Example:
  EDITOR=nano gitferry app edit guestbook""")
@click.argument("name")
@click.option("-o", "--output", type=OUTPUTS)
def app_edit(name: str, output: str | None) -> None:
    """Edit an application's manifest in your editor."""
    client = _client()
    doc = client.call("GET", f"/api/v1/applications/{name}")
    doc.pop("status", None)
    version = doc["metadata"].pop("resourceVersion", None)
    for key in ("deletionTimestamp",):
        doc["metadata"].pop(key, None)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="gitferry-edit-") as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        if subprocess.call([*shlex.split(editor), str(path)]) != 0:
            click.echo(f"gitferry: {editor} failed; nothing changed", err=True)
            sys.exit(FAILED)
        try:
            edited = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            click.echo(f"gitferry: the edited manifest is not YAML: {exc}; nothing changed", err=True)
            sys.exit(USAGE)
    if edited == doc:
        click.echo(f"application '{name}' unchanged (no edits)")
        return
    if not isinstance(edited, dict):
        click.echo("gitferry: the edited manifest is not a mapping; nothing changed", err=True)
        sys.exit(USAGE)
    patch = merge_diff(doc, edited)
    patch.setdefault("metadata", {})
    if isinstance(patch["metadata"], dict) and version is not None:
        patch["metadata"]["resourceVersion"] = version
    _print(client.call("PATCH", f"/api/v1/applications/{name}", patch), output, "updated")


# ---------------------------------------------------------------------------- operations and events


@app.command("terminate-op", epilog="""\b
Exit 6 when no operation is running.
Example:
  gitferry app terminate-op guestbook && gitferry app wait guestbook --operation""")
@click.argument("name")
@click.option("-o", "--output", type=OUTPUTS)
def app_terminate_op(name: str, output: str | None) -> None:
    """Terminate the running sync operation (it stops at its next wave; Failed "terminated by ...")."""
    answer = _client().call("DELETE", f"/api/v1/applications/{name}/operation")
    if output in ("json", "yaml"):
        return _dump(answer, output)
    if output == "name":
        return click.echo(answer["app"])
    if answer["phase"] == "Terminating":
        click.echo(f"operation {answer['operation']} of '{name}' is terminating (it stops at its next wave)")
    else:
        click.echo(f"operation {answer['operation']} of '{name}' terminated")


@app.command("events", epilog="""\b
Examples:
  gitferry app events guestbook
  gitferry app events guestbook --limit 1000 -o json | jq '.[] | select(.action == "app.sync")'""")
@click.argument("name")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000),
              help="the newest LIMIT events")
@click.option("-o", "--output", type=OUTPUTS)
def app_events(name: str, limit: int, output: str | None) -> None:
    """The application's audit events (who did what, operations ended), newest first."""
    items = all_pages(f"/api/v1/applications/{name}/events", {}, most=limit)
    if output in ("json", "yaml"):
        return _dump(items, output)
    if output == "name":
        for e in items:
            click.echo(e["action"])
        return
    columns = ["AT", "ACTOR", "ACTION", "DETAILS"]
    rows = []
    for e in items:
        details = e.get("details") or {}
        text = json.dumps(details, sort_keys=True, separators=(",", ":")) if output == "wide" else ", ".join(
            f"{k}={v}" for k, v in details.items() if k in ("revision", "message", "method", "spec", "cascade"))
        rows.append([e["at"], e["actor"], e["action"], text])
    _table(columns, rows)


__all__ = ["ApiError", "all_pages", "merge_diff"]
