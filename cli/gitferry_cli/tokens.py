"""``gitferry token``: named API tokens (create, list, rm). Registered on the ``cli`` group by
main.py; uses its client and table helpers."""

from __future__ import annotations

import click

from gitferry_cli.main import OUTPUTS, Group, _client, _dump, _table


@click.group(cls=Group)
def token() -> None:
    """Named API tokens with a role: admin, or readonly (reads and refresh only)."""


@token.command("create", epilog="""\b
Examples:
  gitferry token create ci --role admin > ci-token.txt
  gitferry token create dashboard --role readonly""")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "readonly"]), required=True)
def token_create(name: str, role: str) -> None:
    """Create a token. Its value is printed once, alone on standard output (the message goes to
    standard error), and can never be shown again: keep it."""
    answer = _client().call("POST", "/api/v1/tokens", {"name": name, "role": role})
    click.echo(f"token '{answer['name']}' created (role {answer['role']}); its value is shown only now:", err=True)
    click.echo(answer["token"])


@token.command("list")
@click.option("-o", "--output", type=OUTPUTS)
def token_list(output: str | None) -> None:
    """List tokens: names, roles and creation times (never their values)."""
    items = _client().call("GET", "/api/v1/tokens")["items"]
    if output in ("json", "yaml"):
        return _dump(items, output)
    if output == "name":
        for t in items:
            click.echo(t["name"])
        return
    _table(["NAME", "ROLE", "CREATED"],
           [[t["name"] + (" (bootstrap)" if t.get("bootstrap") else ""), t["role"], t.get("created", "")]
            for t in items])


@token.command("rm")
@click.argument("name")
def token_rm(name: str) -> None:
    """Revoke a token (a warm API Lambda may accept it for 5 more seconds)."""
    _client().call("DELETE", f"/api/v1/tokens/{name}")
    click.echo(f"token '{name}' revoked")
