"""Errors of the runtime.

Each error declares its data as fields on chronik's error base (``chronik_errors``):
its constructor takes exactly those fields and ``args`` holds them, so it pickles;
its message names the workflow id or definition and says what to do. Each
subclasses the built-in a caller would catch.
"""

from __future__ import annotations

from typing import Literal

import attrs

from aggregates import Command, ErrorInfo, RunStatus
from chronik_errors import ChronikError

__all__ = [
    "ActorError",
    "ChildFailedError",
    "ClockJumpError",
    "ContextError",
    "DefinitionError",
    "DuplicateActorError",
    "DurationError",
    "GuardSettingError",
    "NonDeterministicEndError",
    "NondeterministicCallError",
    "QueryError",
    "ReceiveTimeoutError",
    "ResultTimeoutError",
    "RunCancelledError",
    "RunConflictError",
    "RunEnd",
    "RunUnavailableError",
    "SinkUnavailableError",
    "StepFailed",
    "StepTimeoutError",
    "SystemClosedError",
    "SystemFailedError",
    "UnawaitedCommandError",
    "UnknownActorError",
    "UnknownQueryError",
    "UnknownRunError",
    "UnknownWorkflowError",
    "WebhookRefusedError",
    "WorkflowCancelled",
    "WorkflowFailedError",
]


class ActorError(ChronikError):
    """Root of the runtime's errors."""


class DefinitionError(ActorError, TypeError):
    """A workflow, step or retry policy that cannot be used: every problem at once."""

    target: str
    problems: tuple[str, ...]

    def __str__(self) -> str:
        listed = "".join(f"\n  - {problem}" for problem in self.problems)
        return f"{self.target} is not a valid definition:{listed}"


class DurationError(ActorError, ValueError):
    value: object
    problem: str
    template = (
        "duration {value!r} {problem}; pass seconds >= 0 (int or "
        "float), a timedelta, or a string such as '30s', '15m', '24h', '7d'"
    )


class ContextError(ActorError, RuntimeError):
    """A workflow context (or activity.info) used where it does not belong."""

    what: str
    problem: str
    template = "{what} {problem}"


class StepFailed(ActorError, RuntimeError):
    """Raised inside a workflow when a step exhausted its retries."""

    workflow_id: str
    seq: int
    step: str
    error: ErrorInfo
    attempts: int
    template = (
        "workflow {workflow_id!r}: step {step!r} at seq {seq} "
        "failed after {attempts} attempt(s): {error}"
    )


class ReceiveTimeoutError(ActorError, TimeoutError):
    """Raised inside a workflow when ``ctx.receive(topic, timeout=)`` timed out."""

    workflow_id: str
    seq: int
    topic: str
    template = (
        "workflow {workflow_id!r}: no signal on topic {topic!r} "
        "arrived before the deadline of the receive at seq {seq}"
    )


class WorkflowFailedError(ActorError, RuntimeError):
    """``ref.result()`` of a run that failed; ``error`` is what history recorded."""

    workflow_id: str
    error: ErrorInfo
    template = "workflow run {workflow_id!r} failed: {error}"


class RunConflictError(ActorError, ValueError):
    """A spawn reusing a run's id with another workflow or other arguments."""

    workflow_id: str
    recorded: str
    requested: str
    template = (
        "workflow id {workflow_id!r} already names the run {recorded}, "
        "not {requested}; the id is an idempotency key: spawn with the "
        "same workflow and arguments to get that run, or pick a new id"
    )


class UnknownRunError(ActorError, LookupError):
    workflow_id: str
    template = (
        "no workflow run has id {workflow_id!r} in this journal; "
        "spawn it first, or check the id"
    )


class UnknownWorkflowError(ActorError, LookupError):
    name: str
    problem: str
    template = (
        "no workflow is named {name!r} ({problem}); import the module "
        "that defines it with @workflow, or spawn it as 'package.module:function'"
    )


class RunUnavailableError(ActorError, RuntimeError):
    """The actor of a run stopped on an error; the run resumes on the next open."""

    workflow_id: str
    reason: str
    template = (
        "workflow run {workflow_id!r} is not running in this system: "
        "{reason}. Its history is intact; open the journal again to "
        "resume it"
    )


class PartitionLostError(ActorError, RuntimeError):
    """A run's actor tried to commit in a partition this host no longer holds."""

    workflow_id: str
    partition: int
    template = (
        "this host no longer holds partition {partition}, which run "
        "{workflow_id!r} belongs to: another host drives it now (nothing was "
        "written)"
    )


class DuplicateActorError(ActorError, ValueError):
    """A service or plain actor of that name already runs in the system."""

    name: str
    template = (
        "an actor or service named {name!r} already runs in this system; "
        "use system.actor({name!r}) to reach it, or pick another name"
    )


class UnknownActorError(ActorError, LookupError):
    """No service or plain actor of that name in the system."""

    name: str
    known: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"no actor or service named {self.name!r} in this system (it has "
            f"{list(self.known)}); start it with system.service(...) or "
            "system.spawn_actor(...)"
        )


class SinkUnavailableError(ActorError, ConnectionError):
    """An outbox sink cannot reach its server now (not a refusal of the message):
    the relay keeps the message and tries again later, never dead-letters it."""

    sink: str
    reason: str
    template = "outbox sink {sink!r} cannot reach its server: {reason}"


class WebhookRefusedError(ActorError, RuntimeError):
    """A webhook's receiver refused a message: it answered with a status that
    is neither success nor "not now" (a 4xx other than 408, 425 and 429, or a
    3xx); ``body`` is the start of its answer. The relay tries the message
    again, then dead-letters it."""

    sink: str
    status: int
    body: str
    template = (
        "outbox sink {sink!r}: the receiver refused the message with HTTP "
        "status {status} (answer: {body!r}); fix the receiver or the message, "
        "then hand the dead letter again with Relay.retry(message_id)"
    )


class SystemClosedError(ActorError, RuntimeError):
    path: str
    template = "the actor system on {path!r} is closed; open it again to use it"


class SystemFailedError(SystemClosedError):
    """The system stopped itself: a failure escalated to the root of its
    supervision tree (``cause``, also this error's ``__cause__``)."""

    cause: str
    template = (
        "the actor system on {path!r} stopped after a failure escalated to "
        "the root of its supervision tree: {cause}. Fix the cause (see the "
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

    step: str
    timeout: float
    kind: Literal["start_to_close", "schedule_to_close"] = "start_to_close"
    cause: str | None = None

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
    workflow_id: str
    timeout: float | None
    template = (
        "workflow run {workflow_id!r} did not finish within "
        "{timeout} s; it goes on running: call result() again to wait more"
    )


class WorkflowCancelled(ChronikError):
    """Thrown into a workflow at its current ``await`` when ``ref.cancel()`` asks.

    The workflow may catch it to compensate (a saga) and then return or re-raise;
    if it escapes, the run ends ``cancelled``.
    """

    workflow_id: str
    reason: str
    template = "workflow run {workflow_id!r} was asked to cancel: {reason}"


class RunCancelledError(ChronikError, RuntimeError):
    """``ref.result()`` of a run that ended cancelled."""

    workflow_id: str
    reason: str
    template = "workflow run {workflow_id!r} was cancelled: {reason}"


class ChildFailedError(ChronikError, RuntimeError):
    """Raised in a parent workflow that awaited a child run which failed or was
    cancelled; ``error`` is what the child's history recorded."""

    workflow_id: str
    seq: int
    child_id: str
    error: ErrorInfo
    template = (
        "workflow {workflow_id!r}: child run {child_id!r} started at "
        "seq {seq} did not complete: {error}"
    )


class UnknownQueryError(ChronikError, LookupError):
    workflow_id: str
    name: str
    known: tuple[str, ...]

    def __str__(self) -> str:
        known = ", ".join(repr(name) for name in self.known) or "none"
        return (
            f"workflow run {self.workflow_id!r} has no query {self.name!r} "
            f"(its queries: {known}); the workflow registers queries with "
            "ctx.set_query(name, fn)"
        )


class QueryError(ChronikError, RuntimeError):
    """A query handler raised; ``error`` describes what it raised."""

    workflow_id: str
    name: str
    error: ErrorInfo
    template = "query {name!r} of workflow run {workflow_id!r} raised {error}"


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

    workflow_id: str
    seq: int
    recorded: Command | RunEnd
    requested: Command | RunEnd | None

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


class UnawaitedCommandError(ActorError, TypeError):
    """Workflow code made a command (``ctx.call``, ``ctx.sleep``, ...) and ended
    without awaiting it, so it never ran. ``raised`` is what the code raised
    instead of returning, if it raised."""

    workflow_id: str
    command: str
    location: str
    raised: str | None = None

    def __str__(self) -> str:
        ended = (
            "returned"
            if self.raised is None
            else f"raised {self.raised} before awaiting it"
        )
        return (
            f"workflow {self.workflow_id!r} made {self.command} at {self.location} "
            f"and never awaited it, so it never ran (the code {ended}); write "
            "`await` before it, or pass it to an awaited ctx.gather(...)"
        )


class NondeterministicCallError(ActorError, RuntimeError):
    """Workflow code called something that a replay cannot repeat (the clock,
    randomness, blocking I/O, a thread): ``fix`` says what to call instead."""

    workflow_id: str
    call: str
    fix: str
    location: str
    template = (
        "workflow {workflow_id!r} called {call} at {location} while its code ran; "
        "a replay of the run would not get the same: {fix}. If the workflow "
        "must, allow it with @workflow(allow=({call!r},)) or @workflow(guard='warn')"
    )


class GuardSettingError(ActorError, ValueError):
    """A bad ``guard=`` or ``allow=`` of ``@workflow``."""

    setting: str
    value: object
    choices: tuple[str, ...]

    def __str__(self) -> str:
        choices = ", ".join(repr(choice) for choice in self.choices)
        return f"@workflow({self.setting}=...): {self.value!r} is not one of {choices}"


class ClockJumpError(ActorError, RuntimeError):
    """The host's wall clock moved by more than its monotonic clock between two
    lease rounds: leases expire by the wall clock the hosts share, so this host
    skipped the round (it wrote nothing) rather than take or keep leases by a
    clock that jumped."""

    host_id: str
    jump: float
    template = (
        "host {host_id!r}: the wall clock jumped by {jump:+.3f} s against the "
        "monotonic clock since the last lease round; the round was skipped and "
        "nothing was written. Keep the hosts' clocks in step (NTP slews, it does "
        "not jump); the next round goes on from the clock as it is now"
    )
