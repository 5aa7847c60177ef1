"""One host of a shared journal, as a process of its own (for test_multihost.py).

``python -m tests.actors._multihost_host JOURNAL LEASE_TTL COUNT_FILE`` opens an
``ActorSystem`` on JOURNAL with that lease TTL, prints ``READY`` and its pid on
stdout, drives the runs of the partitions it holds until SIGTERM, then closes
and prints ``CLOSED``.

Every execution of ``step`` appends ``"<idempotency key> <pid>"`` to COUNT_FILE
as it begins (one ``O_APPEND`` write, so lines of concurrent processes never
mix): a test counts executions across processes, killed or frozen ones too, and
sees which host has a step in flight. Warnings and errors go to stderr, each
line naming the classes of the exceptions it reports (``FencedOutError``), so a
test can grep a host's log for them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Final

from actors import ActorSystem, WorkflowContext, activity, workflow

READY: Final = "READY"
CLOSED: Final = "CLOSED"
STEP_SIGNAL_STEP: Final = "tests.multihost.step_signal_step"
ONE_STEP: Final = "tests.multihost.one_step"

_count_file: str | None = None  # set by main(); None: executions are not logged


def log_execution(key: str) -> None:
    """Append ``"<key> <pid>"`` to the count file in one atomic append."""
    if _count_file is None:
        return
    fd = os.open(_count_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@activity(name="tests.multihost.step")
def step(value: int, nap: float) -> dict[str, int]:
    """Double ``value`` after ``nap`` seconds; the result names the process
    that made it, so a test sees whose execution history recorded."""
    log_execution(activity.info().idempotency_key)
    time.sleep(nap)
    return {"value": 2 * value, "pid": os.getpid()}


@workflow(name=STEP_SIGNAL_STEP)
async def step_signal_step(ctx: WorkflowContext, x: int, nap: float) -> int:
    """A step, a wait for the signal ``go`` (an int), a step napping ``nap``
    seconds: returns ``2 * (2 * x + go)``."""
    first = await ctx.call(step, x, 0.0)
    go = await ctx.receive("go")
    second = await ctx.call(step, first["value"] + int(go), nap)
    return int(second["value"])


@workflow(name=ONE_STEP)
async def one_step(ctx: WorkflowContext, x: int) -> int:
    """One step: returns ``2 * x``."""
    return int((await ctx.call(step, x, 0.0))["value"])


def expected_result(x: int, go: int) -> int:
    """What ``step_signal_step(x, ...)`` returns given the signal ``go``."""
    return 2 * (2 * x + go)


class _NamingErrors(logging.Formatter):
    """Appends the class names of the exceptions among a record's arguments:
    chronik's warnings format an error by its message, which omits its class."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        args: Any = record.args
        values = args.values() if isinstance(args, dict) else args or ()
        names = [type(v).__name__ for v in values if isinstance(v, BaseException)]
        return f"{text} [{', '.join(names)}]" if names else text


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _NamingErrors("%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def main(argv: list[str]) -> int:
    global _count_file
    journal, ttl, _count_file = argv[0], float(argv[1]), argv[2]
    _log_to_stderr()
    stopping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    system = ActorSystem.open(journal, lease_ttl=ttl)
    print(READY, os.getpid(), flush=True)
    # A bounded wait: the handler runs between waits, and a failure that
    # stopped the system ends the process.
    while not stopping.wait(0.2) and system.failure is None:
        pass
    system.close()
    if system.failure is not None:
        print(f"failed: {system.failure!r}", file=sys.stderr, flush=True)
        return 1
    print(CLOSED, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
