"""Errors of the runtime.

Each error is built from its data (its ``__init__`` arguments are exactly what
``args`` holds), so it pickles; its message names the workflow id or definition and
says what to do. Each subclasses the built-in a caller would catch.
"""

from __future__ import annotations

from typing import Literal

import attrs

from aggregates import Command, ErrorInfo, RunStatus
from journal import ChronikError

__all__ = [
    "ActorError",
    "ChildFailedError",
    "ContextError",
    "DefinitionError",
    "DuplicateActorError",
    "DurationError",
    "NonDeterministicEndError",
    "QueryError",
    "ReceiveTimeoutError",
    "ResultTimeoutError",
    "RunCancelledError",
    "RunConflictError",
    "RunEnd",
    "RunUnavailableError",
    "StepFailed",
    "StepTimeoutError",
    "SystemClosedError",
    "SystemFailedError",
    "UnknownActorError",
    "UnknownQueryError",
    "UnknownRunError",
    "UnknownWorkflowError",
    "WorkflowCancelled",
    "WorkflowFailedError",
]


class ActorError(ChronikError):
    """Root of the runtime's errors."""


class DefinitionError(ActorError, TypeError):
    """A workflow, step or retry policy that cannot be used: every problem at once."""

    def __init__(self, target: str, problems: tuple[str, ...]) -> None:
        super().__init__(target, problems)
        self.target = target
        self.problems = problems

    def __str__(self) -> str:
        listed = "".join(f"\n  - {problem}" for problem in self.problems)
        return f"{self.target} is not a valid definition:{listed}"


class DurationError(ActorError, ValueError):
    def __init__(self, value: object, problem: str) -> None:
        super().__init__(value, problem)
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"duration {self.value!r} {self.problem}; pass seconds >= 0 (int or "
            "float), a timedelta, or a string such as '30s', '15m', '24h', '7d'"
        )


class ContextError(ActorError, RuntimeError):
    """A workflow context (or activity.info) used where it does not belong."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(what, problem)
        self.what = what
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.what} {self.problem}"


class StepFailed(ActorError, RuntimeError):
    """Raised inside a workflow when a step exhausted its retries."""

    def __init__(
        self, workflow_id: str, seq: int, step: str, error: ErrorInfo, attempts: int
    ) -> None:
        super().__init__(workflow_id, seq, step, error, attempts)
        self.workflow_id = workflow_id
        self.seq = seq
        self.step = step
        self.error = error
        self.attempts = attempts

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: step {self.step!r} at seq {self.seq} "
            f"failed after {self.attempts} attempt(s): {self.error}"
        )


class ReceiveTimeoutError(ActorError, TimeoutError):
    """Raised inside a workflow when ``ctx.receive(topic, timeout=)`` timed out."""

    def __init__(self, workflow_id: str, seq: int, topic: str) -> None:
        super().__init__(workflow_id, seq, topic)
        self.workflow_id = workflow_id
        self.seq = seq
        self.topic = topic

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: no signal on topic {self.topic!r} "
            f"arrived before the deadline of the receive at seq {self.seq}"
        )


class WorkflowFailedError(ActorError, RuntimeError):
    """``ref.result()`` of a run that failed; ``error`` is what history recorded."""

    def __init__(self, workflow_id: str, error: ErrorInfo) -> None:
        super().__init__(workflow_id, error)
        self.workflow_id = workflow_id
        self.error = error

    def __str__(self) -> str:
        return f"workflow run {self.workflow_id!r} failed: {self.error}"


class RunConflictError(ActorError, ValueError):
    """A spawn reusing a run's id with another workflow or other arguments."""

    def __init__(self, workflow_id: str, recorded: str, requested: str) -> None:
        super().__init__(workflow_id, recorded, requested)
        self.workflow_id = workflow_id
        self.recorded = recorded
        self.requested = requested

    def __str__(self) -> str:
        return (
            f"workflow id {self.workflow_id!r} already names the run {self.recorded}, "
            f"not {self.requested}; the id is an idempotency key: spawn with the "
            "same workflow and arguments to get that run, or pick a new id"
        )


class UnknownRunError(ActorError, LookupError):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(workflow_id)
        self.workflow_id = workflow_id

    def __str__(self) -> str:
        return (
            f"no workflow run has id {self.workflow_id!r} in this journal; "
            "spawn it first, or check the id"
        )


class UnknownWorkflowError(ActorError, LookupError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name = name
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"no workflow is named {self.name!r} ({self.problem}); import the module "
            "that defines it with @workflow, or spawn it as 'package.module:function'"
        )


class RunUnavailableError(ActorError, RuntimeError):
    """The actor of a run stopped on an error; the run resumes on the next open."""

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"workflow run {self.workflow_id!r} is not running in this system: "
            f"{self.reason}. Its history is intact; open the journal again to "
            "resume it"
        )


class DuplicateActorError(ActorError, ValueError):
    """A service or plain actor of that name already runs in the system."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"an actor or service named {self.name!r} already runs in this system; "
            f"use system.actor({self.name!r}) to reach it, or pick another name"
        )


class UnknownActorError(ActorError, LookupError):
    """No service or plain actor of that name in the system."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(name, known)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return (
            f"no actor or service named {self.name!r} in this system (it has "
            f"{list(self.known)}); start it with system.service(...) or "
            "system.spawn_actor(...)"
        )


class SystemClosedError(ActorError, RuntimeError):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"the actor system on {self.path!r} is closed; open it again to use it"


class SystemFailedError(SystemClosedError):
    """The system stopped itself: a failure escalated to the root of its
    supervision tree (``cause``, also this error's ``__cause__``)."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(path)
        self.args = (path, cause)  # pickles as its constructor's arguments
        self.cause = cause

    def __str__(self) -> str:
        return (
            f"the actor system on {self.path!r} stopped after a failure escalated to "
            f"the root of its supervision tree: {self.cause}. Fix the cause (see the "
            "log), then open the journal again: unfinished runs resume by replay"
        )


class StepTimeoutError(ActorError, TimeoutError):
    """A step ran out of time: ``kind`` says which timeout.

    ``"start_to_close"``: one attempt ran past ``timeout`` seconds; the retry policy
    decides whether another attempt follows. ``"schedule_to_close"``: the whole
    step (every attempt and the retry delays between them) used up its ``timeout``
    seconds, which is final; ``cause`` is then the failure of the last attempt when
    the next retry could not fit, or None when an attempt was cut short.
    """

    def __init__(
        self,
        step: str,
        timeout: float,
        kind: Literal["start_to_close", "schedule_to_close"] = "start_to_close",
        cause: str | None = None,
    ) -> None:
        super().__init__(step, timeout, kind, cause)
        self.step = step
        self.timeout = timeout
        self.kind = kind
        self.cause = cause

    def __str__(self) -> str:
        if self.kind == "start_to_close":
            return (
                f"an attempt of step {self.step!r} ran past its start-to-close "
                f"timeout of {self.timeout} s; raise start_to_close or make the "
                "step faster"
            )
        after = (
            ""
            if self.cause is None
            else f" after its last attempt failed with {self.cause}"
        )
        return (
            f"step {self.step!r} used up its schedule-to-close timeout of "
            f"{self.timeout} s (every attempt and the retry delays between them)"
            f"{after}; raise schedule_to_close, or allow fewer attempts or "
            "shorter delays in the retry policy"
        )


class ResultTimeoutError(ActorError, TimeoutError):
    def __init__(self, workflow_id: str, timeout: float | None) -> None:
        super().__init__(workflow_id, timeout)
        self.workflow_id = workflow_id
        self.timeout = timeout

    def __str__(self) -> str:
        return (
            f"workflow run {self.workflow_id!r} did not finish within "
            f"{self.timeout} s; it goes on running: call result() again to wait more"
        )


class WorkflowCancelled(ChronikError):
    """Thrown into a workflow at its current ``await`` when ``ref.cancel()`` asks.

    The workflow may catch it to compensate (a saga) and then return or re-raise;
    if it escapes, the run ends ``cancelled``.
    """

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return f"workflow run {self.workflow_id!r} was asked to cancel: {self.reason}"


class RunCancelledError(ChronikError, RuntimeError):
    """``ref.result()`` of a run that ended cancelled."""

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return f"workflow run {self.workflow_id!r} was cancelled: {self.reason}"


class ChildFailedError(ChronikError, RuntimeError):
    """Raised in a parent workflow that awaited a child run which failed or was
    cancelled; ``error`` is what the child's history recorded."""

    def __init__(
        self, workflow_id: str, seq: int, child_id: str, error: ErrorInfo
    ) -> None:
        super().__init__(workflow_id, seq, child_id, error)
        self.workflow_id = workflow_id
        self.seq = seq
        self.child_id = child_id
        self.error = error

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: child run {self.child_id!r} started at "
            f"seq {self.seq} did not complete: {self.error}"
        )


class UnknownQueryError(ChronikError, LookupError):
    def __init__(self, workflow_id: str, name: str, known: tuple[str, ...]) -> None:
        super().__init__(workflow_id, name, known)
        self.workflow_id = workflow_id
        self.name = name
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(repr(name) for name in self.known) or "none"
        return (
            f"workflow run {self.workflow_id!r} has no query {self.name!r} "
            f"(its queries: {known}); the workflow registers queries with "
            "ctx.set_query(name, fn)"
        )


class QueryError(ChronikError, RuntimeError):
    """A query handler raised; ``error`` describes what it raised."""

    def __init__(self, workflow_id: str, name: str, error: ErrorInfo) -> None:
        super().__init__(workflow_id, name, error)
        self.workflow_id = workflow_id
        self.name = name
        self.error = error

    def __str__(self) -> str:
        run = self.workflow_id
        return f"query {self.name!r} of workflow run {run!r} raised {self.error}"


@attrs.frozen
class RunEnd:
    """Where a run ends: in history, or in the code replaying it."""

    status: RunStatus
    error: ErrorInfo | None = None  # why a failed run failed

    def __str__(self) -> str:
        if self.error is None:
            return f"the end of the run ({self.status})"
        return f"the end of the run ({self.status}: {self.error})"


class NonDeterministicEndError(ActorError, RuntimeError):
    """Workflow code ends where its history goes on, or goes on (or waits) where
    its finished history ends. ``requested`` is ``None`` when the code waits."""

    def __init__(
        self,
        workflow_id: str,
        seq: int,
        recorded: Command | RunEnd,
        requested: Command | RunEnd | None,
    ) -> None:
        super().__init__(workflow_id, seq, recorded, requested)
        self.workflow_id = workflow_id
        self.seq = seq
        self.recorded = recorded
        self.requested = requested

    def __str__(self) -> str:
        asks = (
            "waits for an outcome its history does not hold"
            if self.requested is None
            else f"asks for {self.requested}"
        )
        return (
            f"workflow {self.workflow_id!r} is not deterministic at seq {self.seq}: "
            f"its history holds {self.recorded}, but the code now {asks}. The "
            "workflow code changed since this run was recorded: restore the code "
            "it ran with, or guard the change with ctx.patched(...) so that runs "
            "recorded before it keep their old path"
        )
