"""chronik's pure domain: the ``WorkflowRun`` aggregate and its events.

- The aggregate id is the workflow id, a ``str`` (``"order-o-1"``).
- No threads, no I/O, no clocks: every time comes in as ``at=`` and becomes the
  event's timestamp.
- Events and state hold plain data only; an error is an ``ErrorInfo`` stored as a
  dict. A signal id received twice on one topic is a no-op.
- Stored topics name this package (``aggregates:StepScheduled``), so keep these
  names exported here.
"""

from aggregates._error_info import ErrorInfo
from aggregates._errors import (
    AttemptOrderError,
    ErrorInfoFormatError,
    NonDeterminismError,
    NoTimeoutError,
    OutcomeAlreadyRecordedError,
    RunError,
    RunFinishedError,
    SeqOutOfOrderError,
    SignalIdConflictError,
    SignalNotPendingError,
    TimeArgumentError,
    UnknownSeqError,
    ValueTypeError,
    WorkflowIdError,
    WrongCommandKindError,
)
from aggregates._events import (
    Cancelled,
    CancelRequested,
    ChildFinished,
    ChildStarted,
    Completed,
    Failed,
    MessagePublished,
    PatchRecorded,
    ReceiveTimedOut,
    RunEvent,
    SignalAwaited,
    SignalConsumed,
    SignalReceived,
    Started,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    ValueRecorded,
)
from aggregates._kinds import CommandKind, OutcomeKind, RunStatus, ValueKind
from aggregates._records import Command, CommandRecord, Outcome, Signal
from aggregates._run import WorkflowRun, check_message_address, message_id
from aggregates._snapshot import RunSnapshot

__all__ = [
    "AttemptOrderError",
    "CancelRequested",
    "Cancelled",
    "ChildFinished",
    "ChildStarted",
    "Command",
    "CommandKind",
    "CommandRecord",
    "Completed",
    "ErrorInfo",
    "ErrorInfoFormatError",
    "Failed",
    "MessagePublished",
    "NoTimeoutError",
    "NonDeterminismError",
    "Outcome",
    "OutcomeAlreadyRecordedError",
    "OutcomeKind",
    "PatchRecorded",
    "ReceiveTimedOut",
    "RunError",
    "RunEvent",
    "RunFinishedError",
    "RunSnapshot",
    "RunStatus",
    "SeqOutOfOrderError",
    "Signal",
    "SignalAwaited",
    "SignalConsumed",
    "SignalIdConflictError",
    "SignalNotPendingError",
    "SignalReceived",
    "Started",
    "StepCompleted",
    "StepFailed",
    "StepScheduled",
    "TimeArgumentError",
    "TimerFired",
    "TimerStarted",
    "UnknownSeqError",
    "ValueKind",
    "ValueRecorded",
    "ValueTypeError",
    "WorkflowIdError",
    "WorkflowRun",
    "WrongCommandKindError",
    "check_message_address",
    "message_id",
]
