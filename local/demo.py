"""`make demo`: the guestbook story end to end on the local stack, with a timeline.

Exits 0 only when every step was observed.
"""

from __future__ import annotations

import sys
import time

from local.story import LocalWorld, Step, StoryError, play_guestbook


def main() -> int:
    started = time.monotonic()
    print("gitferry demo: moto server + kubesim + git http-backend + the Lambda handlers wired by template.yaml\n")
    n = 0

    def show(step: Step) -> None:
        nonlocal n
        n += 1
        print(f"[{n}] {step.seconds:6.2f}s  {step.title}")
        for line in step.observed:
            print(f"             - {line}")

    with LocalWorld() as world:
        try:
            steps = play_guestbook(world, show)
        except StoryError as exc:
            print(f"\nFAILED at step {n + 1}: {exc}", file=sys.stderr)
            return 1
    print(f"\nall {len(steps)} steps observed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
