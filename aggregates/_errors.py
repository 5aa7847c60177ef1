"""Errors of a workflow run's history.

Each error declares its data as fields on chronik's error base (``chronik_errors``):
its constructor takes exactly those fields and ``args`` holds them, so it pickles and
travels between actors and processes; the message is derived from that data, names
the workflow id, and says what to do. Each also subclasses the built-in a caller
would catch (``ValueError``, ``LookupError``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from chronik_errors import ChronikError

if TYPE_CHECKING:
    from aggregates._kinds import CommandKind, RunStatus, ValueKind
    from aggregates._records import Command

__all__ = [
    "AttemptOrderError",
    "ErrorInfoFormatError",
    "NoTimeoutError",
    "NonDeterminismError",
    "OutcomeAlreadyRecordedError",
    "RunError",
    "RunFinishedError",
    "SeqOutOfOrderError",
    "SignalIdConflictError",
    "SignalNotPendingError",
    "TimeArgumentError",
    "UnknownSeqError",
    "ValueTypeError",
    "WorkflowIdError",
    "WrongCommandKindError",
]


class RunError(ChronikError):
    """A command that a workflow run's history cannot accept, or a replay mismatch."""


class WorkflowIdError(RunError, ValueError):
    workflow_id: object
    problem: str
    template = (
        "workflow id {workflow_id!r} {problem}; "
        "pass a non-empty str such as 'order-o-1'"
    )


class TimeArgumentError(RunError, ValueError):
    """A time argument that is not a timezone-aware datetime."""

    workflow_id: str
    argument: str
    value: object

    def __str__(self) -> str:
        problem = (
            "is a naive datetime"
            if isinstance(self.value, datetime)
            else f"is a {type(self.value).__name__}, not a datetime"
        )
        return (
            f"workflow {self.workflow_id!r}: {self.argument}={self.value!r} "
            f"{problem}; pass a timezone-aware datetime, e.g. "
            "datetime.now(timezone.utc) from the runtime's clock"
        )


class RunFinishedError(RunError, RuntimeError):
    """A change to a run that already completed, failed or was cancelled."""

    workflow_id: str
    status: RunStatus
    action: str
    template = (
        "cannot {action}: workflow run {workflow_id!r} is already "
        "{status}, and a finished run's history is final; start a new run "
        "(with a new id) to do more"
    )


class SeqOutOfOrderError(RunError, ValueError):
    """A new command at a seq other than the run's next one."""

    workflow_id: str
    seq: int
    expected: int
    template = (
        "workflow {workflow_id!r} issues its next command at seq "
        "{expected}, not at seq {seq}; commands are numbered 1, 2, "
        "3, ... in the order the workflow code issues them, with no gaps"
    )


class UnknownSeqError(RunError, LookupError):
    """An outcome or a lookup for a seq at which no command was issued."""

    workflow_id: str
    seq: int
    next_seq: int

    def __str__(self) -> str:
        issued = (
            "no command was issued yet"
            if self.next_seq == 1
            else f"commands were issued at seqs 1..{self.next_seq - 1}"
        )
        return (
            f"workflow {self.workflow_id!r} has no command at seq {self.seq} "
            f"({issued}); record an outcome only for a seq that was scheduled"
        )


class WrongCommandKindError(RunError, ValueError):
    """An outcome for a seq whose command is of another kind."""

    workflow_id: str
    seq: int
    expected: CommandKind
    found: Command
    template = (
        "workflow {workflow_id!r} holds {found} at seq {seq}, "
        "not a {expected}; pass the seq at which the {expected} "
        "was issued"
    )


class OutcomeAlreadyRecordedError(RunError, ValueError):
    """A second outcome for one command: each outcome is recorded exactly once."""

    workflow_id: str
    seq: int
    command: Command
    template = (
        "workflow {workflow_id!r} already recorded the outcome of "
        "{command} at seq {seq}; an outcome is recorded exactly once, "
        "so drop this duplicate (a retried or re-delivered result)"
    )


class AttemptOrderError(RunError, ValueError):
    """A failed step attempt numbered at or below one already recorded."""

    workflow_id: str
    seq: int
    attempt: int
    last_attempt: int
    template = (
        "workflow {workflow_id!r}: attempt {attempt} of the step at "
        "seq {seq} is not after the last recorded attempt "
        "{last_attempt}; attempts count up from 1"
    )


class SignalNotPendingError(RunError, LookupError):
    """A receive consumed a signal, but none is pending on its topic."""

    workflow_id: str
    seq: int
    topic: str
    template = (
        "workflow {workflow_id!r} has no pending signal on topic "
        "{topic!r} for the receive at seq {seq}; consume only after "
        "a signal on that topic was received"
    )


class SignalIdConflictError(RunError, ValueError):
    """A signal id reused for another topic."""

    workflow_id: str
    signal_id: str
    recorded_topic: str
    topic: str
    template = (
        "workflow {workflow_id!r} already received signal "
        "{signal_id!r} on topic {recorded_topic!r}, not on topic "
        "{topic!r}; a signal id names one delivery: give each signal a "
        "fresh id, and reuse an id only to re-send the same signal"
    )


class NoTimeoutError(RunError, ValueError):
    """A time-out for a receive that waits without a deadline."""

    workflow_id: str
    seq: int
    topic: str
    template = (
        "workflow {workflow_id!r}: the receive at seq {seq} (topic "
        "{topic!r}) has no timeout, so it cannot time out; only the "
        "deadlines in pending_timers fire"
    )


class ValueTypeError(RunError, TypeError):
    """A recorded now/uuid/random value of the wrong type."""

    workflow_id: str
    seq: int
    kind: ValueKind
    expected: str
    found: str
    template = (
        "workflow {workflow_id!r}: the {kind} value at seq "
        "{seq} must be {expected}, got a {found}"
    )


class NonDeterminismError(RunError, RuntimeError):
    """Workflow code asked for something other than what its history holds."""

    workflow_id: str
    seq: int
    recorded: Command
    requested: Command
    template = (
        "workflow {workflow_id!r} is not deterministic at seq {seq}: "
        "its history holds {recorded}, but the code now asks for "
        "{requested}. The workflow code changed while this run was in "
        "flight: restore the code it started with, or guard the change with "
        "ctx.patched(...) so old runs keep their old path"
    )


class ErrorInfoFormatError(RunError, ValueError):
    """Stored error data that is not an ``ErrorInfo`` dict."""

    data: Any
    problem: str
    template = (
        "error data {data!r} {problem}; an ErrorInfo dict has the "
        "keys 'type', 'message', 'module' (str) and 'retryable' (bool), as "
        "ErrorInfo.to_dict() makes it"
    )
