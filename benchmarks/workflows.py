"""Workflow benchmarks: chronik's runtime on four workloads, fsync on.

    .venv/bin/python benchmarks/workflows.py           # default sizes, some seconds
    .venv/bin/python benchmarks/workflows.py --quick   # smoke run, a few seconds
    .venv/bin/python -m benchmarks.workflows           # the same, as a module

Prints machine facts, then one table: each workload with chronik's figure, the
baseline measured in this run where there is one (a durable one-put commit of bare
LMDB), their ratio, the target, whether it was met, and the best peer's figure (from
the issue, not measured here). Every chronik and baseline figure comes from this run.
All data lives in one temporary directory on the repository's filesystem (or under
--tmp-dir), removed at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import lmdb

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where benchmarks/
# journal.py would shadow the journal package: resolve imports from the repo root.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

from actors import ActorSystem  # noqa: E402
from benchmarks._recovery_child import READY, run_id, wait_until_waiting  # noqa: E402
from benchmarks._workloads import GO, sequential_noops, wait_for_go  # noqa: E402
from benchmarks.journal import machine_info  # noqa: E402

_BARE_MAP_SIZE = 1 << 30
_RESULT_TIMEOUT = 120.0  # seconds: far beyond any sane figure, short of a hang
_CHILD_TIMEOUT = 300.0


@attrs.frozen
class Scale:
    sequential_steps: int  # W1: steps of each run
    sequential_runs: int  # W1: runs back to back, after one warm-up run
    commits_per_run: int  # bare LMDB commits timed just before each W1 run
    concurrent_runs: int  # W2: runs spawned at once
    concurrent_steps: int  # W2: steps of each run
    signal_runs: int  # W3: runs signalled one at a time, after one warm-up run
    recovery_runs: int  # W4: runs waiting when the process is killed
    rounds: int  # W2 and W4 are run this many times (median taken)


DEFAULT = Scale(
    sequential_steps=20,
    sequential_runs=10,
    commits_per_run=20,
    concurrent_runs=500,
    concurrent_steps=3,
    signal_runs=20,
    recovery_runs=200,
    rounds=3,
)
QUICK = Scale(
    sequential_steps=5,
    sequential_runs=2,
    commits_per_run=5,
    concurrent_runs=20,
    concurrent_steps=3,
    signal_runs=3,
    recovery_runs=10,
    rounds=1,
)


@attrs.frozen
class Target:
    """A bound on chronik / baseline (``on_ratio``), else on chronik's own figure."""

    bound: float
    at_least: bool
    on_ratio: bool
    unit: str = "s"

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        op = ">=" if self.at_least else "<="
        if self.on_ratio:
            return f"{op} {self.bound:g}x"
        if self.unit == "s":
            return f"{op} {self.bound * 1e3:g} ms"
        return f"{op} {self.bound:,g} {self.unit}"


@attrs.frozen
class Row:
    measurement: str
    chronik: float
    unit: str  # "s" (shown in ms) or "steps/s"
    baseline: float | None  # None: no baseline in this run
    target: Target
    peer: float  # the best peer's figure, in ``unit``
    detail: str = ""  # shown after chronik's figure

    @property
    def ratio(self) -> float | None:
        return None if self.baseline is None else self.chronik / self.baseline

    @property
    def met(self) -> bool:
        if not self.target.on_ratio:
            return self.target.met(self.chronik)
        assert self.ratio is not None, f"{self.measurement}: a ratio needs a baseline"
        return self.target.met(self.ratio)


# -- the baseline: one durable commit of bare LMDB -----------------------------------


class BareCommits:
    """LMDB with fsync on, one small put per write transaction, nothing else."""

    def __init__(self, path: Path) -> None:
        self.env = lmdb.open(
            str(path), map_size=_BARE_MAP_SIZE, sync=True, metasync=True
        )
        self.count = 0

    def timed(self, commits: int) -> list[float]:
        """Seconds of each of ``commits`` one-put commits."""
        samples = []
        for _ in range(commits):
            self.count += 1
            key = struct.pack(">Q", self.count)
            began = time.perf_counter()
            with self.env.begin(write=True) as txn:
                txn.put(key, b"x" * 32, append=True)
            samples.append(time.perf_counter() - began)
        return samples

    def close(self) -> None:
        self.env.close()


# -- W1: one run of sequential steps ---------------------------------------------------


@attrs.frozen
class Sequential:
    per_step: list[float]  # seconds per step, run by run
    commits: list[float]  # seconds per bare commit, all of them


def sequential(root: Path, scale: Scale) -> Sequential:
    """Each run's (spawn to result) / steps; bare commits timed between runs, so
    that drift in the disk's speed hits both alike."""
    bare = BareCommits(root / "bare-lmdb")
    per_step: list[float] = []
    commits: list[float] = []
    steps = scale.sequential_steps
    try:
        with ActorSystem.open(root / "sequential") as system:
            for index in range(scale.sequential_runs + 1):  # run 0 warms up
                samples = bare.timed(scale.commits_per_run)
                began = time.perf_counter()
                ref = system.spawn(sequential_noops, steps, id=f"sequential-{index}")
                result = ref.result(timeout=_RESULT_TIMEOUT)
                elapsed = time.perf_counter() - began
                expect(result == steps, f"sequential run {index} returned {result!r}")
                if index > 0:
                    per_step.append(elapsed / steps)
                    commits.extend(samples)
    finally:
        bare.close()
    return Sequential(per_step, commits)


# -- W2: many runs at once ----------------------------------------------------------


@attrs.frozen
class Concurrent:
    seconds: float  # first spawn call to the last result
    spawning: float  # first spawn call to the last spawn's return


def concurrent(path: Path, scale: Scale) -> Concurrent:
    runs, steps = scale.concurrent_runs, scale.concurrent_steps
    with ActorSystem.open(path) as system:
        began = time.perf_counter()
        # Started at once: one spawn_many call, one commit for all the starts.
        refs = system.spawn_many(
            sequential_noops, [(f"concurrent-{i}", [steps]) for i in range(runs)]
        )
        spawned = time.perf_counter()
        results = [ref.result(timeout=_RESULT_TIMEOUT) for ref in refs]
        ended = time.perf_counter()
    wrong = [r for r in results if r != steps]
    expect(not wrong, f"{len(wrong)} of {runs} concurrent runs returned {wrong[:3]}")
    return Concurrent(ended - began, spawned - began)


# -- W3: a signal to a waiting run ----------------------------------------------------


@attrs.frozen
class Signalled:
    to_result: list[float]  # send call start to result available, run by run
    to_ack: list[float]  # send call start to send's return (the signal is durable)


def signalled(path: Path, scale: Scale) -> Signalled:
    """Spawn every run first and wait until each one waits on its receive, then
    signal them one at a time, timing each from send to result."""
    ids = [f"signal-{index}" for index in range(scale.signal_runs + 1)]
    to_result: list[float] = []
    to_ack: list[float] = []
    with ActorSystem.open(path) as system:
        refs = [system.spawn(wait_for_go, id=workflow_id) for workflow_id in ids]
        wait_until_waiting(str(path), ids)
        for index, ref in enumerate(refs):  # run 0 warms up
            began = time.perf_counter()
            ref.send(GO, index)
            acked = time.perf_counter()
            result = ref.result(timeout=_RESULT_TIMEOUT)
            ended = time.perf_counter()
            expect(result == index, f"run {ref.id} returned {result!r}, not {index}")
            if index > 0:
                to_result.append(ended - began)
                to_ack.append(acked - began)
    return Signalled(to_result, to_ack)


# -- W4: recovery after SIGKILL --------------------------------------------------------


_CHILD = (sys.executable, "-m", "benchmarks._recovery_child")


def recovery(root: Path, runs: int) -> dict[str, float]:
    """Kill a process holding ``runs`` waiting runs; time a new process's open,
    signals and results. Checks every run finished and ran its step once."""
    journal, side_file = root / "journal", root / "executions.txt"
    root.mkdir()
    with open(root / "start.err", "w+", encoding="utf-8") as errors:
        child = subprocess.Popen(
            [*_CHILD, "start", str(journal), str(side_file), str(runs)],
            cwd=_REPO,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            line = _first_line(child, _CHILD_TIMEOUT)
            expect(line == READY, f"the start child said {line!r}: {_tail(errors)}")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=_CHILD_TIMEOUT)
            if child.stdout is not None:
                child.stdout.close()
    resumed = subprocess.run(
        [*_CHILD, "resume", str(journal), str(runs)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT,
        check=False,
    )
    expect(resumed.returncode == 0, f"the resume child failed: {resumed.stderr}")
    report: dict[str, Any] = json.loads(resumed.stdout.splitlines()[-1])
    expect(report.pop("results_ok"), f"resumed runs returned wrong results: {report}")
    check_executed_once(side_file, [run_id(i) for i in range(runs)])
    return {phase: float(seconds) for phase, seconds in report.items()}


def check_executed_once(side_file: Path, ids: Sequence[str]) -> None:
    counts = Counter(side_file.read_text(encoding="utf-8").split())
    again = {i: n for i, n in counts.items() if n != 1}
    missing = set(ids) - set(counts)
    stray = set(counts) - set(ids)
    if again or missing or stray:
        # The kill came after every step's outcome was durable: a second execution
        # means the reopened system re-ran a recorded step.
        msg = (
            f"first steps did not run exactly once each in {side_file}: ran more "
            f"than once {again}, never ran {sorted(missing)[:5]}, unknown ids "
            f"{sorted(stray)[:5]}"
        )
        raise RuntimeError(msg)


def _first_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line ("" at end of file or after ``timeout``)."""
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    stdout = child.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


def _tail(errors: Any) -> str:
    errors.seek(0)
    return str(errors.read()[-2000:]) or "(no stderr)"


def expect(condition: object, message: str) -> None:
    if not condition:
        raise RuntimeError(f"{message}: the benchmark is not measuring what it says")


# -- the run -------------------------------------------------------------------------


@attrs.frozen
class Results:
    rows: list[Row]
    sequential: Sequential
    concurrent: list[Concurrent]
    signalled: Signalled
    recovery: list[dict[str, float]]


def run(root: Path, scale: Scale) -> Results:
    seq = sequential(root, scale)
    rounds = [concurrent(root / f"concurrent-{i}", scale) for i in range(scale.rounds)]
    sig = signalled(root / "signal", scale)
    recovered = [
        recovery(root / f"recovery-{i}", scale.recovery_runs)
        for i in range(scale.rounds)
    ]
    commit = statistics.median(seq.commits)
    seconds = statistics.median(r.seconds for r in rounds)
    steps = scale.concurrent_runs * scale.concurrent_steps
    rows = [
        Row(
            f"W1: {scale.sequential_steps} sequential no-op steps, "
            f"{scale.sequential_runs} runs: median time/step vs 1 bare LMDB commit",
            statistics.median(seq.per_step),
            "s",
            commit,
            Target(3, at_least=False, on_ratio=True),
            peer=1.67e-3,
        ),
        Row(
            f"W2: {scale.concurrent_runs} runs x {scale.concurrent_steps} no-op "
            "steps started at once: throughput",
            steps / seconds,
            "steps/s",
            None,
            Target(4300, at_least=True, on_ratio=False, unit="steps/s"),
            peer=433,
            detail=f"({scale.concurrent_runs / seconds:,.0f} runs/s)",
        ),
        Row(
            f"W3: signal a waiting run, {scale.signal_runs} runs: median send to "
            "result vs 1 bare LMDB commit",
            statistics.median(sig.to_result),
            "s",
            commit,
            Target(1e-3, at_least=False, on_ratio=False),
            peer=10.8e-3,
        ),
        Row(
            f"W4: SIGKILL with {scale.recovery_runs} runs waiting; new process: "
            "open, signal all, all results",
            statistics.median(r["total"] for r in recovered),
            "s",
            None,
            Target(0.3, at_least=False, on_ratio=False),
            peer=1.61,
        ),
    ]
    return Results(rows, seq, rounds, sig, recovered)


# -- output ----------------------------------------------------------------------


def figure(value: float, unit: str) -> str:
    if unit != "s":
        return f"{value:,.0f} {unit}"
    ms = value * 1e3
    if ms >= 1000:
        return f"{value:,.2f} s"
    decimals = 3 if ms < 1 else 2 if ms < 10 else 1 if ms < 100 else 0
    return f"{ms:,.{decimals}f} ms"


def table(rows: Sequence[Row]) -> list[str]:
    header = ("measurement", "chronik", "baseline", "ratio", "target", "met", "peer")
    cells = [
        (
            row.measurement,
            " ".join(filter(None, [figure(row.chronik, row.unit), row.detail])),
            "-" if row.baseline is None else figure(row.baseline, row.unit),
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
            str(row.target),
            "yes" if row.met else "no",
            figure(row.peer, row.unit),
        )
        for row in rows
    ]
    widths = [
        max(len(line[i]) for line in [header, *cells]) for i in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]


def ms_list(samples: Sequence[float]) -> str:
    return ", ".join(f"{s * 1e3:.2f}" for s in samples)


def footnotes(results: Results, scale: Scale) -> list[str]:
    seq, sig = results.sequential, results.signalled
    spawning = statistics.median(r.spawning for r in results.concurrent)
    phases = "; ".join(
        ", ".join(f"{k} {v * 1e3:.0f}" for k, v in r.items()) for r in results.recovery
    )
    return [
        "fsync on everywhere: the journal at its defaults (LMDB_SYNC=yes), bare LMDB "
        "with sync=True, metasync=True. ratio = chronik / baseline. peer = the best "
        "peer's figure from the issue, not measured here.",
        f"W1: time/step = (spawn call to result) / {scale.sequential_steps}, so it "
        f"spreads the run's start commit over its steps ({scale.sequential_steps + 1} "
        f"commits a run). Median of {scale.sequential_runs} runs after a warm-up, "
        f"ms/step run by run: {ms_list(seq.per_step)}. Baseline: median of "
        f"{len(seq.commits)} one-put commits, {scale.commits_per_run} before each run.",
        f"W2: first spawn call to last result; spawning alone took {spawning * 1e3:.0f}"
        " ms (median; spawn_many commits every start in one commit before it "
        "returns). Steps/s "
        "round by round: "
        + ", ".join(
            f"{scale.concurrent_runs * scale.concurrent_steps / r.seconds:,.0f}"
            for r in results.concurrent
        )
        + ".",
        f"W3: every run waits on ctx.receive before the first send; median of "
        f"{scale.signal_runs} after a warm-up; send returned (signal durable) after "
        f"{statistics.median(sig.to_ack) * 1e3:.3f} ms median. ms run by run: "
        f"{ms_list(sig.to_result)}.",
        f"W4: a child process spawns {scale.recovery_runs} runs (one step appending "
        "the run id to a side file with fsync, then ctx.receive) and is SIGKILLed once "
        "every step's outcome is durable; a new process times ActorSystem.open (which "
        "resumes the runs by replay), one send per run from one thread, and every "
        "result. Checked: all results right, each step ran exactly once. Median of "
        f"{scale.rounds} round(s); ms by phase, round by round: {phases}.",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--rounds", type=int, help="W2 and W4 rounds (median taken)")
    parser.add_argument("--concurrent-runs", type=int, help="W2 runs")
    parser.add_argument("--recovery-runs", type=int, help="W4 runs")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=_REPO,
        help="where the temporary directory goes (default: the repository, so the "
        "data sits on the repository's filesystem)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed"
    )
    return parser.parse_args(argv)


def scale_from(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else DEFAULT
    overrides = {
        "rounds": args.rounds,
        "concurrent_runs": args.concurrent_runs,
        "recovery_runs": args.recovery_runs,
    }
    return attrs.evolve(scale, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_from(args)
    root = Path(tempfile.mkdtemp(prefix=".bench-workflows-", dir=args.tmp_dir))
    try:
        print("\n".join(machine_info(root)), end="\n\n", flush=True)
        results = run(root, scale)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(table(results.rows)))
    print()
    print("\n".join(f"* {note}" for note in footnotes(results, scale)))
    missed = [row.measurement for row in results.rows if not row.met]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
