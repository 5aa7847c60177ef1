"""Reading a journal back after a crash test, and the properties checked on it.

Each check returns the problems it found, in words (an empty list: it holds).
They read the raw events of every run, not only the aggregate, because the
aggregate folds a duplicate away: two completions of one seq would leave one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

from actors._backend import backend_for
from actors._inbox import OperatorRequests, OperatorSignalRequested
from actors._system import RunsApp
from aggregates import (
    ChildFinished,
    ChildStarted,
    CommandKind,
    MessagePublished,
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
    "RunsReader",
    "command_summary",
    "exactly_once",
    "first_difference",
    "read_runs",
    "requested_signals",
    "signals_once",
]

_ISSUES = (
    StepScheduled,
    TimerStarted,
    SignalAwaited,
    ChildStarted,
    ValueRecorded,
    PatchRecorded,
    MessagePublished,
)
_OUTCOMES = (StepCompleted, TimerFired, SignalConsumed, ReceiveTimedOut, ChildFinished)
_PAGE = 500  # notifications read at a time


class RunsReader:
    """Reads every run's raw events from the journal at ``path`` (a directory
    or a PostgreSQL URL), again and again on one connection: for checks that
    read after every step of a test. The journal must exist (nothing is
    created: ``JournalPathError`` if there is none)."""

    def __init__(self, path: str) -> None:
        backend = backend_for(path)
        backend.check_exists()
        # The runtime's application: a PostgreSQL journal's tables are named
        # after it (a plain Application would read tables of its own name).
        # Reads one at a time: one connection, and no table made.
        env = {
            **backend.env(),
            "CREATE_TABLE": "false",
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "0",
        }
        self._app = RunsApp(env)

    def read(self) -> dict[str, tuple[RunEvent, ...]]:
        """Every run's events, oldest first, as the journal holds them now."""
        runs: dict[str, list[RunEvent]] = {}
        start = 1
        while True:
            page = self._app.recorder.select_notifications(start, _PAGE)
            for notification in page:
                event = self._app.mapper.to_domain_event(notification)
                if isinstance(event, RunEvent):
                    runs.setdefault(str(event.originator_id), []).append(event)
            if len(page) < _PAGE:
                break
            start = page[-1].id + 1
        return {run: tuple(events) for run, events in runs.items()}

    def requested_signals(self) -> set[str]:
        """The ids of the signals waiting, or once waiting, in the journal's
        operator inbox: acknowledged to a client that sent them to a run
        another host drives, and durable there until that host takes them."""
        return {
            request.signal_id
            for request in OperatorRequests(self._app).read()
            if isinstance(request, OperatorSignalRequested)
        }

    def close(self) -> None:
        self._app.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_runs(path: str) -> dict[str, tuple[RunEvent, ...]]:
    """Every run's events, oldest first, as the journal at ``path`` (a
    directory or a PostgreSQL URL) holds them."""
    with RunsReader(path) as reader:
        return reader.read()


def requested_signals(path: str) -> set[str]:
    """``RunsReader.requested_signals`` of the journal at ``path``."""
    with RunsReader(path) as reader:
        return reader.requested_signals()


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
