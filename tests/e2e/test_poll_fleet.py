"""A poll tick over many apps and repositories: one ls-remote per repository, every due app
scheduled (more than one SQS batch), request flags cleared only after the messages went out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.story import DEPLOYMENT, LocalWorld, application


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(drift_check_seconds=2) as w:
        yield w


def test_one_tick_checks_every_due_app_with_one_ls_remote_per_repository(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repos = {}
    for r in range(3):
        repos[r] = world.git.make_repo(f"fleet{r}", {
            f"app{i}/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n  i: '{i}'\n"
            for i in range(5)
        } | {"app0/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27")})
    names = []
    for r, url in repos.items():
        for i in range(5):
            name = f"fleet{r}-app{i}"
            names.append(name)
            world.api_ok("POST", "/api/v1/applications", application(name, url, server, automated=False,
                                                                      path=f"app{i}", namespace=f"fleet{r}"))
    world.settle()
    reconciled = {n: world.status(n)["reconciledAt"] for n in names}
    assert all(reconciled.values())

    time.sleep(2.2)  # every app's drift check is now due
    before = {r: len(world.git.requests_for(f"fleet{r}")) for r in repos}
    world.stack.tick("PollFunction")
    ls_remotes = {r: [q for q in world.git.requests_for(f"fleet{r}")[before[r]:] if "info/refs" in q[1]] for r in repos}
    assert all(len(calls) == 1 for calls in ls_remotes.values()), ls_remotes
    world.settle()
    after = {n: world.status(n)["reconciledAt"] for n in names}
    assert all(after[n] > reconciled[n] for n in names), [n for n in names if after[n] <= reconciled[n]]
    assert {world.status(n)["sync"]["status"] for n in names} == {"OutOfSync"}  # manual: nothing applied

    # A refresh asked for through the flag is taken by the next tick, then cleared.
    world.stack.resources.client("dynamodb").update_item(
        TableName=world.stack.resources.tables["StateTable"], Key={"pk": {"S": "APP#fleet0-app1"}, "sk": {"S": "STATUS"}},
        UpdateExpression="SET refreshRequested = :t", ExpressionAttributeValues={":t": {"BOOL": True}})
    world.stack.tick("PollFunction")
    assert world.status("fleet0-app1")["refreshRequested"] is False
