"""chronik's runtime: durable workflows as event-sourced actors.

``ActorSystem.open(path)`` opens a journal and resumes every unfinished run;
``@workflow`` and ``@activity`` define what runs.
"""

from actors._audit import (
    Audit,
    AuditReport,
    Follow,
    LogEntry,
    RunSummary,
    VerifyStage,
    VersionOutOfRangeError,
)
from actors._client import Client
from actors._clock import Clock, ManualClock, SystemClock
from actors._context import WorkflowContext
from actors._definitions import (
    ActivityDefinition,
    WorkflowDefinition,
    activity,
    workflow,
)
from actors._errors import (
    ActorError,
    ChildFailedError,
    ClockJumpError,
    ContextError,
    DefinitionError,
    DuplicateActorError,
    DurationError,
    GuardSettingError,
    NondeterministicCallError,
    NonDeterministicEndError,
    QueryError,
    ReceiveTimeoutError,
    ResultTimeoutError,
    RunCancelledError,
    RunConflictError,
    RunEnd,
    RunUnavailableError,
    SinkUnavailableError,
    StepFailed,
    StepTimeoutError,
    SystemClosedError,
    SystemFailedError,
    UnawaitedCommandError,
    UnknownActorError,
    UnknownQueryError,
    UnknownRunError,
    UnknownWorkflowError,
    WebhookRefusedError,
    WorkflowCancelled,
    WorkflowFailedError,
)
from actors._history_file import (
    History,
    HistoryFormatError,
    export_histories,
    export_history,
    load_history,
    write_history,
)
from actors._info import ActivityInfo
from actors._logs import LOG_FORMAT, RunContextFilter
from actors._metrics import SystemStats
from actors._outbox import DeadLetter, OutboxMessage, Relay, Sink
from actors._plain import Actor
from actors._ref import RunRef
from actors._replayer import (
    Replayer,
    ReplayReport,
    ReplayResult,
    ReplayStatus,
)
from actors._retry import RetryPolicy
from actors._saga import Saga
from actors._sink_nats import NatsJetStreamSink
from actors._sink_rabbitmq import RabbitMQSink
from actors._sink_webhook import WebhookSink
from actors._sinks import RedisStreamSink
from actors._system import ActorSystem
from aggregates import NonDeterminismError, RunStatus
from journal import Converter, converter_for

__all__ = [
    "LOG_FORMAT",
    "ActivityDefinition",
    "ActivityInfo",
    "Actor",
    "ActorError",
    "ActorSystem",
    "Audit",
    "AuditReport",
    "ChildFailedError",
    "Client",
    "Clock",
    "ClockJumpError",
    "ContextError",
    "Converter",
    "DeadLetter",
    "DefinitionError",
    "DuplicateActorError",
    "DurationError",
    "Follow",
    "GuardSettingError",
    "History",
    "HistoryFormatError",
    "LogEntry",
    "ManualClock",
    "NatsJetStreamSink",
    "NonDeterminismError",
    "NonDeterministicEndError",
    "NondeterministicCallError",
    "OutboxMessage",
    "QueryError",
    "RabbitMQSink",
    "ReceiveTimeoutError",
    "RedisStreamSink",
    "Relay",
    "ReplayReport",
    "ReplayResult",
    "ReplayStatus",
    "Replayer",
    "ResultTimeoutError",
    "RetryPolicy",
    "RunCancelledError",
    "RunConflictError",
    "RunContextFilter",
    "RunEnd",
    "RunRef",
    "RunStatus",
    "RunSummary",
    "RunUnavailableError",
    "Saga",
    "Sink",
    "SinkUnavailableError",
    "StepFailed",
    "StepTimeoutError",
    "SystemClock",
    "SystemClosedError",
    "SystemFailedError",
    "SystemStats",
    "UnawaitedCommandError",
    "UnknownActorError",
    "UnknownQueryError",
    "UnknownRunError",
    "UnknownWorkflowError",
    "VerifyStage",
    "VersionOutOfRangeError",
    "WebhookRefusedError",
    "WebhookSink",
    "WorkflowCancelled",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowFailedError",
    "activity",
    "converter_for",
    "export_histories",
    "export_history",
    "load_history",
    "workflow",
    "write_history",
]
