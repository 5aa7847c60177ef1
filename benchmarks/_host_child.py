"""One host of a shared journal, in a process of its own, for ``benchmarks.hosts``.

    python -m benchmarks._host_child JOURNAL [--lease-ttl S] [--count-reads]
        opens the journal (``ActorSystem.open(JOURNAL, lease_ttl=S)``: one host
        among any others open on it), prints ``ready``, then answers commands
        read from stdin, one a line:
          ``stats``  one JSON line: this host's counters now (see ``report``);
          ``spawn FIRST COUNT STEPS [SIDE_FILE]``  spawns runs ``w2-FIRST`` ...
                     of W2's ``stamped_steps(STEPS)`` (of ``counted_steps(SIDE_FILE,
                     STEPS)`` if given) one by one, as ``benchmarks.workflows`` W2
                     does, then one JSON line: when it began and ended;
          ``close``  closes the system and exits.
        End of stdin closes it too; the parent may also SIGKILL it.

``--count-reads`` counts the journal's read transactions in this process, with
no change to the library: every LMDB read transaction of a journal begins in
``journal._store._Store.reading`` (the recorders, the lease table, the stats
reader and the store's own checks all go through it), so that method is
wrapped before the system opens.

The workflow ``counted_steps`` lives here because its registered name must be
the same in every process: it is given explicitly, so that it is the same
whether this module runs as ``__main__`` or is imported.

Run from the repository root (``benchmarks.hosts`` starts it so).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final

from actors import ActorSystem, WorkflowContext, activity, workflow
from benchmarks._workloads import stamped_steps

READY: Final = "ready"
COUNTED_STEPS: Final = "benchmarks._host_child:counted_steps"
_COUNTED_STEP: Final = "benchmarks._host_child:counted_step"


@activity(name=_COUNTED_STEP)
def counted_step(side_file: str, i: int) -> dict[str, Any]:
    """W2's step body, and one line appended to ``side_file`` per execution:
    the step's idempotency key (O_APPEND: whole lines from any process)."""
    line = f"{activity.info().idempotency_key}\n".encode()
    fd = os.open(side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return {"i": i, "t": time.time()}


@workflow(name=COUNTED_STEPS)
async def counted_steps(ctx: WorkflowContext, side_file: str, steps: int) -> int:
    for i in range(steps):
        await ctx.call(counted_step, side_file, i)
    return steps


class ReadCounter:
    """Counts the read transactions begun through ``_Store.reading``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    @classmethod
    def install(cls) -> ReadCounter:
        """Wrap ``journal._store._Store.reading`` for every store of this process."""
        from journal import _store

        original: Callable[[Any], AbstractContextManager[Any]] | None = getattr(
            _store._Store, "reading", None
        )
        if original is None:
            msg = (
                "journal._store._Store has no reading(): this code begins its read "
                "transactions elsewhere; --count-reads cannot count them"
            )
            raise RuntimeError(msg)
        counter = cls()

        @contextmanager
        def reading(store: Any) -> Iterator[Any]:
            counter.add()
            with original(store) as txn:
                yield txn

        _store._Store.reading = reading  # type: ignore[method-assign,assignment]
        return counter

    def add(self) -> None:
        with self._lock:
            self.count += 1


def report(system: ActorSystem, reads: ReadCounter | None) -> dict[str, Any]:
    """This host's counters now; ``at`` and ``cpu`` are this process's
    ``time.monotonic()`` and ``time.process_time()`` (all threads)."""
    stats = system.stats()
    return {
        "pid": os.getpid(),
        "at": time.monotonic(),
        "cpu": time.process_time(),
        "reads": None if reads is None else reads.count,
        "commits": stats.commits.groups,
        "lease_writes": stats.lease_writes,
        "partitions": stats.partitions_held,
        "step_attempts": stats.step_attempts,
        "steps_completed": stats.steps_completed,
        "runs_completed": stats.runs_completed,
    }


def w2_id(index: int) -> str:
    return f"w2-{index:05d}"


def spawn(
    system: ActorSystem, first: int, count: int, steps: int, side_file: str | None
) -> dict[str, float]:
    """Start W2's runs ``first`` .. ``first + count - 1`` one by one (each is
    driven by whichever host holds its partition), of ``counted_steps`` if
    ``side_file`` is given; when that began and ended, by ``time.time()``."""
    began = time.time()
    for index in range(first, first + count):
        if side_file is None:
            system.spawn(stamped_steps, steps, id=w2_id(index))
        else:
            system.spawn(counted_steps, side_file, steps, id=w2_id(index))
    return {"began": began, "ended": time.time()}


def serve(journal: str, lease_ttl: float, *, count_reads: bool) -> None:
    reads = ReadCounter.install() if count_reads else None
    system = ActorSystem.open(journal, lease_ttl=lease_ttl)
    try:
        print(READY, flush=True)
        for line in sys.stdin:
            command = line.strip()
            match command.split():
                case ["close"]:
                    break
                case ["stats"]:
                    print(json.dumps(report(system, reads)), flush=True)
                case ["spawn", first, count, steps, *side_file] if len(side_file) < 2:
                    spawned = spawn(
                        system, int(first), int(count), int(steps), *side_file or [None]
                    )
                    print(json.dumps(spawned), flush=True)
                case _:
                    msg = (
                        f"unknown command {command!r}: see benchmarks._host_child's doc"
                    )
                    raise SystemExit(msg)
    finally:
        system.close()


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("journal")
    parser.add_argument("--lease-ttl", type=float, default=5.0)
    parser.add_argument("--count-reads", action="store_true")
    args = parser.parse_args(argv)
    serve(args.journal, args.lease_ttl, count_reads=args.count_reads)


if __name__ == "__main__":
    main(sys.argv[1:])
