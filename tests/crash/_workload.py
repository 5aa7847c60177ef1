"""The workload of one SIGKILL trial, drawn from a seed: which runs of the model
workflows the worker spawns and which signals it sends them.

The worker and the test that kills it draw the same workload from the same
seed. Its results do not depend on timing: a receive whose signals are sent
waits an hour (it always gets them), one whose signals are never sent waits
0.1 s (it always times out), and timers last 50 ms of real time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from tests.crash._model import Model

__all__ = [
    "PlannedRun",
    "PlannedSignal",
    "Workload",
    "model_of",
    "send_order",
    "workload",
]

HOUR = 3600.0  # a receive whose signals are sent
SHORT = 0.1  # a receive whose signals are never sent: it times out
PAUSE = 0.05  # timers
FATES = ["ok", "ok", "ok", "flaky", "fatal"]


@attrs.frozen
class PlannedSignal:
    run_id: str
    topic: str
    payload: int
    signal_id: str
    twice: bool  # the worker sends it twice in a row


@attrs.frozen
class PlannedRun:
    run_id: str
    workflow: str
    args: list[Any]
    signals: tuple[PlannedSignal, ...]
    failures: int  # transient step failures injected into the worker


@attrs.frozen
class Workload:
    runs: list[PlannedRun]
    latency: float  # real seconds each step body takes in the worker


def workload(seed: int) -> Workload:
    rng = random.Random(seed)
    runs = [_run(rng, number) for number in range(rng.randint(5, 8))]
    return Workload(runs, rng.choice([0.0, 0.002, 0.005]))


def _run(rng: random.Random, number: int) -> PlannedRun:
    kind = rng.choice(["pipeline", "collector", "parent", "booking"])
    run_id = f"{kind}-{number}"
    x = rng.randrange(100)
    fates = [rng.choice(FATES) for _ in range(5)]
    topics: list[str] = []
    sends = rng.random() < 0.7
    wait = HOUR if sends else SHORT
    if kind == "pipeline":
        args: list[Any] = [x, fates[:3], PAUSE]
    elif kind == "collector":
        count = rng.randint(1, 3)
        args = [x, count, wait, fates[:1]]
        topics = ["item"] * (count if sends else 0) + ["done"]
    elif kind == "parent":
        args = [x, fates[:3], PAUSE, wait]
        topics = ["go"] if sends else []
    else:
        args = [x, fates[:5], wait]
        topics = ["approve"] if sends else []
    if rng.random() < 0.3:
        topics.insert(rng.randint(0, len(topics)), "noise")
    signals = tuple(
        PlannedSignal(
            run_id, topic, rng.randrange(10), f"{run_id}:{n}", rng.random() < 0.2
        )
        for n, topic in enumerate(topics)
    )
    return PlannedRun(
        run_id, f"tests.crash.{kind}", args, signals, rng.choice([0, 0, 1, 2, 3])
    )


def send_order(runs: list[PlannedRun]) -> list[PlannedSignal]:
    """Every signal, round robin over the runs, each run's in its own order."""
    queues = [list(run.signals) for run in runs]
    order = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def model_of(runs: list[PlannedRun]) -> Model:
    """The workload without faults: every run spawned, sent all its signals,
    and a day of time passed."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    model = Model(start)
    for run in runs:
        model.spawn(run.run_id, run.workflow, run.args)
        for signal in run.signals:
            model.signal(run.run_id, signal.topic, signal.payload, signal.signal_id)
    model.advance_to(start + timedelta(days=1))
    return model
