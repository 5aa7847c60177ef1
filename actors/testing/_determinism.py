"""Telling a workflow that is not deterministic from one that is not crash-safe.

Two runs under one fault plan are compared command by command. While every
outcome so far was the same (the same step results, signals, recorded values),
deterministic workflow code asks for the same next command and ends with the
same result; where it does not, it read something outside ``ctx``. Once an
outcome differs (a step returned something else, ``ctx.uuid4()`` drew another
value) the runs saw different inputs, and nothing more can be told from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.testing._report import RunReport
from aggregates import RunEvent, WorkflowRun

__all__ = ["disagreement", "replay_failure"]

_REPLAY_ERRORS = ("NonDeterminismError", "NonDeterministicEndError")


def replay_failure(report: RunReport) -> str | None:
    """The replay check's own words, if the run failed because its code did
    not match its history when it was replayed after a crash."""
    error = report.error
    if error is None or error.type not in _REPLAY_ERRORS:
        return None
    return f"after a crash its replay did not match its history: {error.message}"


def disagreement(first: RunReport, second: RunReport) -> str | None:
    """What the code did differently in ``second`` given the same inputs as in
    ``first``, in words; ``None`` if nothing (or if their inputs differed)."""
    runs = _runs(first.events)
    others = _runs(second.events)
    for run_id in sorted(runs.keys() & others.keys()):
        found = _commands_differ(run_id, runs[run_id], others[run_id])
        if found is not None:
            return found or None
    if _ending(first) != _ending(second):
        return (
            f"with the same history it ended {_outcome(first)} the first time "
            f"and {_outcome(second)} the second"
        )
    return None


def _commands_differ(run_id: str, one: WorkflowRun, two: WorkflowRun) -> str | None:
    """The first command two runs of ``run_id`` issued differently after the same
    outcomes; ``""`` if an outcome differed first (nothing can be told)."""
    for left, right in zip(one.commands, two.commands, strict=False):
        asked, other = _issue(left), _issue(right)
        if asked != other:
            return (
                f"run {run_id!r} asked at seq {left.seq} for {_words(asked)} the "
                f"first time and for {_words(other)} the second, every outcome "
                "before it being the same"
            )
        if _outcome_of(left) != _outcome_of(right):
            return ""
    if len(one.commands) != len(two.commands):
        return (
            f"run {run_id!r} issued {len(one.commands)} commands the first time "
            f"and {len(two.commands)} the second, every outcome before being "
            "the same"
        )
    return None


def _issue(record: Any) -> tuple[Any, ...]:
    return (str(record.kind), record.name, tuple(record.args), record.child_id)


def _outcome_of(record: Any) -> tuple[Any, ...]:
    outcome = record.outcome
    if outcome is None:
        return (None,)
    error = outcome.error
    return (
        str(outcome.kind),
        outcome.value,
        None if error is None else (error.type, error.message),
    )


def _words(issue: tuple[Any, ...]) -> str:
    kind, name, args, child_id = issue
    what = kind if name is None else f"{kind} {name!r}"
    if args:
        what += f" with arguments {args!r}"
    if child_id is not None:
        what += f" as child {child_id!r}"
    return what


def _ending(report: RunReport) -> tuple[Any, ...]:
    error = report.error
    failed = None if error is None else (error.type, error.message)
    return (report.status, report.result, failed)


def _outcome(report: RunReport) -> str:
    if report.error is not None:
        return f"{report.status} with {report.error.type}: {report.error.message}"
    return f"{report.status} with {report.result!r}"


def _runs(events: Mapping[str, Sequence[RunEvent]]) -> dict[str, WorkflowRun]:
    runs = {}
    for run_id, stream in events.items():
        run: Any = None
        for event in stream:
            run = event.mutate(run)
        if isinstance(run, WorkflowRun):
            runs[run_id] = run
    return runs
