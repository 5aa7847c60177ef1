"""The two processes of the recovery benchmark (W4), each a fresh interpreter.

    python -m benchmarks._recovery_child start JOURNAL SIDE_FILE RUNS [LEASE_TTL]
        spawns RUNS runs of ``step_then_wait``, prints ``ready`` once every run's
        step is recorded and the run waits for its signal, then idles until killed.
    python -m benchmarks._recovery_child resume JOURNAL RUNS [LEASE_TTL]
        opens the journal (resuming the runs) and waits for every result, the
        signals coming from another process through the journal's operator inbox
        (as ``chronik signal`` sends them); prints one JSON line: the wall-clock
        times (``time.time()``) the open returned, this host drove every run (it
        took over the killed host's partitions), the first and the last result
        came, and whether the results are right.

JOURNAL is an LMDB directory or a ``postgresql://`` URL; LEASE_TTL the hosts'
``lease_ttl`` (chronik's default if left out). Run from the repository root, so
``benchmarks._workloads`` imports under the name its workflows were registered
with (``benchmarks.workflows`` starts it so).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from actors import ActorSystem
from aggregates import SignalAwaited
from benchmarks._workloads import step_then_wait
from journal import JournalReader

READY = "ready"
_WAIT_LIMIT = 120.0  # seconds for the runs to reach their receive
_TAKEOVER_POLL = 0.002  # seconds between two looks at which partitions are held


HOST_NAME_VARIABLE = "CHRONIK_BENCH_HOST_NAME"


def run_id(index: int) -> str:
    return f"recover-{index:05d}"


def open_system(journal: str, lease_ttl: float | None) -> ActorSystem:
    """``ActorSystem.open``, with ``lease_ttl`` only if one is asked for and the
    host name in ``CHRONIK_BENCH_HOST_NAME`` if set (an older checkout lacks the
    options): both processes of a round under one name are one host restarted."""
    options: dict[str, Any] = {}
    if lease_ttl is not None:
        options["lease_ttl"] = lease_ttl
    if os.environ.get(HOST_NAME_VARIABLE):
        options["host_name"] = os.environ[HOST_NAME_VARIABLE]
    return ActorSystem.open(journal, **options)


def start(journal: str, side_file: str, runs: int, lease_ttl: float | None) -> None:
    system = open_system(journal, lease_ttl)
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
    with _reader(journal) as reader:
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


def _reader(journal: str) -> Any:
    """A reader of ``journal``: a directory's, or a URL's where the checkout
    reads PostgreSQL journals (``journal.open_reader``)."""
    if "://" not in journal:
        return JournalReader(journal)
    from journal import open_reader  # PostgreSQL: issue 14's checkouts on

    return open_reader(journal)


def _waits(reader: Any, workflow_id: str) -> bool:
    events = list(reader.stream(workflow_id))
    return bool(events) and events[-1].topic == SignalAwaited.TOPIC


def resume(journal: str, runs: int, lease_ttl: float | None) -> None:
    system = open_system(journal, lease_ttl)
    opened = time.time()
    ids = [run_id(i) for i in range(runs)]
    took_over = _watch_takeover(system, ids)
    refs = [system.ref(i) for i in ids]
    results = [refs[0].result(timeout=_WAIT_LIMIT)]
    first = time.time()
    results += [ref.result(timeout=_WAIT_LIMIT) for ref in refs[1:]]
    ended = time.time()
    system.close()
    report = {
        "opened_at": opened,
        "took_over_at": took_over(),
        "first_done_at": first,
        "done_at": ended,
        "results_ok": results == list(range(runs)),
    }
    print(json.dumps(report), flush=True)


def _watch_takeover(
    system: ActorSystem, ids: Sequence[str]
) -> Callable[[], float | None]:
    """Start watching for the time this host first drives every run: at once
    where the killed host's presence lock told it dead (LMDB), else once the
    killed host's leases ran out and a lease round took them (PostgreSQL).
    The function returned waits for the watch and gives that time (None if the
    checkout cannot tell: no ``ActorSystem.drives``)."""
    drives = getattr(system, "drives", None)
    if drives is None:
        return lambda: None
    from journal import partition_of  # with drives: issue 13's checkouts on

    one_per_partition = list({partition_of(i): i for i in ids}.values())
    seen: list[float] = []

    def watch() -> None:
        deadline = time.monotonic() + _WAIT_LIMIT
        while time.monotonic() < deadline:
            if all(drives(i) for i in one_per_partition):
                seen.append(time.time())
                return
            time.sleep(_TAKEOVER_POLL)

    watcher = threading.Thread(target=watch, name="takeover-watch", daemon=True)
    watcher.start()

    def took_over() -> float | None:
        watcher.join()
        return seen[0] if seen else None

    return took_over


def main(argv: Sequence[str]) -> None:
    match argv:
        case ["start", journal, side_file, runs, *ttl] if len(ttl) <= 1:
            start(journal, side_file, int(runs), _ttl(ttl))
        case ["resume", journal, runs, *ttl] if len(ttl) <= 1:
            resume(journal, int(runs), _ttl(ttl))
        case _:
            raise SystemExit(__doc__)


def _ttl(given: Sequence[str]) -> float | None:
    return float(given[0]) if given else None


if __name__ == "__main__":
    main(sys.argv[1:])
