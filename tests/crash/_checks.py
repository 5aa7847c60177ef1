"""The crash suite's invariants, checked on the journal's raw events.

Each check returns the problems it found, in words (empty: it holds). They read
every run's stored events, not the aggregate, which would fold a duplicate
away. Shared by the state machine and the SIGKILL driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from actors.testing._audit import exactly_once, read_runs, signals_once
from aggregates import (
    ChildStarted,
    Completed,
    Failed,
    RunEvent,
    SignalAwaited,
    StepCompleted,
    StepScheduled,
    TimerStarted,
)
from tests.crash._model import Command, Ending, ModelRun
from tests.crash._workflows import Effect

__all__ = [
    "Runs",
    "effects_problems",
    "ending_of",
    "ending_problems",
    "journal_problems",
    "read_runs",
]

Runs = Mapping[str, Sequence[RunEvent]]
_ENDS = (Completed, Failed)


def journal_problems(
    runs: Runs, acknowledged: Mapping[str, Iterable[str]]
) -> list[str]:
    """Every seq issued once and ended at most once; every signal received at
    most once and consumed at most once; every acknowledged signal (by run id)
    received; a run ends at most once, with its last event."""
    problems = exactly_once(runs)
    for run_id, events in runs.items():
        problems += _signal_problems(run_id, events, acknowledged.get(run_id, ()))
        ends = [i for i, e in enumerate(events) if isinstance(e, _ENDS)]
        if len(ends) > 1 or (ends and ends[0] != len(events) - 1):
            names = [type(e).__name__ for e in events]
            problems.append(f"run {run_id!r} ended more than once or went on: {names}")
    for run_id in acknowledged:
        if acknowledged[run_id] and run_id not in runs:
            problems.append(f"run {run_id!r} was sent signals but is not in history")
    return problems


def _signal_problems(
    run_id: str, events: Sequence[RunEvent], acknowledged: Iterable[str]
) -> list[str]:
    return [
        f"run {run_id!r}: {problem}"
        for problem in signals_once(events, acknowledged, consumed=())
    ]


def commands_of(events: Sequence[RunEvent]) -> list[Command]:
    """The commands a run issued, by seq, as (seq, kind, name)."""
    commands: list[Command] = []
    for e in events:
        if isinstance(e, StepScheduled):
            commands.append((e.seq, "step", e.name))
        elif isinstance(e, TimerStarted):
            commands.append((e.seq, "timer", None))
        elif isinstance(e, SignalAwaited):
            commands.append((e.seq, "receive", e.topic))
        elif isinstance(e, ChildStarted):
            commands.append((e.seq, "child", e.name))
    return sorted(commands)


def ending_of(events: Sequence[RunEvent]) -> Ending | None:
    """How the run ended as its history says, or None while it runs."""
    for event in events:
        if isinstance(event, Completed):
            return Ending("completed", event.result)
        if isinstance(event, Failed):
            error = event.error
            return Ending("failed", None, error["type"], error["message"])
    return None


def ending_problems(
    run_id: str, events: Sequence[RunEvent], model: ModelRun | None
) -> list[str]:
    """A run that ended in history ended as the model says, with its commands."""
    ending = ending_of(events)
    if ending is None:
        return []
    if model is None:
        return [f"run {run_id!r} ended ({ending}) but the model has no such run"]
    expected = model.ending
    if expected is None:
        return [f"run {run_id!r} ended ({ending}); the model's run has not ended"]
    problems = []
    if not _same_ending(ending, expected):
        problems.append(f"run {run_id!r} ended {ending}; the model says {expected}")
    commands = commands_of(events)
    if commands != model.commands:
        problems.append(
            f"run {run_id!r} issued {commands}; the model issued {model.commands}"
        )
    return problems


def _same_ending(ending: Ending, expected: Ending) -> bool:
    """Equal results; or failures of one type, the message saying what the
    model's says (the failed step and its seq)."""
    if expected.status == "completed":
        return ending == expected
    return (
        ending.status == expected.status
        and ending.error_type == expected.error_type
        and (expected.error_text or "") in (ending.error_text or "")
    )


def effects_problems(runs: Runs, effects: Iterable[Effect]) -> list[str]:
    """Every step body ran under the key of a step its run's history holds,
    with that step's name, and every completed step's body ran."""
    scheduled = {
        f"{run_id}/{e.seq}": e.name
        for run_id, events in runs.items()
        for e in events
        if isinstance(e, StepScheduled)
    }
    effects = list(effects)
    problems = [
        f"step {e.step!r} ran with key {e.key!r}, which history gives "
        f"{scheduled.get(e.key)!r}"
        for e in effects
        if scheduled.get(e.key) != e.step
    ]
    ran = {e.key for e in effects}
    problems += [
        f"step {key!r} is recorded as completed but its body never ran"
        for key in sorted(
            f"{run_id}/{e.seq}"
            for run_id, events in runs.items()
            for e in events
            if isinstance(e, StepCompleted)
        )
        if key not in ran
    ]
    return problems
