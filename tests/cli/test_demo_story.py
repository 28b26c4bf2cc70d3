"""`make demo` tells the guestbook story through the CLI: the same story, played here, must
observe every step (a change that breaks a command the demo prints breaks this test)."""

from __future__ import annotations

from local.cli_story import POLL_SECONDS, Shown, play_cli_story
from local.story import LocalWorld


def test_the_demo_story_through_the_cli_observes_every_step() -> None:
    shown: list[Shown] = []
    with LocalWorld() as world:
        world.stack.start_loop(schedule_interval=POLL_SECONDS)
        steps = play_cli_story(world, echo=shown.append)
    assert len(steps) == 5
    commands = [s.command.split()[:3] for s in shown]
    assert ["gitferry", "app", "create"] in commands and ["kubectl", "scale", "deployment"] in commands
    tree = next(s.output for s in shown if s.command.endswith("-o tree"))
    assert "└─ReplicaSet" in tree and "└─Pod" in tree
    assert world.api_token not in "".join(s.output + s.command for s in shown)
