"""Errors of a workflow run's history.

Each error is built from its data (its ``__init__`` arguments are exactly what
``args`` holds), so it pickles and travels between actors and processes; the message
is derived from that data, names the workflow id, and says what to do. Each also
subclasses the built-in a caller would catch (``ValueError``, ``LookupError``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from journal import ChronikError

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
    def __init__(self, workflow_id: object, problem: str) -> None:
        super().__init__(workflow_id, problem)
        self.workflow_id = workflow_id
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"workflow id {self.workflow_id!r} {self.problem}; "
            "pass a non-empty str such as 'order-o-1'"
        )


class TimeArgumentError(RunError, ValueError):
    """A time argument that is not a timezone-aware datetime."""

    def __init__(self, workflow_id: str, argument: str, value: object) -> None:
        super().__init__(workflow_id, argument, value)
        self.workflow_id = workflow_id
        self.argument = argument
        self.value = value

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

    def __init__(self, workflow_id: str, status: RunStatus, action: str) -> None:
        super().__init__(workflow_id, status, action)
        self.workflow_id = workflow_id
        self.status = status
        self.action = action

    def __str__(self) -> str:
        return (
            f"cannot {self.action}: workflow run {self.workflow_id!r} is already "
            f"{self.status}, and a finished run's history is final; start a new run "
            "(with a new id) to do more"
        )


class SeqOutOfOrderError(RunError, ValueError):
    """A new command at a seq other than the run's next one."""

    def __init__(self, workflow_id: str, seq: int, expected: int) -> None:
        super().__init__(workflow_id, seq, expected)
        self.workflow_id = workflow_id
        self.seq = seq
        self.expected = expected

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} issues its next command at seq "
            f"{self.expected}, not at seq {self.seq}; commands are numbered 1, 2, "
            "3, ... in the order the workflow code issues them, with no gaps"
        )


class UnknownSeqError(RunError, LookupError):
    """An outcome or a lookup for a seq at which no command was issued."""

    def __init__(self, workflow_id: str, seq: int, next_seq: int) -> None:
        super().__init__(workflow_id, seq, next_seq)
        self.workflow_id = workflow_id
        self.seq = seq
        self.next_seq = next_seq

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

    def __init__(
        self, workflow_id: str, seq: int, expected: CommandKind, found: Command
    ) -> None:
        super().__init__(workflow_id, seq, expected, found)
        self.workflow_id = workflow_id
        self.seq = seq
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} holds {self.found} at seq {self.seq}, "
            f"not a {self.expected}; pass the seq at which the {self.expected} "
            "was issued"
        )


class OutcomeAlreadyRecordedError(RunError, ValueError):
    """A second outcome for one command: each outcome is recorded exactly once."""

    def __init__(self, workflow_id: str, seq: int, command: Command) -> None:
        super().__init__(workflow_id, seq, command)
        self.workflow_id = workflow_id
        self.seq = seq
        self.command = command

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} already recorded the outcome of "
            f"{self.command} at seq {self.seq}; an outcome is recorded exactly once, "
            "so drop this duplicate (a retried or re-delivered result)"
        )


class AttemptOrderError(RunError, ValueError):
    """A failed step attempt numbered at or below one already recorded."""

    def __init__(
        self, workflow_id: str, seq: int, attempt: int, last_attempt: int
    ) -> None:
        super().__init__(workflow_id, seq, attempt, last_attempt)
        self.workflow_id = workflow_id
        self.seq = seq
        self.attempt = attempt
        self.last_attempt = last_attempt

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: attempt {self.attempt} of the step at "
            f"seq {self.seq} is not after the last recorded attempt "
            f"{self.last_attempt}; attempts count up from 1"
        )


class SignalNotPendingError(RunError, LookupError):
    """A receive consumed a signal, but none is pending on its topic."""

    def __init__(self, workflow_id: str, seq: int, topic: str) -> None:
        super().__init__(workflow_id, seq, topic)
        self.workflow_id = workflow_id
        self.seq = seq
        self.topic = topic

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} has no pending signal on topic "
            f"{self.topic!r} for the receive at seq {self.seq}; consume only after "
            "a signal on that topic was received"
        )


class SignalIdConflictError(RunError, ValueError):
    """A signal id reused for another topic."""

    def __init__(
        self, workflow_id: str, signal_id: str, recorded_topic: str, topic: str
    ) -> None:
        super().__init__(workflow_id, signal_id, recorded_topic, topic)
        self.workflow_id = workflow_id
        self.signal_id = signal_id
        self.recorded_topic = recorded_topic
        self.topic = topic

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} already received signal "
            f"{self.signal_id!r} on topic {self.recorded_topic!r}, not on topic "
            f"{self.topic!r}; a signal id names one delivery: give each signal a "
            "fresh id, and reuse an id only to re-send the same signal"
        )


class NoTimeoutError(RunError, ValueError):
    """A time-out for a receive that waits without a deadline."""

    def __init__(self, workflow_id: str, seq: int, topic: str) -> None:
        super().__init__(workflow_id, seq, topic)
        self.workflow_id = workflow_id
        self.seq = seq
        self.topic = topic

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: the receive at seq {self.seq} (topic "
            f"{self.topic!r}) has no timeout, so it cannot time out; only the "
            "deadlines in pending_timers fire"
        )


class ValueTypeError(RunError, TypeError):
    """A recorded now/uuid/random value of the wrong type."""

    def __init__(
        self, workflow_id: str, seq: int, kind: ValueKind, expected: str, found: str
    ) -> None:
        super().__init__(workflow_id, seq, kind, expected, found)
        self.workflow_id = workflow_id
        self.seq = seq
        self.kind = kind
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: the {self.kind} value at seq "
            f"{self.seq} must be {self.expected}, got a {self.found}"
        )


class NonDeterminismError(RunError, RuntimeError):
    """Workflow code asked for something other than what its history holds."""

    def __init__(
        self, workflow_id: str, seq: int, recorded: Command, requested: Command
    ) -> None:
        super().__init__(workflow_id, seq, recorded, requested)
        self.workflow_id = workflow_id
        self.seq = seq
        self.recorded = recorded
        self.requested = requested

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r} is not deterministic at seq {self.seq}: "
            f"its history holds {self.recorded}, but the code now asks for "
            f"{self.requested}. The workflow code changed while this run was in "
            "flight: restore the code it started with, or guard the change with "
            "ctx.patched(...) so old runs keep their old path"
        )


class ErrorInfoFormatError(RunError, ValueError):
    """Stored error data that is not an ``ErrorInfo`` dict."""

    def __init__(self, data: Any, problem: str) -> None:
        super().__init__(data, problem)
        self.data = data
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"error data {self.data!r} {self.problem}; an ErrorInfo dict has the "
            "keys 'type', 'message', 'module' (str) and 'retryable' (bool), as "
            "ErrorInfo.to_dict() makes it"
        )
