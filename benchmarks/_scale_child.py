"""The scale rows of the workflow benchmark, each in a fresh interpreter so that its
RSS and threads are its own.

    python -m benchmarks._scale_child active JOURNAL RUNS
        opens with idle_timeout=None, starts RUNS runs that each wait on a signal,
        and once every one waits prints one JSON line: threads and RSS.
    python -m benchmarks._scale_child build JOURNAL RUNS
        starts RUNS runs that each wait on a signal and, once all wait, prints
        the seconds it took and exits without closing.
    python -m benchmarks._scale_child reopen JOURNAL RUNS
        opens the journal built by ``build`` and prints the open's seconds, RSS
        and threads right after it and 2 s later.

Started by ``benchmarks.workflows`` (which may put another checkout's code first).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from actors import ActorSystem
from benchmarks._recovery_child import wait_until_waiting
from benchmarks._workloads import wait_for_go

_CHUNK = 1000


def open_system(path: str, **options: Any) -> ActorSystem:
    """``ActorSystem.open`` with the options this checkout knows (an older one
    lacks some, e.g. ``dispatcher_threads``)."""
    known = inspect.signature(ActorSystem.open).parameters
    return ActorSystem.open(path, **{k: v for k, v in options.items() if k in known})


def option_default(name: str) -> Any:
    """The default of ``ActorSystem.open``'s option ``name`` (None if it has none)."""
    parameter = inspect.signature(ActorSystem.open).parameters.get(name)
    return None if parameter is None else parameter.default


def status() -> dict[str, int]:
    """This process's threads (the kernel's count) and RSS in bytes."""
    found = {}
    with open("/proc/self/status", encoding="utf-8") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key == "Threads":
                found["threads"] = int(value)
            elif key == "VmRSS":
                found["rss"] = int(value.split()[0]) * 1024
    found["python_threads"] = threading.active_count()
    return found


def run_id(index: int) -> str:
    return f"waiting-{index:06d}"


def start_waiting(system: ActorSystem, runs: int, offset: int = 0) -> None:
    many = getattr(system, "spawn_many", None)
    for first in range(offset, offset + runs, _CHUNK):
        ids = [run_id(i) for i in range(first, min(first + _CHUNK, offset + runs))]
        if many is not None:
            many(wait_for_go, [(i, []) for i in ids])
        else:
            for i in ids:
                system.spawn(wait_for_go, id=i)


def active(journal: str, runs: int) -> None:
    system = open_system(journal, idle_timeout=None)
    began = time.perf_counter()
    start_waiting(system, runs)
    wait_until_waiting(journal, [run_id(i) for i in range(runs)], limit=600.0)
    waiting = time.perf_counter() - began
    time.sleep(1.0)
    report = {"start_s": waiting, "live_runs": system.live_runs, **status()}
    report["dispatcher_threads"] = option_default("dispatcher_threads")
    report["max_workers"] = option_default("max_workers")
    print(json.dumps(report), flush=True)
    os._exit(0)  # the data is thrown away: no need to stop 10,000 runs


def build(journal: str, runs: int) -> None:
    """Once every run waits the process exits without closing, as a crash would:
    each commit is durable already (and closing 100,000 resident actors was
    quadratic before run actors left pykka's registry). With a dispatcher every
    run stays resident; code with a thread per run (no
    ``dispatcher_threads``) passivates each chunk before the next, to stay under
    the thread limit."""
    began = time.perf_counter()
    threaded = option_default("dispatcher_threads") is None
    system = open_system(journal, idle_timeout=0.5 if threaded else None)
    for first in range(0, runs, _CHUNK):
        count = min(_CHUNK, runs - first)
        start_waiting(system, count, first)
        wait_until_waiting(journal, [run_id(first + i) for i in range(count)])
        while threaded and system.live_runs > _CHUNK:
            time.sleep(0.1)
    print(json.dumps({"build_s": time.perf_counter() - began}), flush=True)
    os._exit(0)


def reopen(journal: str, runs: int) -> None:
    began = time.perf_counter()
    system = open_system(journal)
    opened = time.perf_counter() - began
    right_after = status()
    time.sleep(2.0)
    later = status()
    ok = system.ref(run_id(runs - 1)) is not None
    report = {
        "open_s": opened,
        "rss": right_after["rss"],
        "threads": right_after["threads"],
        "rss_2s": later["rss"],
        "threads_2s": later["threads"],
        "ref_ok": ok,
    }
    print(json.dumps(report), flush=True)
    os._exit(0)


def main(argv: Sequence[str]) -> None:
    match argv:
        case ["active", journal, runs]:
            active(journal, int(runs))
        case ["build", journal, runs]:
            build(journal, int(runs))
        case ["reopen", journal, runs]:
            reopen(journal, int(runs))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
