"""The operation invariant, checked around every LocalWorld of the e2e suite.

Whatever a module did, when its world closes no application's operation may be Running with
nothing to finish it: every Running operation is either being processed (an apply holds its
lease) or has a pending follow-up (its record plus a message waiting, visible or delayed, in
FollowUpQueue or ApplyQueue). The check runs in LocalWorld.close (local.story.CLOSE_HOOKS),
before the stack is torn down, and fails the module's last test teardown when broken.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import story


@pytest.fixture(scope="module", autouse=True)
def operations_never_left_running() -> Iterator[None]:
    broken: list[str] = []

    def check(world: story.LocalWorld) -> None:
        try:
            broken.extend(world.orphaned_operations())
        except Exception as exc:  # noqa: BLE001 - a world that cannot answer any more is reported
            broken.append(f"invariant not checked: {type(exc).__name__}: {exc}")

    story.CLOSE_HOOKS.append(check)
    try:
        yield
    finally:
        story.CLOSE_HOOKS.remove(check)
    assert not broken, f"operations left Running with nothing scheduled: {broken}"
