"""`make demo`: the guestbook story end to end on the local stack, told through the CLI.

Prints every command a user would type (``gitferry``, ``kubectl``) with its output, and a
timeline. Exits 0 only when every step was observed.
"""

from __future__ import annotations

import sys
import time

from local.cli_story import POLL_SECONDS, Shown, play_cli_story
from local.story import LocalWorld, Step, StoryError


def main() -> int:
    started = time.monotonic()
    print("gitferry demo: moto server + kubesim + git http-backend + the Lambda handlers wired by template.yaml;")
    print(f"the poll is ticked every {POLL_SECONDS:g} s here (the template's rate is 1 minute)\n")
    steps: list[Step] = []

    def show(step: Step) -> None:
        steps.append(step)
        print(f"\n[{len(steps)}] {step.seconds:6.2f}s  {step.title}")
        for line in step.observed:
            print(f"             - {line}")
        print()

    def echo(cmd: Shown) -> None:
        print(f"$ {cmd.command}")
        for line in cmd.output.splitlines():
            print(f"  {line}")

    with LocalWorld() as world:
        world.stack.start_loop(schedule_interval=POLL_SECONDS)
        try:
            play_cli_story(world, show, echo)
        except StoryError as exc:
            print(f"\nFAILED at step {len(steps) + 1}: {exc}", file=sys.stderr)
            return 1
    print("timeline:")
    for i, step in enumerate(steps, 1):
        print(f"  [{i}] {step.seconds:6.2f}s  {step.title}")
    print(f"\nall {len(steps)} steps observed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
