"""Supervision benchmarks: how long a failed child is out of service.

    .venv/bin/python benchmarks/supervision.py           # default: 200 trials a row
    .venv/bin/python benchmarks/supervision.py --quick   # smoke run, well under 1 s

Each trial makes a child fail (an exception, or SystemExit, in a told message) and
asks it, through its SupervisedRef, for a timestamp; the figure is the time from
the failure (stamped just before the raise) to the replacement incarnation
handling that ask. Prints machine facts, then one table: each scenario's median
and 90th percentile, the baseline (starting a bare pykka actor and asking it once:
the floor of any restart), their ratio (median / baseline), the target and
whether it was met. Every figure comes from this run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pykka

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where this file (named
# supervision.py) would shadow the supervision package: resolve from the repo root.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

from benchmarks._run_restart import run_restart_samples  # noqa: E402
from supervision import (  # noqa: E402
    ChildSpec,
    Restart,
    Strategy,
    SupervisedActor,
    SupervisedRef,
    Supervisor,
    SupervisorFlags,
    SupervisorRef,
    start_supervisor,
)

FAIL = "fail"
EXIT = "exit"
STAMP = "stamp"
TARGET_SECONDS = 0.005  # failure to replacement handling a message, median
RUN_TARGET_SECONDS = 0.050  # workflow actor fault to the run's next step, median
NEVER_GIVE_UP = SupervisorFlags(max_restarts=10**9, period=1.0)
TIMEOUT = 10.0


class Failure(Exception):
    """What a benchmark child raises."""


class Timed(SupervisedActor):
    """Stamps its failures in ``failed_at`` (shared by every incarnation) and
    answers STAMP with the time it handled it and its actor urn."""

    def __init__(self, failed_at: list[float]) -> None:
        super().__init__()
        self.failed_at = failed_at

    def on_receive(self, message: Any) -> Any:
        if message == FAIL:
            self.failed_at.append(time.perf_counter())
            raise Failure
        if message == EXIT:
            self.failed_at.append(time.perf_counter())
            raise SystemExit(1)
        if message == STAMP:
            return time.perf_counter(), self.actor_urn
        return super().on_receive(message)


class Bare(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return time.perf_counter()


@attrs.frozen
class Row:
    measurement: str
    samples: tuple[float, ...]
    baseline: float
    target: float | None  # seconds, bound on the median; None: informative

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.median <= self.target


@attrs.frozen
class Scenario:
    name: str
    build: Callable[[list[float]], tuple[list[ChildSpec], tuple[str, ...]]]
    failure: str = FAIL
    strategy: Strategy = Strategy.ONE_FOR_ONE


def timed(child_id: str, failed_at: list[float]) -> ChildSpec:
    return ChildSpec.for_actor(child_id, Timed, args=(failed_at,))


def siblings(count: int, failing: int) -> Callable[[list[float]], Any]:
    def build(failed_at: list[float]) -> tuple[list[ChildSpec], tuple[str, ...]]:
        others: list[float] = []
        specs = [
            timed(f"c{n}", failed_at if n == failing else others) for n in range(count)
        ]
        return specs, (f"c{failing}",)

    return build


def nested(failed_at: list[float]) -> tuple[list[ChildSpec], tuple[str, ...]]:
    gives_up = SupervisorFlags(max_restarts=0)
    sub = Supervisor.child_spec("sub", [timed("x", failed_at)], gives_up)
    return [sub], ("sub", "x")


SCENARIOS = [
    Scenario("one_for_one, 1 child", siblings(1, 0)),
    Scenario("one_for_one, 1 child, SystemExit", siblings(1, 0), failure=EXIT),
    Scenario("one_for_all, 4 children", siblings(4, 0), strategy=Strategy.ONE_FOR_ALL),
    Scenario(
        "rest_for_one, 1st of 4 children",
        siblings(4, 0),
        strategy=Strategy.REST_FOR_ONE,
    ),
    Scenario("nested supervisor gives up, parent restarts it", nested),
]


def restart_samples(scenario: Scenario, trials: int, warmup: int) -> list[float]:
    failed_at: list[float] = []
    specs, path = scenario.build(failed_at)
    flags = attrs.evolve(NEVER_GIVE_UP, strategy=scenario.strategy)
    root = start_supervisor(specs, flags, name="bench", on_escalate=_unexpected)
    try:
        child = root.child(*path)
        root.wait_quiet(TIMEOUT)
        samples = [
            one_restart(root, child, scenario.failure, failed_at)
            for _ in range(warmup + trials)
        ]
        return samples[warmup:]
    finally:
        root.stop(timeout=TIMEOUT)


def one_restart(
    root: SupervisorRef, child: SupervisedRef, failure: str, failed_at: list[float]
) -> float:
    _, before = child.ask(STAMP, timeout=TIMEOUT)
    child.tell(failure)
    handled_at, after = child.ask(STAMP, timeout=TIMEOUT)
    assert after != before, "the failed incarnation answered"
    root.wait_quiet(TIMEOUT)  # siblings' restarts finish before the next trial
    return float(handled_at - failed_at[-1])


def baseline_samples(trials: int, warmup: int) -> list[float]:
    samples = []
    for _ in range(warmup + trials):
        began = time.perf_counter()
        ref = Bare.start()
        handled_at: float = ref.ask(STAMP, block=True, timeout=TIMEOUT)
        samples.append(handled_at - began)
        ref.stop()
    return samples[warmup:]


def ask_samples(trials: int) -> tuple[list[float], list[float]]:
    """Round trips of an ask through a SupervisedRef and straight to pykka."""
    root = start_supervisor([timed("c", [])], NEVER_GIVE_UP, name="bench")
    try:
        stable = root.child("c")
        stable.ask(STAMP, timeout=TIMEOUT)
        direct = stable.current()
        assert direct is not None
        through, straight = [], []
        for _ in range(trials):
            began = time.perf_counter()
            stable.ask(STAMP, timeout=TIMEOUT)
            through.append(time.perf_counter() - began)
            began = time.perf_counter()
            direct.ask(STAMP, timeout=TIMEOUT)
            straight.append(time.perf_counter() - began)
        return through, straight
    finally:
        root.stop(timeout=TIMEOUT)


def churn_samples(siblings: int, trials: int, warmup: int) -> list[float]:
    """start_child of a transient child next to ``siblings`` running ones, then
    its normal exit, until the supervisor has removed it (one workflow run's
    activation and passivation under the runtime's simple_one_for_one root)."""
    flags = attrs.evolve(NEVER_GIVE_UP, strategy=Strategy.SIMPLE_ONE_FOR_ONE)
    root = start_supervisor([], flags, name="bench", on_escalate=_unexpected)
    try:
        for n in range(siblings):
            root.start_child(timed(f"sibling-{n}", []))
        run = ChildSpec.for_actor("run", Timed, args=([],), restart=Restart.TRANSIENT)
        samples = []
        for _ in range(warmup + trials):
            began = time.perf_counter()
            actor = root.start_child(run).current()
            assert actor is not None
            actor.stop()
            root.wait_quiet(TIMEOUT)
            samples.append(time.perf_counter() - began)
        return samples[warmup:]
    finally:
        root.stop(timeout=TIMEOUT)


def _unexpected(cause: BaseException) -> None:
    print(f"the benchmark tree escalated: {cause!r}", file=sys.stderr)


def run(trials: int, warmup: int, siblings: int, runs: int) -> list[Row]:
    baseline = statistics.median(baseline_samples(trials, warmup))
    rows = [
        Row(
            f"restart: {scenario.name}",
            tuple(restart_samples(scenario, trials, warmup)),
            baseline,
            TARGET_SECONDS,
        )
        for scenario in SCENARIOS
    ]
    through, straight = ask_samples(trials * 5)
    rows.append(
        Row(
            "ask round trip via SupervisedRef (baseline: pykka ask)",
            tuple(through),
            statistics.median(straight),
            None,
        )
    )
    rows.append(
        Row(
            f"start_child + normal exit, {siblings:,} siblings (baseline: 10)",
            tuple(churn_samples(siblings, trials, warmup)),
            statistics.median(churn_samples(10, trials, warmup)),
            None,
        )
    )
    faults, steps = run_restart_samples(runs, warmup=max(1, runs // 10))
    rows.append(
        Row(
            "workflow actor fault, 1,001-event history -> next step running "
            "(baseline: step to step)",
            tuple(faults),
            statistics.median(steps),
            RUN_TARGET_SECONDS,
        )
    )
    return rows


# -- output ----------------------------------------------------------------------


def figure(seconds: float) -> str:
    ms = seconds * 1e3
    decimals = 3 if ms < 1 else 2 if ms < 10 else 1
    return f"{ms:,.{decimals}f} ms"


def table(rows: Sequence[Row]) -> list[str]:
    header = ("measurement", "median", "p90", "baseline", "ratio", "target", "met")
    cells = [
        (
            row.measurement,
            figure(row.median),
            figure(row.p90),
            figure(row.baseline),
            f"{row.median / row.baseline:.2f}x",
            "-" if row.target is None else f"<= {figure(row.target)}",
            {None: "-", True: "yes", False: "no"}[row.met],
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


def footnotes(trials: int, warmup: int, siblings: int, runs: int) -> list[str]:
    return [
        f"restart rows: {trials} trials each after {warmup} warm-up trials; the "
        "time from the failure (stamped in the failing handler, just before the "
        "raise) to the replacement handling an ask sent right after the failing "
        "tell (when the ask reached the dying incarnation first, the ref re-sent "
        "it). Supervisors run on the real clock, without backoff.",
        "baseline: a bare pykka ThreadingActor started and asked once (median), "
        "the floor of any restart: a new thread and a first message.",
        "nested row: the sub-supervisor allows no restart, so the failure climbs "
        "one level and the parent restarts the sub-supervisor and its child.",
        f"ask row: {trials * 5} round trips, alternating with plain pykka asks to "
        "the same actor.",
        f"start_child row: under a simple_one_for_one supervisor with {siblings:,} "
        "running siblings, start a transient child, stop it, and wait until the "
        "supervisor removed it; baseline: the same with 10 siblings. The "
        "supervisor's own work per child is constant (tests/supervision/"
        "test_scaling.py counts it); what grows is starting and stopping a thread "
        "among thousands (CPython 3.11 scans its non-daemon threads at each "
        "start, pykka's registry is a list).",
        f"workflow row: {runs} runs (after warm-up runs) of 500 no-op steps and a "
        "probe step, on a real journal (fsync on); the probe's result commit "
        "raises once; from that fault to the probe starting again in the actor "
        "the runs supervisor started, which read the run from its latest "
        "snapshot and replayed the code against its 1,001 events. Baseline: the "
        "same run's last no-op step start to the probe's first start. See "
        "benchmarks/_run_restart.py.",
    ]


def machine_info() -> list[str]:
    affinity = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    return [
        f"cpus: {os.cpu_count()} (usable: {affinity}), {platform.machine()}",
        f"python: {platform.python_implementation()} {platform.python_version()} "
        f"on {platform.platform()}; pykka {importlib.metadata.version('pykka')}",
        "load average (1, 5, 15 min): "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg()),
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few trials: a smoke run")
    parser.add_argument("--trials", type=int, help="trials per row (default 200)")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    trials = args.trials or (20 if args.quick else 200)
    warmup = 5 if args.quick else 20
    siblings = 500 if args.quick else 5_000
    runs = 3 if args.quick else 30
    print("\n".join(machine_info()))
    print()
    rows = run(trials, warmup, siblings, runs)
    print("\n".join(table(rows)))
    print()
    print("\n".join(f"- {note}" for note in footnotes(trials, warmup, siblings, runs)))
    missed = [row.measurement for row in rows if row.met is False]
    if missed and args.strict:
        print(f"missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
