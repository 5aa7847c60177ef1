"""A process that runs ``flaky_run`` until its step hangs in attempt 3 (each
attempt is appended to a side file first), for a test to SIGKILL it there.

``python -m tests.actors._attempts_child JOURNAL SIDE_FILE``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from actors import ActorSystem, RetryPolicy, WorkflowContext, activity, workflow

HANG_AT = 3  # the attempt that hangs in the child (the parent kills it there)
MAX_ATTEMPTS = 4
_in_child = False  # the attempt hangs only in the child, which is killed there


@activity(retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_interval=0.01))
def flaky(side_file: str, hang: bool) -> str:
    attempt = activity.info().attempt
    with Path(side_file).open("a") as side:
        side.write(f"{attempt}\n")
    if hang and _in_child and attempt == HANG_AT:
        print("hanging", flush=True)
        time.sleep(3600)
    raise RuntimeError(f"attempt {attempt} fails")


@workflow(name="tests.attempts.flaky_run")
async def flaky_run(ctx: WorkflowContext, side_file: str, hang: bool) -> str:
    return str(await ctx.call(flaky, side_file, hang))


def main() -> None:
    global _in_child
    _in_child = True
    journal, side_file = sys.argv[1], sys.argv[2]
    system = ActorSystem.open(journal)
    system.spawn(flaky_run, side_file, True, id="flaky-1")
    time.sleep(3600)  # killed while the step hangs


if __name__ == "__main__":
    main()
