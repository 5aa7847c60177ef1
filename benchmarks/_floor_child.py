"""The multi-process floor of W5's scaling row: W2's events and commits with the
libraries alone (no engine), from ``THREADS`` threads in one process, so that the
journal's group commit merges what they commit at once, as a host's does.

    python -m benchmarks._floor_child JOURNAL FIRST RUNS THREADS STEPS

Commits runs ``w2-FIRST`` ... (each thread takes the next run when its last is
done: start, then each step's outcome and the next step, one commit each, fsync
on), and prints one JSON line: when it began and ended (``time.time()``) and the
CPU seconds it used. Several such processes on one journal show what LMDB's one
writer at a time leaves of their parallelism, whatever an engine does.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime

from eventsourcing.application import Application

from aggregates import WorkflowRun

_NAME, _STEP = "benchmarks._workloads:stamped_steps", "benchmarks._workloads:stamp"


def main() -> None:
    journal, first, runs, threads, steps = sys.argv[1:6]
    app: Application[str] = Application(
        {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": journal}
    )
    recorder, mapper = app.recorder, app.mapper
    indices = iter(range(int(first), int(first) + int(runs)))
    lock = threading.Lock()
    count = int(steps)

    def commit(run: WorkflowRun) -> None:
        stored = [mapper.to_stored_event(e) for e in run.collect_events()]
        recorder.insert_events(stored)

    def work() -> None:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            now = datetime.now(UTC)
            run = WorkflowRun.start(f"w2-{index}", _NAME, [count], at=now)
            run.schedule_step(1, _STEP, [0], at=now)
            commit(run)
            for i in range(count):
                result = {"i": i, "t": time.time()}
                run.complete_step(i + 1, result, at=datetime.now(UTC))
                if i + 1 < count:
                    run.schedule_step(i + 2, _STEP, [i + 1], at=datetime.now(UTC))
                else:
                    run.complete([result["t"]], at=datetime.now(UTC))
                commit(run)

    workers = [threading.Thread(target=work) for _ in range(int(threads))]
    print("READY", flush=True)
    sys.stdin.readline()  # go
    before, began = os.times(), time.time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ended, after = time.time(), os.times()
    app.close()
    cpu = (after.user - before.user) + (after.system - before.system)
    print(json.dumps({"began": began, "ended": ended, "cpu": cpu}), flush=True)


if __name__ == "__main__":
    main()
