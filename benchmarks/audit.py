"""Audit benchmarks: verifying and exporting a journal of 100,000 events.

    .venv/bin/python benchmarks/audit.py            # 100,000 events, about a minute
    .venv/bin/python benchmarks/audit.py --quick    # smoke run, a few seconds

Builds a journal with real workflow runs (each run: Started, then a scheduled and
a completed event per step, then Completed), then measures, side by side in this
run, events per second of:

- reading the whole notification log (the baseline every audit pass pays),
- verifying both hash chains (``JournalReader.verify``),
- ``chronik export`` (JSON lines to a file; the installed console script),
- ``chronik verify`` (hash chains plus a determinism replay of every run).

Every figure comes from this run; the journal lives in a temporary directory
(under --tmp-dir if given), removed at exit.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

_REPO = Path(__file__).resolve().parent.parent
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

from actors import ActorSystem  # noqa: E402
from benchmarks._workloads import sequential_noops  # noqa: E402
from journal import JournalReader  # noqa: E402

_CHRONIK = Path(sys.executable).parent / "chronik"
_WORKLOADS = "benchmarks._workloads"
EVENTS_PER_RUN = 100  # Started + 49 x (scheduled, completed) + Completed
STEPS_PER_RUN = (EVENTS_PER_RUN - 2) // 2


@attrs.frozen
class Row:
    label: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def build(path: str, events: int) -> int:
    """Spawn runs until the journal holds about ``events`` run events."""
    runs = max(1, events // EVENTS_PER_RUN)
    with ActorSystem.open(path) as system:
        batch = 100
        for first in range(0, runs, batch):
            refs = system.spawn_many(
                sequential_noops,
                [
                    (f"audit-{index}", [STEPS_PER_RUN])
                    for index in range(first, min(runs, first + batch))
                ],
            )
            for ref in refs:
                ref.result(timeout=120)
    with JournalReader(path) as reader:
        return reader.max_notification_id() or 0


def timed(label: str, events: int, action: Callable[[], object]) -> Row:
    started = time.perf_counter()
    action()
    return Row(label, events, time.perf_counter() - started)


def read_log(path: str) -> None:
    with JournalReader(path) as reader:
        for _ in reader.notifications():
            pass


def verify_chains(path: str) -> None:
    with JournalReader(path) as reader:
        report = reader.verify()
    if not report.ok:
        raise SystemExit(f"the benchmark journal does not verify: {report.problems}")


def cli(*args: str, out: str | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(_REPO)}
    with open(out or os.devnull, "w", encoding="utf-8") as sink:
        done = subprocess.run(
            [str(_CHRONIK), *args],
            check=False,
            stdout=sink,
            stderr=subprocess.PIPE,
            env=env,
        )
    if done.returncode != 0:
        raise SystemExit(f"chronik {args[0]} failed: {done.stderr.decode()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 2,000-event smoke run")
    parser.add_argument("--events", type=int, default=None, help="journal size")
    parser.add_argument("--tmp-dir", default=None, help="where the journal lives")
    args = parser.parse_args()
    wanted = args.events or (2_000 if args.quick else 100_000)
    root = tempfile.mkdtemp(prefix="chronik-audit-", dir=args.tmp_dir)
    try:
        path = os.path.join(root, "journal")
        started = time.perf_counter()
        events = build(path, wanted)
        built = time.perf_counter() - started
        print(
            f"python {platform.python_version()} on {platform.machine()}, "
            f"{os.cpu_count()} cores; journal of {events:,} events "
            f"({events // EVENTS_PER_RUN:,} runs) built in {built:.1f} s"
        )
        export_file = os.path.join(root, "export.jsonl")
        rows = [
            timed("read the log (baseline)", events, lambda: read_log(path)),
            timed("verify hash chains (API)", events, lambda: verify_chains(path)),
            timed(
                "chronik export (JSON lines)",
                events,
                lambda: cli("--journal", path, "export", out=export_file),
            ),
            timed(
                "chronik verify (chains + replay)",
                events,
                lambda: cli("--journal", path, "verify", "--module", _WORKLOADS),
            ),
        ]
        with open(export_file, encoding="utf-8") as exported:
            lines = sum(1 for _ in exported)
        if lines != events:
            raise SystemExit(f"export wrote {lines} lines for {events} events")
        baseline = rows[0].rate
        print(f"{'measurement':<34}{'events/s':>12}{'seconds':>10}{'vs baseline':>14}")
        for row in rows:
            print(
                f"{row.label:<34}{row.rate:>12,.0f}{row.seconds:>10.2f}"
                f"{row.rate / baseline:>13.2f}x"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
