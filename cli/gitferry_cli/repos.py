"""``gitferry repo get`` and ``repo update``: one repository, and changing its credentials.
Registered on the ``repo`` group by main.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gitferry_cli.main import _client, _dump, repo_body


def _path(repository: str) -> tuple[str, dict[str, str] | None]:
    """The route of a repository given by URL (``?url=``) or by its registered name."""
    if "://" in repository or "@" in repository:
        return "/api/v1/repositories", {"url": repository}
    return f"/api/v1/repositories/{repository}", None


@click.command("get")
@click.argument("repository")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]))
def repo_get(repository: str, output: str | None) -> None:
    """Show a repository (by URL or name): type, user, whether it has credentials (never them),
    and the applications using it."""
    path, query = _path(repository)
    doc: dict[str, Any] = _client().call("GET", path, query=query)
    if output:
        return _dump(doc, output)
    rows = [("URL", doc["url"]), ("Name", doc.get("name", "")), ("Type", doc.get("type", "git")),
            ("Username", doc.get("username", "")), ("Credentials", "yes" if doc.get("hasCredentials") else "no"),
            ("Applications", ", ".join(doc.get("applications") or []))]
    for label, value in rows:
        click.echo(f"{label + ':':<14}{value}")


@click.command("update", epilog="""\b
Examples:
  gitferry repo update private --password-stdin < new-pat.txt
  gitferry repo update git@github.com:org/apps.git --ssh-private-key-path new_key --ssh-known-hosts-path kh""")
@click.argument("repository")
@click.option("--name")
@click.option("--username")
@click.option("--password", help="prefer --password-stdin")
@click.option("--password-stdin", is_flag=True)
@click.option("--token", help="prefer --token-stdin")
@click.option("--token-stdin", is_flag=True)
@click.option("--ssh-private-key-path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ssh-known-hosts-path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def repo_update(repository: str, name: str | None, username: str | None, password: str | None,
                password_stdin: bool, token: str | None, token_stdin: bool, ssh_private_key_path: Path | None,
                ssh_known_hosts_path: Path | None) -> None:
    """Change a repository's name or credentials (PATCH: what is not given stays). The new
    credentials are checked against the repository before they replace the old ones."""
    body = repo_body(None, name=name, username=username, password=password, password_stdin=password_stdin,
                     token=token, token_stdin=token_stdin, ssh_private_key_path=ssh_private_key_path,
                     ssh_known_hosts_path=ssh_known_hosts_path)
    if not body:
        raise click.UsageError("nothing to change: give --name, --username, a password, a token or an ssh key")
    path, query = _path(repository)
    answer = _client().call("PATCH", path, body, query)
    click.echo(f"repository '{answer['url']}' updated")
