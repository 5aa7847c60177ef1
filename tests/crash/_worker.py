"""The process a SIGKILL trial kills:
``python -m tests.crash._worker JOURNAL SEED EFFECTS ACKS LEASE_TTL``.

JOURNAL is a directory or a PostgreSQL URL; LEASE_TTL the seconds its leases
hold unrenewed (on PostgreSQL, where nothing else tells a dead host, a killed
worker's runs wait that long for the next). It prints ``opening``, opens the
journal, prints ``ready``, spawns the runs of the workload drawn from SEED
(idempotent by id: a worker after a killed one gets the same runs) and sends
their signals, except those ACKS holds already (a client remembers what was
acknowledged; so a signal lost by a crash is never hidden by a later worker
sending it again). After each signal is acknowledged it appends its id to ACKS
(fsynced). Every step execution is appended to EFFECTS (fsynced, see
``_workflows.py``). Once every run has ended it prints ``done`` and waits to be
killed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from actors import ActorSystem, RunRef
from aggregates import RunFinishedError
from journal import ChronikError
from tests.crash._workflows import (
    EFFECTS_FILE,
    INJECTED,
    WORKFLOWS,
    append_line,
    set_step_latency,
)
from tests.crash._workload import send_order, workload


def main(path: str, seed: int, effects: str, acks: str, lease_ttl: float) -> None:
    os.environ[EFFECTS_FILE] = effects
    drawn = workload(seed)
    runs = drawn.runs
    set_step_latency(drawn.latency)
    for run in runs:
        INJECTED.add(run.run_id, run.failures)
    print("opening", flush=True)
    system = ActorSystem.open(path, idle_timeout=0.2, lease_ttl=lease_ttl)
    print("ready", flush=True)
    refs: dict[str, RunRef] = {
        run.run_id: system.spawn(WORKFLOWS[run.workflow], *run.args, id=run.run_id)
        for run in runs
    }
    acknowledged = _acknowledged(acks)
    for signal in send_order(runs):
        if signal.signal_id in acknowledged:
            continue
        for _ in range(2 if signal.twice else 1):
            try:
                refs[signal.run_id].send(
                    signal.topic, signal.payload, signal_id=signal.signal_id
                )
            except RunFinishedError:
                break  # it ended without this signal (a failure, a timeout)
            except ChronikError as error:  # another worker owns the run now
                print(f"not acknowledged: {signal.signal_id}: {error!r}", flush=True)
                break
            append_line(acks, signal.signal_id)
    for ref in refs.values():
        with contextlib.suppress(Exception):  # a failed run has ended too
            ref.result(timeout=60)
    print("done", flush=True)
    threading.Event().wait()  # until killed


def _acknowledged(acks: str) -> set[str]:
    if not os.path.exists(acks):
        return set()
    with open(acks, encoding="utf-8") as file:
        return set(file.read().splitlines())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
