"""Reading a journal back after a crash test, and the properties checked on it.

Each check returns the problems it found, in words (an empty list: it holds).
They read the raw events of every run, not only the aggregate, because the
aggregate folds a duplicate away: two completions of one seq would leave one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eventsourcing.application import Application

from aggregates import (
    ChildFinished,
    ChildStarted,
    CommandKind,
    PatchRecorded,
    ReceiveTimedOut,
    RunEvent,
    SignalAwaited,
    SignalConsumed,
    SignalReceived,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    ValueKind,
    ValueRecorded,
    WorkflowRun,
)

__all__ = [
    "command_summary",
    "exactly_once",
    "first_difference",
    "read_runs",
    "signals_once",
]

_ISSUES = (
    StepScheduled,
    TimerStarted,
    SignalAwaited,
    ChildStarted,
    ValueRecorded,
    PatchRecorded,
)
_OUTCOMES = (StepCompleted, TimerFired, SignalConsumed, ReceiveTimedOut, ChildFinished)


def read_runs(path: str) -> dict[str, tuple[RunEvent, ...]]:
    """Every run's events, oldest first, as the journal at ``path`` holds them."""
    app = Application[str](env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path})
    try:
        runs: dict[str, list[RunEvent]] = {}
        start = 1
        while True:
            page = app.recorder.select_notifications(start, 500)
            for notification in page:
                event = app.mapper.to_domain_event(notification)
                if isinstance(event, RunEvent):
                    runs.setdefault(str(event.originator_id), []).append(event)
            if len(page) < 500:
                break
            start = page[-1].id + 1
        return {run: tuple(events) for run, events in runs.items()}
    finally:
        app.close()


def exactly_once(runs: Mapping[str, Sequence[RunEvent]]) -> list[str]:
    """No seq of any run was issued twice or got two outcomes."""
    problems = []
    for run, events in runs.items():
        issued = Counter(e.seq for e in events if isinstance(e, _ISSUES))
        ended = Counter(
            e.seq
            for e in events
            if isinstance(e, _OUTCOMES) or (isinstance(e, StepFailed) and e.final)
        )
        problems += [
            f"run {run!r} recorded the command at seq {seq} {n} times"
            for seq, n in sorted(issued.items())
            if n > 1
        ]
        problems += [
            f"run {run!r} recorded {n} outcomes for seq {seq} ({_names(events, seq)})"
            for seq, n in sorted(ended.items())
            if n > 1
        ]
    return problems


def signals_once(
    events: Sequence[RunEvent], acknowledged: Iterable[str], consumed: Iterable[str]
) -> list[str]:
    """Each signal was received once, consumed at most once; every acknowledged
    one is there, and the ones ``consumed`` (by the fault-free run) were."""
    received = Counter(e.signal_id for e in events if isinstance(e, SignalReceived))
    taken = Counter(e.signal_id for e in events if isinstance(e, SignalConsumed))
    problems = [
        f"signal {signal_id!r} was received {n} times"
        for signal_id, n in sorted(received.items())
        if n > 1
    ]
    problems += [
        f"signal {signal_id!r} was consumed {n} times"
        for signal_id, n in sorted(taken.items())
        if n > 1
    ]
    problems += [
        f"signal {signal_id!r} was consumed but never received"
        for signal_id in sorted(set(taken) - set(received))
    ]
    problems += [
        f"signal {signal_id!r} was acknowledged to the client but is not in history"
        for signal_id in sorted(set(acknowledged) - set(received))
    ]
    problems += [
        f"signal {signal_id!r} was never consumed (the fault-free run consumed it)"
        for signal_id in sorted(set(consumed) - set(taken))
    ]
    return problems


def command_summary(run: WorkflowRun) -> list[tuple[Any, ...]]:
    """Each command with its outcome, without times and attempts (which faults
    change); values drawn at random (``ctx.uuid4``, ``ctx.random``) left out."""
    summary = []
    for record in run.commands:
        outcome = record.outcome
        value = None if outcome is None else outcome.value
        if record.kind is CommandKind.VALUE and record.name in (
            ValueKind.UUID,
            ValueKind.RANDOM,
        ):
            value = "<random>"
        error = None if outcome is None or outcome.error is None else outcome.error
        summary.append(
            (
                record.seq,
                str(record.kind),
                record.name,
                None if outcome is None else str(outcome.kind),
                value,
                None if error is None else (error.type, error.message),
            )
        )
    return summary


def first_difference(
    expected: Sequence[tuple[Any, ...]], found: Sequence[tuple[Any, ...]]
) -> str | None:
    """Where two command summaries part, in words; ``None`` if they agree."""
    for want, got in zip(expected, found, strict=False):
        if want != got:
            return f"at seq {want[0]} the fault-free run has {want}, this run {got}"
    if len(expected) != len(found):
        return (
            f"the fault-free run issued {len(expected)} commands, this run {len(found)}"
        )
    return None


def _names(events: Sequence[RunEvent], seq: int) -> str:
    return ", ".join(type(e).__name__ for e in events if getattr(e, "seq", None) == seq)
