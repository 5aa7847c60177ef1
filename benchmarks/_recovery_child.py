"""The two processes of the recovery benchmark (W4), each a fresh interpreter.

    python -m benchmarks._recovery_child start JOURNAL SIDE_FILE RUNS
        spawns RUNS runs of ``step_then_wait``, prints ``ready`` once every run's
        step is recorded and the run waits for its signal, then idles until killed.
    python -m benchmarks._recovery_child resume JOURNAL RUNS
        opens the journal (resuming the runs) and waits for every result, the
        signals coming from another process through the journal's operator inbox
        (as ``chronik signal`` sends them); prints one JSON line: the wall-clock
        times (``time.time()``) the open returned and the last result came, and
        whether the results are right.

Run from the repository root, so ``benchmarks._workloads`` imports under the name
its workflows were registered with (``benchmarks.workflows`` starts it so).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from actors import ActorSystem
from aggregates import SignalAwaited
from benchmarks._workloads import step_then_wait
from journal import JournalReader

READY = "ready"
_WAIT_LIMIT = 120.0  # seconds for the runs to reach their receive


def run_id(index: int) -> str:
    return f"recover-{index:05d}"


def start(journal: str, side_file: str, runs: int) -> None:
    system = ActorSystem.open(journal)
    ids = [run_id(i) for i in range(runs)]
    for workflow_id in ids:
        system.spawn(step_then_wait, side_file, id=workflow_id)
    wait_until_waiting(journal, ids)
    print(READY, flush=True)
    while True:  # the parent SIGKILLs this process: no close, no checkpoint
        time.sleep(60)


def wait_until_waiting(
    journal: str, ids: Sequence[str], limit: float = _WAIT_LIMIT
) -> None:
    """Return once each run's last durable event is ``SignalAwaited``: its step's
    outcome is in the same commit, so a kill from now on re-runs no step."""
    deadline = time.monotonic() + limit
    pending = list(ids)
    with JournalReader(journal) as reader:
        while pending:
            pending = [i for i in pending if not _waits(reader, i)]
            if pending and time.monotonic() > deadline:
                msg = (
                    f"{len(pending)} runs did not reach their receive within "
                    f"{limit:g} s: {pending[:5]}"
                )
                raise TimeoutError(msg)
            if pending:
                time.sleep(0.005 if len(pending) < 1000 else 0.5)


def _waits(reader: JournalReader, workflow_id: str) -> bool:
    events = list(reader.stream(workflow_id))
    return bool(events) and events[-1].topic == SignalAwaited.TOPIC


def resume(journal: str, runs: int) -> None:
    system = ActorSystem.open(journal)
    opened = time.time()
    refs = [system.ref(run_id(i)) for i in range(runs)]
    results = [ref.result(timeout=_WAIT_LIMIT) for ref in refs]
    ended = time.time()
    system.close()
    report = {
        "opened_at": opened,
        "done_at": ended,
        "results_ok": results == list(range(runs)),
    }
    print(json.dumps(report), flush=True)


def main(argv: Sequence[str]) -> None:
    match argv:
        case ["start", journal, side_file, runs]:
            start(journal, side_file, int(runs))
        case ["resume", journal, runs]:
            resume(journal, int(runs))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
