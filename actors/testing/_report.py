"""What a crash test is given and what it reports: signals to send, the
fault-free run (``Baseline``), and how one run went (``RunReport``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from actors.testing._faults import FaultPlan
from aggregates import ErrorInfo, RunEvent, RunStatus, SignalConsumed, WorkflowRun

__all__ = [
    "Baseline",
    "Invariant",
    "RunReport",
    "SignalToSend",
    "StepExecution",
    "StepInfo",
    "signals_to_send",
]


@attrs.frozen
class SignalToSend:
    """A signal the client sends after spawning the run; ``signal_id`` defaults
    to ``"signal-<n>"`` (its place in the list), so a resend is a duplicate."""

    topic: str
    payload: Any = None
    signal_id: str | None = None


@attrs.frozen
class StepExecution:
    """One attempt of a step whose body was about to run, in life ``life``."""

    key: str  # the idempotency key, "<workflow id>/<seq>"
    name: str
    attempt: int
    life: int


@attrs.frozen(eq=False)
class RunReport:
    """How one run under one plan went: what the invariant is handed.

    ``events`` holds every run's raw events (children included) by workflow id;
    ``effects`` a copy of the test's effects log once every process wound down.
    """

    workflow_id: str
    plan: FaultPlan
    status: RunStatus
    result: Any
    error: ErrorInfo | None
    history: WorkflowRun
    events: Mapping[str, tuple[RunEvent, ...]]
    effects: tuple[Any, ...]
    executions: tuple[StepExecution, ...]
    acknowledged: frozenset[str]
    lives: tuple[str, ...]

    @property
    def consumed_signals(self) -> frozenset[str]:
        events = self.events.get(self.workflow_id, ())
        return frozenset(e.signal_id for e in events if isinstance(e, SignalConsumed))

    def executions_of(self, step_name: str) -> list[StepExecution]:
        return [e for e in self.executions if e.name == step_name]


Invariant = Callable[[RunReport], object]
"""Checks a finished run: raises (an ``AssertionError``, say) or returns False
when it does not hold."""


@attrs.frozen
class StepInfo:
    """A step of the fault-free run, and how many transient failures it can take
    without changing the run (what its retry policy has left)."""

    key: str
    name: str
    max_failures: int


@attrs.frozen(eq=False)
class Baseline:
    """The fault-free run: what every faulty run is compared with, and what the
    strategies draw faults from."""

    report: RunReport
    commits: int
    steps: tuple[StepInfo, ...]
    signal_ids: tuple[str, ...]

    @property
    def step_names(self) -> dict[str, str]:
        return {step.key: step.name for step in self.steps}


def signals_to_send(
    signals: Iterable[SignalToSend | tuple[Any, ...]],
) -> tuple[SignalToSend, ...]:
    made = []
    for n, signal in enumerate(signals):
        given = signal if isinstance(signal, SignalToSend) else SignalToSend(*signal)
        signal_id = given.signal_id or f"signal-{n}"
        made.append(attrs.evolve(given, signal_id=signal_id))
    return tuple(made)
