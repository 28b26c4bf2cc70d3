"""``gitferry``: the management API as commands, in the manner of ``argocd``.

Every command is one or a few API calls (client.py); what it prints is built here from the
answer. Tables are Rich tables without borders (easy to grep); ``-o json|yaml`` prints the API's
own document; ``-o name`` one name a line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from gitferry_cli.client import (
    CONFLICT,
    EXIT_CODES_HELP,
    FAILED,
    NOT_FOUND,
    ApiError,
    Client,
    Login,
    default_region,
    load_login,
    region_of,
    save_login,
)

OUTPUTS = click.Choice(["json", "yaml", "wide", "name"])
TERMINAL = ("Succeeded", "Failed", "Error")


def _console() -> Console:
    # Not a terminal (a pipe, a script): wide enough that no column is cut.
    return Console(width=None if sys.stdout.isatty() else 250, highlight=False, soft_wrap=False)


def _client() -> Client:
    return Client(load_login())


def _dump(doc: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=False))
    else:
        click.echo(yaml.safe_dump(doc, sort_keys=False).rstrip("\n"))


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console = _console()
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


class Group(click.Group):
    """Runs the command and turns an ApiError into its message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            click.echo(f"gitferry: {exc.message}", err=True)
            ctx.exit(exc.code)


@click.group(cls=Group, epilog=EXIT_CODES_HELP + """

\b
Examples:
  gitferry login https://abc.execute-api.eu-west-1.amazonaws.com/Prod --token-stdin < token.txt
  gitferry cluster add prod --kubeconfig ~/.kube/config --context prod
  gitferry app create -f guestbook.yaml
  gitferry app sync guestbook && gitferry app wait guestbook --health
  gitferry app diff guestbook || echo "guestbook differs from Git\"""")
@click.version_option(package_name="gitferry")
def cli() -> None:
    """gitferry: GitOps continuous delivery for Kubernetes on AWS Lambda (Argo CD Applications)."""


# ---------------------------------------------------------------------------- login


@cli.command(epilog="""\b
Examples:
  gitferry login http://127.0.0.1:8080 --token "$TOKEN"
  gitferry login https://abc.execute-api.eu-west-1.amazonaws.com/Prod --token-stdin < token.txt
  gitferry login https://abc.execute-api.eu-west-1.amazonaws.com/Prod --aws""")
@click.argument("server")
@click.option("--token", help="the API bearer token (prompted for when neither this nor --token-stdin is given)")
@click.option("--token-stdin", is_flag=True, help="read the token from standard input")
@click.option("--aws", "aws", is_flag=True,
              help="sign every request with SigV4 from your AWS credentials (an API deployed with ApiAuth=AWS_IAM)")
@click.option("--region", help="with --aws: the API's region (default: from an execute-api URL, else your AWS config)")
def login(server: str, token: str | None, token_stdin: bool, aws: bool, region: str | None) -> None:
    """Check SERVER (the API URL) and TOKEN (or, with --aws, your AWS credentials) and keep them
    in the config file (mode 600, under $XDG_CONFIG_HOME/gitferry, ~/.config/gitferry by
    default). With --aws only the server and region are kept, never a credential."""
    if aws:
        if token or token_stdin:
            raise click.UsageError("--aws signs requests with AWS credentials: give no token")
        candidate = Login(server.rstrip("/"), auth="aws", region=region or region_of(server) or default_region())
    else:
        if region:
            raise click.UsageError("--region goes with --aws")
        if token_stdin:
            token = sys.stdin.readline().strip()
        if not token:
            token = click.prompt("API token", hide_input=True)
        candidate = Login(server.rstrip("/"), str(token))
    Client(candidate).call("GET", "/api/v1/clusters")  # a wrong URL, token or signature fails here
    path = save_login(candidate)
    click.echo(f"logged in to {candidate.server}{' with AWS SigV4' if aws else ''} (saved in {path})")


# ---------------------------------------------------------------------------- apps


@cli.group(cls=Group)
def app() -> None:
    """Applications: create, list, get, set, edit, update, sync, diff, wait, terminate-op, events, history,
    rollback, delete, refresh."""


def _manifest_from_flags(name: str, repo: str, path: str | None, revision: str, dest_server: str | None,
                         dest_name: str | None, dest_namespace: str | None, sync_policy: str | None,
                         auto_prune: bool, self_heal: bool, sync_options: tuple[str, ...],
                         project: str) -> dict[str, Any]:
    missing = [f"--{k}" for k, v in (("name", name), ("repo", repo)) if not v]
    if not dest_server and not dest_name:
        missing.append("--dest-server or --dest-name")
    if missing:
        raise click.UsageError(f"without -f, give {', '.join(missing)}")
    if dest_server and dest_name:
        raise click.UsageError("give --dest-server or --dest-name, not both")
    destination: dict[str, Any] = {"server": dest_server} if dest_server else {"name": dest_name}
    if dest_namespace:
        destination["namespace"] = dest_namespace
    policy: dict[str, Any] = {}
    if sync_policy == "automated":
        policy["automated"] = {"prune": auto_prune, "selfHeal": self_heal}
    elif auto_prune or self_heal:
        raise click.UsageError("--auto-prune and --self-heal need --sync-policy automated")
    if sync_options:
        policy["syncOptions"] = list(sync_options)
    spec: dict[str, Any] = {"project": project,
                            "source": {"repoURL": repo, "targetRevision": revision, "path": path or "."},
                            "destination": destination}
    if policy:
        spec["syncPolicy"] = policy
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"}, "spec": spec}


@app.command("create", epilog="""\b
Examples:
  gitferry app create -f guestbook.yaml
  gitferry app create --name guestbook --repo https://github.com/argoproj/argocd-example-apps.git \\
      --path guestbook --dest-server https://kubernetes.default.svc --dest-namespace guestbook \\
      --sync-policy automated --auto-prune --self-heal""")
@click.option("-f", "--file", "file_", type=click.File("r"), help="an Argo CD Application manifest (YAML or JSON; - for stdin)")
@click.option("--name")
@click.option("--repo", help="spec.source.repoURL")
@click.option("--path", help="spec.source.path (default .)")
@click.option("--revision", default="HEAD", show_default=True, help="spec.source.targetRevision")
@click.option("--dest-server", help="spec.destination.server")
@click.option("--dest-name", help="spec.destination.name (a registered cluster)")
@click.option("--dest-namespace", help="spec.destination.namespace")
@click.option("--project", default="default", show_default=True)
@click.option("--sync-policy", type=click.Choice(["automated", "none"]), help="automated: sync on every change")
@click.option("--auto-prune", is_flag=True, help="with --sync-policy automated: delete objects gone from Git")
@click.option("--self-heal", is_flag=True, help="with --sync-policy automated: undo changes made in the cluster")
@click.option("--sync-option", "sync_options", multiple=True, help="e.g. CreateNamespace=true (repeatable)")
@click.option("--upsert", is_flag=True, help="replace an application of the same name")
@click.option("-o", "--output", type=OUTPUTS)
def app_create(file_: Any, name: str | None, repo: str | None, path: str | None, revision: str,
               dest_server: str | None, dest_name: str | None, dest_namespace: str | None, project: str,
               sync_policy: str | None, auto_prune: bool, self_heal: bool, sync_options: tuple[str, ...],
               upsert: bool, output: str | None) -> None:
    """Register an application, from a manifest (sent unchanged) or from flags."""
    if file_ is not None:
        if name or repo or dest_server or dest_name:
            raise click.UsageError("give -f or the flags, not both")
        body: Any = file_.read()
    else:
        body = _manifest_from_flags(name or "", repo or "", path, revision, dest_server, dest_name, dest_namespace,
                                    sync_policy, auto_prune, self_heal, sync_options, project)
    created = _client().call("POST", "/api/v1/applications", body, {"upsert": "true"} if upsert else None)
    if output in ("json", "yaml"):
        _dump(created, output)
    else:
        click.echo(f"application '{created['metadata']['name']}' {'updated' if upsert else 'created'}")


def _dest(spec: dict[str, Any]) -> str:
    dest = spec.get("destination") or {}
    return str(dest.get("name") or dest.get("server") or "")


def _print_app(doc: dict[str, Any], wide: bool) -> None:
    spec, status = doc["spec"], doc.get("status") or {}
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    automated = (spec.get("syncPolicy") or {}).get("automated")
    op = status.get("operationState") or {}
    lines = [
        ("Name", doc["metadata"]["name"]),
        ("Project", spec.get("project", "default")),
        ("Server", _dest(spec)),
        ("Namespace", (spec.get("destination") or {}).get("namespace", "")),
        ("Repo", source.get("repoURL", "")),
        ("Target", source.get("targetRevision", "")),
        ("Path" if not source.get("chart") else "Chart", source.get("path") or source.get("chart") or ""),
        ("Sync Policy", "Automated" + (" (Prune)" if (automated or {}).get("prune") else "") if automated is not None
         else "Manual"),
        ("Sync Status", f"{(status.get('sync') or {}).get('status', 'Unknown')} to {source.get('targetRevision', '')}"
         + (f" ({(status.get('sync') or {}).get('revision', '')[:7]})" if (status.get("sync") or {}).get("revision")
            else "")),
        ("Health Status", (status.get("health") or {}).get("status", "Unknown")),
    ]
    if doc["metadata"].get("deletionTimestamp"):
        lines.append(("Deleting since", doc["metadata"]["deletionTimestamp"]))
    width = max(len(k) for k, _ in lines) + 2
    for key, value in lines:
        click.echo(f"{key + ':':<{width}}{value}")
    if op:
        click.echo("")
        click.echo(f"{'Operation:':<{width}}Sync")
        click.echo(f"{'Phase:':<{width}}{op.get('phase', '')}")
        click.echo(f"{'Start:':<{width}}{op.get('startedAt', '')}")
        click.echo(f"{'Finished:':<{width}}{op.get('finishedAt', '')}")
        click.echo(f"{'Message:':<{width}}{op.get('message', '')}")
    conditions = status.get("conditions") or []
    if conditions:
        click.echo("")
        _table(["CONDITION", "MESSAGE", "LAST TRANSITION"],
               [[c.get("type"), c.get("message"), c.get("lastTransitionTime", "")] for c in conditions])
    resources = status.get("resources") or []
    if resources:
        click.echo("")
        results = {(r.get("group", ""), r.get("kind"), r.get("namespace", ""), r.get("name")): r
                   for r in ((op.get("syncResult") or {}).get("resources") or [])}
        columns = ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"]
        if wide:
            columns.insert(4, "WAVE")
        rows = []
        for r in resources:
            key = (r.get("group", ""), r.get("kind"), r.get("namespace", ""), r.get("name"))
            row = [r.get("group", ""), r.get("kind"), r.get("namespace", ""), r.get("name"), r.get("status", ""),
                   (r.get("health") or {}).get("status", ""), (results.get(key) or {}).get("message", "")]
            if wide:
                row.insert(4, r.get("syncWave", 0))
            rows.append(row)
        _table(columns, rows)
        summary = status.get("resourcesSummary") or {}
        if summary.get("next"):
            click.echo(f"... {summary['total'] - summary['shown']} more resources (-o json, or GET {summary['next']})")


def _print_tree(nodes: list[dict[str, Any]]) -> None:
    """The resource tree as ``argocd app get -o tree`` prints it: each managed object, then its
    live descendants (by ownerReferences) indented under it, with health and pod status."""
    by_uid = {n.get("uid"): n for n in nodes if n.get("uid")}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for node in nodes:
        parents = [p.get("uid") for p in node.get("parentRefs") or [] if p.get("uid") in by_uid]
        if parents:
            children.setdefault(parents[0], []).append(node)
        else:
            roots.append(node)
    rows: list[list[Any]] = []

    def walk(node: dict[str, Any], prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else prefix + ("└─" if last else "├─")
        info = {i.get("name"): i.get("value") for i in node.get("info") or []}
        rows.append([f"{branch}{node.get('kind')}", node.get("namespace", ""), node.get("name"),
                     (node.get("health") or {}).get("status", ""), info.get("Status Reason", "")])
        kids = children.get(node.get("uid") or "", [])
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("" if depth == 0 else ("  " if last else "│ ")), i == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
    _table(["KIND", "NAMESPACE", "NAME", "HEALTH", "STATUS"], rows)


@app.command("get", epilog="""\b
Examples:
  gitferry app get guestbook
  gitferry app get guestbook -o tree   # managed objects and their ReplicaSets / Pods""")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "wide", "name", "tree"]))
def app_get(name: str, output: str | None) -> None:
    """An application's source, destination, status, health, last operation and resources."""
    client = _client()
    doc = client.call("GET", f"/api/v1/applications/{name}")
    if output in ("json", "yaml"):
        return _dump(doc, output)
    if output == "name":
        return click.echo(doc["metadata"]["name"])
    if output == "tree":
        nodes = client.call("GET", f"/api/v1/applications/{name}/resource-tree").get("nodes") or []
        _print_app({**doc, "status": {k: v for k, v in (doc.get("status") or {}).items() if k != "resources"}},
                   wide=False)
        click.echo("")
        return _print_tree(nodes)
    _print_app(doc, wide=output == "wide")


def _parse_resource(text: str) -> dict[str, str]:
    """GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME (argocd's --resource); GROUP empty for core."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise click.BadParameter(f"{text!r} is not GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME", param_hint="--resource")
    namespace, _, name = parts[2].rpartition("/")
    return {"group": parts[0], "kind": parts[1], "namespace": namespace, "name": name}


def _operation_mark(doc: dict[str, Any]) -> tuple[Any, Any]:
    op = (doc.get("status") or {}).get("operationState") or {}
    return op.get("startedAt"), op.get("finishedAt")


def _poll(what: str, check: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            click.echo(f"gitferry: timed out after {timeout:g} s waiting for {what}", err=True)
            return False
        time.sleep(interval)


@app.command("sync", epilog="""\b
Examples:
  gitferry app sync guestbook
  gitferry app sync guestbook --prune --revision v1.2.0
  gitferry app sync guestbook --resource apps:Deployment:guestbook/guestbook-ui --dry-run
  gitferry app sync guestbook --async""")
@click.argument("name")
@click.option("--revision", help="a branch, tag or commit (default: the app's targetRevision)")
@click.option("--prune", is_flag=True, default=None, help="delete the app's objects gone from Git")
@click.option("--dry-run", is_flag=True, help="the API server's dry run only: nothing is changed")
@click.option("--resource", "resources", multiple=True, help="GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME (repeatable)")
@click.option("--sync-option", "sync_options", multiple=True, help="e.g. Replace=true (repeatable)")
@click.option("--async", "async_", is_flag=True, help="do not wait for the operation to finish")
@click.option("--timeout", default=300.0, show_default=True, help="seconds to wait for the operation")
def app_sync(name: str, revision: str | None, prune: bool | None, dry_run: bool, resources: tuple[str, ...],
             sync_options: tuple[str, ...], async_: bool, timeout: float) -> None:
    """Sync an application; waits for the operation and exits 1 when it fails."""
    body: dict[str, Any] = {}
    if revision:
        body["revision"] = revision
    if prune:
        body["prune"] = True
    if dry_run:
        body["dryRun"] = True
    if resources:
        body["resources"] = [_parse_resource(r) for r in resources]
    if sync_options:
        body["syncOptions"] = list(sync_options)
    client = _client()
    before = _operation_mark(client.call("GET", f"/api/v1/applications/{name}"))
    answer = client.call("POST", f"/api/v1/applications/{name}/sync", body)
    click.echo(f"sync of '{name}' to {answer['revision'][:12]} queued" + (" (dry run)" if dry_run else ""))
    if async_:
        return
    final: dict[str, Any] = {}

    def finished() -> bool:
        doc = client.call("GET", f"/api/v1/applications/{name}")
        op = (doc.get("status") or {}).get("operationState") or {}
        if _operation_mark(doc) != before and op.get("phase") in TERMINAL:
            final.update(op)
            return True
        return False

    if not _poll(f"the sync of {name!r}", finished, timeout):
        sys.exit(FAILED)
    click.echo(f"Phase: {final.get('phase')}  Message: {final.get('message', '')}")
    results = (final.get("syncResult") or {}).get("resources") or []
    if results:
        _table(["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "MESSAGE"],
               [[r.get("group", ""), r.get("kind"), r.get("namespace", ""), r.get("name"), r.get("status", ""),
                 r.get("message", "")] for r in results])
    if final.get("phase") != "Succeeded":
        sys.exit(FAILED)


@app.command("diff", epilog="Exit status: 0 no differences, 1 differences (as kubectl diff), 3+ errors.")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
def app_diff(name: str, output: str | None) -> None:
    """What a sync would change: a unified diff per resource (live -> target), Secret values masked."""
    answer = _client().call("GET", f"/api/v1/applications/{name}/diff")
    if output:
        _dump(answer, output)
    else:
        for item in answer["items"]:
            if item["status"] == "Synced" and not item.get("requiresPruning"):
                continue
            group_kind = f"{item['group']}/{item['kind']}" if item["group"] else f"/{item['kind']}"
            click.echo(f"===== {group_kind} {item['namespace']}/{item['name']} ======")
            click.echo(item.get("diff") or item.get("message") or "(differs; diff not shown: response bound reached)")
        if answer.get("truncated"):
            click.echo("(more resources differ than one answer shows; gitferry app get lists them all)", err=True)
    if answer.get("differences"):
        sys.exit(FAILED)


@app.command("wait", epilog="""\b
With none of --health/--sync/--operation, waits for all three (as argocd app wait).
Example: gitferry app wait guestbook --health --timeout 120""")
@click.argument("name")
@click.option("--health", is_flag=True, help="until Healthy")
@click.option("--sync", "sync_", is_flag=True, help="until Synced")
@click.option("--operation", is_flag=True, help="until no operation is running or requested")
@click.option("--revision", help="until synced at this commit (a prefix is enough); implies --sync")
@click.option("--timeout", default=300.0, show_default=True, help="seconds; exit 1 when they run out")
def app_wait(name: str, health: bool, sync_: bool, operation: bool, revision: str | None, timeout: float) -> None:
    """Wait until an application is healthy / synced / idle."""
    if not (health or sync_ or operation):
        health = sync_ = operation = True
    if revision:
        sync_ = True
    client = _client()
    seen: dict[str, Any] = {}

    def ready() -> bool:
        status = client.call("GET", f"/api/v1/applications/{name}").get("status") or {}
        seen.update(status)
        op = status.get("operationState") or {}
        return ((not health or (status.get("health") or {}).get("status") == "Healthy")
                and (not sync_ or (status.get("sync") or {}).get("status") == "Synced")
                and (not revision or str((status.get("sync") or {}).get("revision") or "").startswith(revision))
                and (not operation or (op.get("phase") not in ("Running", "Terminating")
                                       and not status.get("syncRequested"))))

    if not _poll(f"application {name!r}", ready, timeout):
        click.echo(f"last seen: sync {(seen.get('sync') or {}).get('status')}, "
                   f"health {(seen.get('health') or {}).get('status')}, "
                   f"operation {(seen.get('operationState') or {}).get('phase')}", err=True)
        sys.exit(FAILED)
    click.echo(f"application '{name}': sync {(seen.get('sync') or {}).get('status', 'Unknown')}, "
               f"health {(seen.get('health') or {}).get('status', 'Unknown')}")


@app.command("history")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
def app_history(name: str, output: str | None) -> None:
    """The recorded syncs (ids for app rollback)."""
    items = _client().call("GET", f"/api/v1/applications/{name}/history")["items"]
    if output:
        return _dump(items, output)
    _table(["ID", "DATE", "REVISION"], [[h["id"], h.get("deployedAt", ""), h.get("revision", "")] for h in items])


@app.command("rollback")
@click.argument("name")
@click.argument("history_id", type=int)
def app_rollback(name: str, history_id: int) -> None:
    """Re-apply the revision of history entry HISTORY_ID (refused while automated sync is on)."""
    answer = _client().call("POST", f"/api/v1/applications/{name}/rollback/{history_id}")
    click.echo(f"rollback of '{name}' to {answer['revision'][:12]} (history {history_id}) queued")


@app.command("delete")
@click.argument("name")
@click.option("--cascade/--no-cascade", default=True, show_default=True,
              help="delete the app's objects in the cluster too")
@click.option("--propagation-policy", type=click.Choice(["foreground", "background"]))
@click.option("-y", "--yes", is_flag=True, help="(accepted for argocd compatibility; gitferry never prompts)")
def app_delete(name: str, cascade: bool, propagation_policy: str | None, yes: bool) -> None:
    """Delete an application (its objects too, asynchronously, unless --no-cascade)."""
    query = {"cascade": "true" if cascade else "false"}
    if propagation_policy:
        query["propagationPolicy"] = propagation_policy
    _client().call("DELETE", f"/api/v1/applications/{name}", query=query)
    click.echo(f"application '{name}' " + ("is being deleted with its resources" if cascade else "deleted"))


@app.command("refresh")
@click.argument("name")
@click.option("--hard", is_flag=True, help="render again, bypassing the render cache (Argo CD's hard refresh)")
def app_refresh(name: str, hard: bool) -> None:
    """Compare with Git and the cluster now instead of at the next poll."""
    answer = _client().call("POST", f"/api/v1/applications/{name}/refresh",
                            query={"hard": "true"} if hard else None)
    click.echo(f"{'hard ' if hard else ''}refresh of '{name}' at {answer['revision'][:12]} queued")


# ---------------------------------------------------------------------------- repositories


@cli.group(cls=Group)
def repo() -> None:
    """Git and Helm repositories and their credentials."""


@repo.command("add", epilog="""\b
Examples:
  gitferry repo add https://github.com/org/private.git --username git --password-stdin < pat.txt
  gitferry repo add https://gitlab.example.com/org/apps.git --token-stdin < token.txt
  gitferry repo add git@github.com:org/apps.git --ssh-private-key-path ~/.ssh/deploy_ed25519 \\
      --ssh-known-hosts-path ~/.ssh/known_hosts
  gitferry repo add https://charts.example.com --type helm --username ci --password-stdin < pw.txt
  gitferry repo add oci://registry.example.com/charts --type oci --username ci --password-stdin < pw.txt""")
@click.argument("url")
@click.option("--name", help="a short name (repo rm NAME)")
@click.option("--type", "kind", type=click.Choice(["git", "helm", "oci"]), default=None,
              help="default git (oci for an oci:// URL); oci: an OCI registry (oci://host[/prefix]), docs/oci.md")
@click.option("--username")
@click.option("--password", help="prefer --password-stdin: a flag shows in the process list")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--token", help="an access token (sent as the basic-auth password); prefer --token-stdin")
@click.option("--token-stdin", is_flag=True, help="read the access token from standard input")
@click.option("--ssh-private-key-path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="an unencrypted OpenSSH/PEM private key, for an ssh URL")
@click.option("--ssh-known-hosts-path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="known_hosts lines of the ssh server (required with a key: host keys are always checked)")
@click.option("--upsert", is_flag=True, help="replace the repository if already registered")
@click.option("--plain-http", is_flag=True, help="an OCI registry without TLS (type oci)")
@click.option("--ecr-registry-id", help="ECR account id: log in with the functions' IAM role (type oci)")
def repo_add(url: str, name: str | None, kind: str | None, username: str | None, password: str | None,
             password_stdin: bool, token: str | None, token_stdin: bool, ssh_private_key_path: Path | None,
             ssh_known_hosts_path: Path | None, upsert: bool, plain_http: bool, ecr_registry_id: str | None) -> None:
    """Register a repository. It is read once with the credentials first (a repository that
    cannot be read is refused with the reason); credentials go to Secrets Manager, never shown again."""
    body = repo_body(url, name=name, kind=kind, username=username, password=password, password_stdin=password_stdin,
                     token=token, token_stdin=token_stdin, ssh_private_key_path=ssh_private_key_path,
                     ssh_known_hosts_path=ssh_known_hosts_path)
    if plain_http:
        body["plainHttp"] = True
    if ecr_registry_id:
        body["ecrRegistryId"] = ecr_registry_id
    answer = _client().call("POST", "/api/v1/repositories", body, {"upsert": "true"} if upsert else None)
    click.echo(f"repository '{answer['url']}' added")


def repo_body(url: str | None, *, name: str | None = None, kind: str | None = None, username: str | None = None,
              password: str | None = None, password_stdin: bool = False, token: str | None = None,
              token_stdin: bool = False, ssh_private_key_path: Path | None = None,
              ssh_known_hosts_path: Path | None = None) -> dict[str, Any]:
    """The API document of ``repo add`` / ``repo update`` flags (files and stdin read here)."""
    if password_stdin and token_stdin:
        raise click.UsageError("--password-stdin and --token-stdin both read standard input: give one")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if token_stdin:
        token = sys.stdin.readline().rstrip("\n")
    body: dict[str, Any] = {k: v for k, v in (("url", url), ("name", name), ("type", kind), ("username", username),
                                              ("password", password), ("token", token)) if v}
    if ssh_private_key_path is not None:
        body["sshPrivateKey"] = ssh_private_key_path.read_text()
    if ssh_known_hosts_path is not None:
        body["sshKnownHosts"] = ssh_known_hosts_path.read_text()
    return body


@repo.command("list")
@click.option("-o", "--output", type=OUTPUTS)
def repo_list(output: str | None) -> None:
    """List registered repositories."""
    items = _client().call("GET", "/api/v1/repositories")["items"]
    if output in ("json", "yaml"):
        return _dump(items, output)
    if output == "name":
        for r in items:
            click.echo(r["url"])
        return
    _table(["REPO", "TYPE", "NAME", "USER", "CREDENTIALS"],
           [[r["url"], r.get("type", "git"), r.get("name", ""), r.get("username", ""),
             "yes" if r.get("hasCredentials") else "ecr" if r.get("ecrRegistryId") else "no"] for r in items])


@repo.command("rm")
@click.argument("repository")
@click.option("--force", is_flag=True, help="even while applications use it")
def repo_rm(repository: str, force: bool) -> None:
    """Forget a repository (by URL or name) and its credentials."""
    client = _client()
    query = {"force": "true"} if force else {}
    if "://" in repository or repository.startswith("git@"):
        client.call("DELETE", "/api/v1/repositories", query={"url": repository, **query})
    else:
        client.call("DELETE", f"/api/v1/repositories/{repository}", query=query or None)
    click.echo(f"repository '{repository}' removed")


# ---------------------------------------------------------------------------- clusters


@cli.group(cls=Group)
def cluster() -> None:
    """Destination clusters and their kubeconfigs."""


def _one_context(kubeconfig: dict[str, Any], context: str | None, source: str) -> dict[str, Any]:
    """A kubeconfig with only ``context`` (default: the current one), its cluster and user."""
    contexts = {c.get("name"): c for c in kubeconfig.get("contexts") or [] if isinstance(c, dict)}
    name = context or kubeconfig.get("current-context")
    if not name or name not in contexts:
        known = ", ".join(sorted(str(n) for n in contexts)) or "none"
        raise click.BadParameter(f"{source} has no context {name!r} (contexts: {known})", param_hint="--context")
    ctx = contexts[name]
    cluster_name = (ctx.get("context") or {}).get("cluster")
    user_name = (ctx.get("context") or {}).get("user")
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "contexts": [ctx],
        "clusters": [c for c in kubeconfig.get("clusters") or [] if c.get("name") == cluster_name],
        "users": [u for u in kubeconfig.get("users") or [] if u.get("name") == user_name],
    }


@cluster.command("add", epilog="""\b
Examples:
  gitferry cluster add prod --kubeconfig ~/.kube/config --context prod-admin
  gitferry cluster add local --kubeconfig ./kubeconfig --namespace apps
  gitferry cluster add prod --eks prod-cluster --region eu-west-1 --in-cluster
  gitferry cluster add other --eks arn:aws:eks:eu-west-1:111122223333:cluster/apps \\
      --role-arn arn:aws:iam::111122223333:role/gitferry-deployer""")
@click.argument("name")
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="KUBECONFIG", help="kubeconfig file (default $KUBECONFIG)")
@click.option("--context", help="the context to register (default: the current context)")
@click.option("--eks", "eks_cluster", metavar="NAME|ARN",
              help="an EKS cluster: no credential is stored, the functions' IAM role signs its tokens")
@click.option("--region", help="with --eks NAME: the cluster's region (default: the functions' region)")
@click.option("--role-arn", help="with --eks: an IAM role to assume first (a cluster of another account)")
@click.option("--namespace", help="the cluster's default namespace")
@click.option("--in-cluster", "--default", "in_cluster", is_flag=True,
              help="what https://kubernetes.default.svc / in-cluster destinations (Argo CD's own cluster) mean")
@click.option("--upsert", is_flag=True, help="replace the cluster if already registered")
@click.pass_context
def cluster_add(ctx: click.Context, name: str, kubeconfig_path: Path | None, context: str | None,
                eks_cluster: str | None, region: str | None, role_arn: str | None, namespace: str | None,
                in_cluster: bool, upsert: bool) -> None:
    """Register a cluster: from a kubeconfig file (only the chosen context is sent), or an EKS
    cluster by name or ARN."""
    from_env = ctx.get_parameter_source("kubeconfig_path") == click.core.ParameterSource.ENVIRONMENT
    body: dict[str, Any] = {"name": name}
    if eks_cluster:
        if (kubeconfig_path and not from_env) or context:
            raise click.UsageError("--eks and --kubeconfig/--context exclude each other")
        body["eks"] = {"cluster": eks_cluster, **({"region": region} if region else {}),
                       **({"roleArn": role_arn} if role_arn else {})}
    elif region or role_arn:
        raise click.UsageError("--region and --role-arn go with --eks")
    elif kubeconfig_path is None:
        raise click.UsageError("one of --kubeconfig (or $KUBECONFIG) or --eks is required")
    else:
        body["kubeconfig"] = _kubeconfig_text(kubeconfig_path, context)
    if namespace:
        body["namespace"] = namespace
    if in_cluster:
        body["inCluster"] = True
    answer = _client().call("POST", "/api/v1/clusters", body, {"upsert": "true"} if upsert else None)
    click.echo(f"cluster '{answer['name']}' added ({answer['server']}, {answer.get('serverVersion', '')})")


def _kubeconfig_text(path: Path, context: str | None) -> str:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not YAML: {exc}", param_hint="--kubeconfig") from None
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{path} is not a kubeconfig", param_hint="--kubeconfig")
    return yaml.safe_dump(_one_context(doc, context, str(path)))


@cluster.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
def cluster_get(name: str, output: str | None) -> None:
    """A cluster: how it is reached, its server version and connection state now, its apps."""
    c = _client().call("GET", f"/api/v1/clusters/{name}")
    if output:
        return _dump(c, output)
    info = c.get("info") or {}
    state = info.get("connectionState") or {}
    eks = c.get("eks") or {}
    rows = [["Name:", c["name"]], ["Server:", c["server"]],
            ["Auth:", c.get("auth", "")
             + (f" ({eks.get('arn') or eks.get('cluster')}{', as ' + eks['roleArn'] if eks.get('roleArn') else ''})"
                if eks else (f" (context {c['context']})" if c.get("context") else ""))],
            ["Namespace:", c.get("namespace", "")], ["In-cluster:", "yes" if c.get("inCluster") else "no"],
            ["Server version:", info.get("serverVersion") or c.get("serverVersion", "")],
            ["Connection:", f"{state.get('status', '')} {state.get('message', '')}".strip()],
            ["Applications:", ", ".join(c.get("applications") or []) or "none"]]
    _table(["", ""], rows)


@cluster.command("update", epilog="""\b
Examples:
  gitferry cluster update prod --in-cluster
  gitferry cluster update other --role-arn arn:aws:iam::111122223333:role/gitferry-deployer
  gitferry cluster update local --kubeconfig ./kubeconfig --context admin""")
@click.argument("name")
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a new kubeconfig file (only the chosen context is sent)")
@click.option("--context", help="with --kubeconfig: the context to use")
@click.option("--role-arn", help="EKS: the role to assume ('' = the functions' own role)")
@click.option("--namespace", help="the cluster's default namespace")
@click.option("--in-cluster/--not-in-cluster", default=None,
              help="mark (or unmark) it as what https://kubernetes.default.svc means")
def cluster_update(name: str, kubeconfig_path: Path | None, context: str | None, role_arn: str | None,
                   namespace: str | None, in_cluster: bool | None) -> None:
    """Change a registered cluster (a PATCH; gitferry connects again before storing it)."""
    patch: dict[str, Any] = {}
    if kubeconfig_path is not None:
        patch["kubeconfig"] = _kubeconfig_text(kubeconfig_path, context)
    elif context:
        raise click.UsageError("--context goes with --kubeconfig (only the chosen context is sent)")
    if role_arn is not None:
        patch["eks"] = {"roleArn": role_arn or None}
    if namespace:
        patch["namespace"] = namespace
    if in_cluster is not None:
        patch["inCluster"] = in_cluster
    if not patch:
        raise click.UsageError("nothing to change")
    answer = _client().call("PATCH", f"/api/v1/clusters/{name}", patch)
    click.echo(f"cluster '{answer['name']}' updated ({answer['server']}, {answer.get('serverVersion', '')})")


@cluster.command("list")
@click.option("-o", "--output", type=OUTPUTS)
def cluster_list(output: str | None) -> None:
    """List registered clusters."""
    items = _client().call("GET", "/api/v1/clusters")["items"]
    if output in ("json", "yaml"):
        return _dump(items, output)
    if output == "name":
        for c in items:
            click.echo(c["name"])
        return
    _table(["SERVER", "NAME", "VERSION", "NAMESPACE", "AUTH", "IN-CLUSTER"],
           [[c["server"], c["name"], c.get("serverVersion", ""), c.get("namespace", ""),
             "eks" if c.get("eks") else "kubeconfig", "yes" if c.get("inCluster") else ""] for c in items])


@cluster.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="even while applications deploy to it")
def cluster_rm(name: str, force: bool) -> None:
    """Forget a cluster and its kubeconfig."""
    _client().call("DELETE", f"/api/v1/clusters/{name}", query={"force": "true"} if force else None)
    click.echo(f"cluster '{name}' removed")


from gitferry_cli.repos import repo_get, repo_update  # noqa: E402 - they build on the helpers above
from gitferry_cli.tokens import token  # noqa: E402

cli.add_command(token)
repo.add_command(repo_get)
repo.add_command(repo_update)


def main() -> None:
    cli(prog_name="gitferry")


# The app verbs of the filtered list, updates, terminate-op and events live in their own module.
from gitferry_cli import apps as _apps  # noqa: E402,F401,I001


__all__ = ["CONFLICT", "NOT_FOUND", "cli", "main"]
