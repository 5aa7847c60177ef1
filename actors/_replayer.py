"""``Replayer``: check recorded histories against the current workflow code.

As Temporal's ``Replayer``: every run's history is replayed through the runtime's
own driver, a ``WorkflowInstance`` (so a replay here and a replay after a restart
can never drift apart), whose effects are dropped: nothing is saved, no timer
starts, no step runs and no child is spawned. It works on an in-memory copy of the
run whose end
(``Completed``, ``Failed``, ``Cancelled``), if any, is taken off, so the code
meets its history exactly as a resumed run would, and ends the run itself.

Then the replay is compared with the history:

- a command other than the recorded one at a seq is the runtime's own
  ``NonDeterminismError``;
- the code asking for a command past the end of a *finished* history, ending the
  run before its history's last command, ending it otherwise (completed, failed,
  cancelled) than history did, or still waiting where history ended, is a
  ``NonDeterministicEndError``;
- past the end of an *unfinished* history the code may ask for anything: the run
  has not got there yet;
- code that, where history holds a run that went on or completed, calls what a
  replay cannot repeat (``NondeterministicCallError``) or ends with a command it
  made and never awaited (``UnawaitedCommandError``): recorded before the
  runtime checked these, the run did what its code did not say. A history that
  recorded the same failure replays fine.

Nothing is written to the journal, which is read through a read-only reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from actors._definitions import WorkflowDefinition, resolve_workflow
from actors._errors import (
    NondeterministicCallError,
    NonDeterministicEndError,
    RunEnd,
    UnawaitedCommandError,
    UnknownWorkflowError,
)
from actors._history_file import History, read_histories
from actors._instance import Start, WorkflowInstance
from actors._system import ActorSystem
from aggregates import (
    Cancelled,
    Command,
    Completed,
    Failed,
    NonDeterminismError,
    RunEvent,
    WorkflowRun,
)
from journal import ConverterLike, MsgpackTranscoder

__all__ = [
    "ReplayReport",
    "ReplayResult",
    "ReplayStatus",
    "Replayer",
]

_ENDS = (Completed, Failed, Cancelled)
_GUARDS = (NondeterministicCallError, UnawaitedCommandError)
_NON_DETERMINISTIC = (NonDeterminismError, NonDeterministicEndError, *_GUARDS)


class ReplayStatus(StrEnum):
    OK = "ok"
    NON_DETERMINISTIC = "non-deterministic"
    ERROR = "error"  # the run could not be replayed: unknown workflow, bad history


@attrs.frozen
class ReplayResult:
    """How one run replayed. ``error`` is a ``NonDeterminismError``, a
    ``NonDeterministicEndError``, a ``NondeterministicCallError`` or an
    ``UnawaitedCommandError`` if non-deterministic, else what kept the run
    from replaying (``UnknownWorkflowError``, ``UnknownRunError``, ...)."""

    workflow_id: str
    workflow: str
    status: ReplayStatus
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status is ReplayStatus.OK

    def check(self) -> None:
        """Raise ``error`` unless the run replayed fine."""
        if self.error is not None and not self.ok:
            raise self.error

    def __str__(self) -> str:
        run = f"{self.workflow_id} ({self.workflow}): {self.status}"
        if self.error is None:
            return run
        if self.status is ReplayStatus.NON_DETERMINISTIC:
            return f"{run}: {self.error}"
        return f"{run}: {type(self.error).__name__}: {self.error}"


@attrs.frozen
class ReplayReport:
    """The results of replaying many runs, in the order they were replayed."""

    results: tuple[ReplayResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failures(self) -> tuple[ReplayResult, ...]:
        return tuple(result for result in self.results if not result.ok)

    def count(self, status: ReplayStatus) -> int:
        return sum(result.status is status for result in self.results)

    def check(self) -> None:
        """Raise the first failed run's error; ``summary()`` lists them all."""
        for result in self.results:
            result.check()

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in ReplayStatus)
        runs = f"{len(self.results)} run{'' if len(self.results) == 1 else 's'}"
        lines = [f"replayed {runs}: {counts}"]
        lines += [f"- {result}" for result in self.failures]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class Replayer:
    """Replays histories against workflow code, writing nothing, running no step.

    ``workflows``: the definitions to replay with, by name; by default every
    run's workflow is resolved by name as the runtime does (the registry, then
    ``module:function`` by import). A run whose workflow is not found is reported
    as an error of that run; the others replay.

    ``converters``: the user types the histories hold, as ``ActorSystem.open``
    takes them (a journal of an open system is read with the system's own).
    """

    def __init__(
        self,
        workflows: Iterable[WorkflowDefinition] | None = None,
        *,
        converters: Iterable[ConverterLike] = (),
    ) -> None:
        self._transcoder = MsgpackTranscoder(converters)
        self._workflows: dict[str, WorkflowDefinition] | None = None
        if workflows is not None:
            self._workflows = {}
            for definition in workflows:
                if not isinstance(definition, WorkflowDefinition):
                    msg = f"Replayer takes @workflow definitions, not {definition!r}"
                    raise TypeError(msg)
                self._workflows[definition.name] = definition

    def replay(self, history: History) -> ReplayResult:
        """Replay one run's history."""
        try:
            definition = self._resolve(history.workflow)
            error = _replay(definition, history, self._transcoder)
        except Exception as failure:  # this run cannot replay; the others may
            return _result(history, ReplayStatus.ERROR, failure)
        if isinstance(error, _NON_DETERMINISTIC):
            return _result(history, ReplayStatus.NON_DETERMINISTIC, error)
        if error is not None:
            return _result(history, ReplayStatus.ERROR, error)
        return _result(history, ReplayStatus.OK)

    def replay_all(self, histories: Iterable[History]) -> ReplayReport:
        return ReplayReport(tuple(self.replay(history) for history in histories))

    def replay_journal(
        self,
        source: ActorSystem | str | os.PathLike[str],
        workflow_ids: Iterable[str] | None = None,
    ) -> ReplayReport:
        """Replay the runs of a journal (a path, or an open system): every run in
        start order, or ``workflow_ids``. The journal is only read, so it may be
        in use by this process or another one meanwhile."""
        results: list[ReplayResult] = []
        converters = self._transcoder.converters
        for workflow_id, history in read_histories(source, workflow_ids, converters):
            if isinstance(history, History):
                results.append(self.replay(history))
            else:
                status = ReplayStatus.ERROR
                results.append(ReplayResult(workflow_id, "?", status, history))
        return ReplayReport(tuple(results))

    def _resolve(self, name: str) -> WorkflowDefinition:
        if self._workflows is None:
            return resolve_workflow(name)
        found = self._workflows.get(name)
        if found is None:
            problem = "it is not among the Replayer's workflows=[...]"
            raise UnknownWorkflowError(name, problem)
        return found


def _result(
    history: History, status: ReplayStatus, error: BaseException | None = None
) -> ReplayResult:
    return ReplayResult(history.workflow_id, history.workflow, status, error)


def _replay(
    definition: WorkflowDefinition, history: History, transcoder: MsgpackTranscoder
) -> BaseException | None:
    """What is wrong with replaying ``history`` with ``definition``, if anything."""
    events = history.events
    recorded = _rebuild(events)
    end = _end(recorded) if recorded.is_finished else None
    run = _rebuild(events[:-1] if isinstance(events[-1], _ENDS) else events)
    env = ReplayEnv(recorded.modified_on, transcoder)
    instance = WorkflowInstance(definition, run, env)
    try:
        instance.activate(Start())  # drives the code as far as history goes
    except Exception as error:  # an engine fault: the run could not replay
        return error
    failure = instance.failure
    if isinstance(failure, NonDeterminismError | NonDeterministicEndError):
        return failure
    if isinstance(failure, _GUARDS) and not _failed_with(end, failure):
        return failure
    return _compare_ends(recorded, end, run, instance.seq)


def _compare_ends(
    recorded: WorkflowRun, end: RunEnd | None, replayed: WorkflowRun, issued: int
) -> NonDeterministicEndError | None:
    """Every recorded command matched its request: do the two runs end alike?

    ``end`` is history's end (``None`` if the run is unfinished); ``issued`` the
    seq of the code's last command.
    """
    last = recorded.next_seq - 1
    at_end: Command | RunEnd | None  # what the code does where history ends
    if replayed.next_seq - 1 > last:  # it asked for more than history holds
        at_end = replayed.command_at(last + 1).command
    elif not replayed.is_finished:  # it waits
        at_end = None
    elif issued < last:  # it ended before history's last command
        held = recorded.command_at(issued + 1).command
        return NonDeterministicEndError(recorded.id, issued + 1, held, _end(replayed))
    else:
        at_end = _end(replayed)
        if end is not None and end.status is at_end.status:
            return None
    if end is None:
        return None  # the run has not got this far yet: the code may go on
    return NonDeterministicEndError(recorded.id, last + 1, end, at_end)


def _failed_with(end: RunEnd | None, error: BaseException) -> bool:
    """Whether history's end is a failure with ``error``'s type."""
    return (
        end is not None
        and end.error is not None
        and end.error.type == type(error).__qualname__
    )


def _rebuild(events: Iterable[RunEvent]) -> WorkflowRun:
    run: Any = None
    for event in events:
        run = event.mutate(run)
    if not isinstance(run, WorkflowRun):
        msg = f"the history's events make a {type(run).__name__}, not a WorkflowRun"
        raise TypeError(msg)
    return run


def _end(run: WorkflowRun) -> RunEnd:
    return RunEnd(run.status, run.error)


class ReplayEnv:
    """The world as a replay sees it: time stands still at history's last event,
    and every child the code spawns exists (its history replays on its own)."""

    def __init__(self, now: datetime, transcoder: MsgpackTranscoder) -> None:
        self._now = now
        self._transcoder = transcoder

    def now(self) -> datetime:
        return self._now

    def check_encodable(self, value: Any) -> None:
        self._transcoder.encode(value)  # as live: the code may rely on the error

    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        return None
