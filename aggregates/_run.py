"""``WorkflowRun``: the event-sourced aggregate of one workflow run (DESIGN.md §3).

Commands issue at a seq and get one outcome each:

=============  ==========================  =========================================
command        issued by                   outcome
=============  ==========================  =========================================
step           ``schedule_step``           ``complete_step`` / ``fail_step(final)``
timer          ``start_timer``             ``fire_timer``
receive        ``await_signal``            ``consume_signal`` / ``time_out_receive``
value          ``record_value``            recorded with it
child          ``start_child``             ``complete_child`` / ``fail_child``
patch          ``record_patch``            recorded with it
publish        ``publish``                 recorded with it (the message's id)
=============  ==========================  =========================================

Seqs start at 1 and have no gaps. An outcome is recorded exactly once. Signals,
cancel requests and the run's end (``complete``, ``fail``, ``cancel``) need no seq.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Self
from uuid import UUID

from aggregates._error_info import ErrorInfo
from aggregates._errors import (
    AttemptOrderError,
    NonDeterminismError,
    NoTimeoutError,
    OutcomeAlreadyRecordedError,
    RunFinishedError,
    SeqOutOfOrderError,
    SignalIdConflictError,
    SignalNotPendingError,
    TimeArgumentError,
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
from aggregates._kinds import CommandKind, ValueKind
from aggregates._records import Command, CommandRecord, CommandState, Signal
from aggregates._snapshot import RunSnapshot
from aggregates._state import RunState

__all__ = ["WorkflowRun", "check_message_address", "message_id"]

_VALUE_TYPES: Final[dict[ValueKind, tuple[type, str]]] = {
    ValueKind.NOW: (datetime, "a timezone-aware datetime"),
    ValueKind.UUID: (UUID, "a uuid.UUID"),
    ValueKind.RANDOM: (float, "a float"),
}


class WorkflowRun(RunState):
    """One workflow run; its aggregate id is the workflow id (a str).

    Each command method validates, then triggers exactly one event; a method that
    raises triggers nothing. No method reads a clock: each takes the time as ``at``.
    """

    TOPIC = "aggregates:WorkflowRun"
    Snapshot = RunSnapshot

    @classmethod
    def start(
        cls,
        workflow_id: str,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        parent_id: str | None = None,
        at: datetime,
    ) -> Self:
        """A new run of workflow ``name``; ``parent_id`` is set for a child run."""
        if not isinstance(workflow_id, str):
            raise WorkflowIdError(workflow_id, f"is a {type(workflow_id).__name__}")
        if not workflow_id:
            raise WorkflowIdError(workflow_id, "is empty")
        _check_time(workflow_id, "at", at)
        return cls._create(
            Started,
            id=workflow_id,
            timestamp=at,
            name=name,
            args=list(args),
            kwargs=dict(kwargs or {}),
            parent_id=parent_id,
        )

    # -- issuing commands ------------------------------------------------------

    def schedule_step(
        self, seq: int, name: str, args: Sequence[Any] = (), *, at: datetime
    ) -> None:
        self._check_issue(seq, at, f"schedule step {name!r}")
        self._trigger(StepScheduled, at, seq=seq, name=name, args=list(args))

    def start_timer(self, seq: int, fire_at: datetime, *, at: datetime) -> None:
        self._check_issue(seq, at, "start a timer")
        _check_time(self.id, "fire_at", fire_at)
        self._trigger(TimerStarted, at, seq=seq, fire_at=fire_at)

    def await_signal(
        self,
        seq: int,
        topic: str,
        *,
        timeout_at: datetime | None = None,
        at: datetime,
    ) -> None:
        """Wait for a signal on ``topic`` (until ``timeout_at``, if given)."""
        self._check_issue(seq, at, f"receive on topic {topic!r}")
        if timeout_at is not None:
            _check_time(self.id, "timeout_at", timeout_at)
        self._trigger(SignalAwaited, at, seq=seq, topic=topic, timeout_at=timeout_at)

    def record_value(
        self, seq: int, kind: ValueKind, value: Any, *, at: datetime
    ) -> None:
        """Record the result of ``ctx.now()``, ``ctx.uuid4()`` or ``ctx.random()``."""
        kind = ValueKind(kind)
        self._check_issue(seq, at, f"record a {kind} value")
        expected, description = _VALUE_TYPES[kind]
        if not isinstance(value, expected):
            raise ValueTypeError(self.id, seq, kind, description, type(value).__name__)
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise ValueTypeError(self.id, seq, kind, description, "naive datetime")
        self._trigger(ValueRecorded, at, seq=seq, kind=kind.value, value=value)

    def start_child(self, seq: int, child_id: str, name: str, *, at: datetime) -> None:
        self._check_issue(seq, at, f"start child workflow {name!r}")
        self._trigger(ChildStarted, at, seq=seq, child_id=child_id, name=name)

    def record_patch(self, seq: int, patch_id: str, *, at: datetime) -> None:
        self._check_issue(seq, at, f"record patch {patch_id!r}")
        self._trigger(PatchRecorded, at, seq=seq, patch_id=patch_id)

    def publish(
        self,
        seq: int,
        topic: str,
        payload: Any,
        key: str | None = None,
        *,
        at: datetime,
    ) -> str:
        """Record a message for ``topic`` (the transactional outbox: it commits
        with the run's other new events); its id, ``message_id(run, seq)``."""
        check_message_address(topic, key, "a message's")
        self._check_issue(seq, at, f"publish a message for {topic!r}")
        self._trigger(
            MessagePublished, at, seq=seq, topic=topic, payload=payload, key=key
        )
        return message_id(self.id, seq)

    # -- recording outcomes ----------------------------------------------------

    def complete_step(self, seq: int, result: Any, *, at: datetime) -> None:
        self._check_open(seq, CommandKind.STEP, at, "complete a step")
        self._trigger(StepCompleted, at, seq=seq, result=result)

    def fail_step(
        self,
        seq: int,
        error: ErrorInfo,
        *,
        attempt: int,
        final: bool,
        at: datetime,
    ) -> None:
        """Record failed attempt ``attempt``; ``final=True`` makes it the outcome."""
        state = self._check_open(seq, CommandKind.STEP, at, "record a step failure")
        if attempt < 1 or attempt <= state["attempts"]:
            raise AttemptOrderError(self.id, seq, attempt, state["attempts"])
        self._trigger(
            StepFailed,
            at,
            seq=seq,
            error=error.to_dict(),
            attempt=attempt,
            final=final,
        )

    def fire_timer(self, seq: int, *, at: datetime) -> None:
        self._check_open(seq, CommandKind.TIMER, at, "fire a timer")
        self._trigger(TimerFired, at, seq=seq)

    def consume_signal(self, seq: int, *, at: datetime) -> Signal:
        """Hand the oldest pending signal of the receive's topic to the receive."""
        state = self._check_open(seq, CommandKind.RECEIVE, at, "consume a signal")
        topic = str(state["name"])
        queue = self._inbox.get(topic)
        if not queue:
            raise SignalNotPendingError(self.id, seq, topic)
        signal = Signal.from_state(topic, queue[0])
        self._trigger(
            SignalConsumed, at, seq=seq, topic=topic, signal_id=signal.signal_id
        )
        return signal

    def time_out_receive(self, seq: int, *, at: datetime) -> None:
        state = self._check_open(seq, CommandKind.RECEIVE, at, "time out a receive")
        if state["fire_at"] is None:
            raise NoTimeoutError(self.id, seq, str(state["name"]))
        self._trigger(ReceiveTimedOut, at, seq=seq)

    def complete_child(self, seq: int, result: Any, *, at: datetime) -> None:
        self._check_open(seq, CommandKind.CHILD, at, "complete a child")
        self._trigger(ChildFinished, at, seq=seq, result=result, error=None)

    def fail_child(self, seq: int, error: ErrorInfo, *, at: datetime) -> None:
        self._check_open(seq, CommandKind.CHILD, at, "fail a child")
        self._trigger(ChildFinished, at, seq=seq, result=None, error=error.to_dict())

    # -- signals and cancellation ----------------------------------------------

    def receive_signal(
        self, topic: str, payload: Any, signal_id: str, *, at: datetime
    ) -> bool:
        """Record an acknowledged signal; ``False`` if ``signal_id`` was seen before.

        A repeated delivery of a signal id on the same topic is a no-op (no event),
        so a client may re-send after a lost acknowledgement, and the first payload
        stands. The same id on another topic raises ``SignalIdConflictError``.
        """
        _check_time(self.id, "at", at)
        recorded_topic = self._signal_topics.get(signal_id)
        if recorded_topic is not None:
            if recorded_topic != topic:
                raise SignalIdConflictError(self.id, signal_id, recorded_topic, topic)
            return False
        self._check_running(f"receive signal {signal_id!r} on topic {topic!r}")
        self._trigger(
            SignalReceived, at, topic=topic, payload=payload, signal_id=signal_id
        )
        return True

    def request_cancel(self, reason: str, *, at: datetime) -> bool:
        """Ask the run to cancel; ``False`` (no event) if already asked."""
        self._check_running("request cancellation")
        _check_time(self.id, "at", at)
        if self._cancel_requested:
            return False
        self._trigger(CancelRequested, at, reason=reason, after_seq=self.next_seq - 1)
        return True

    # -- finishing ---------------------------------------------------------------

    def complete(self, result: Any, *, at: datetime) -> None:
        self._check_running("complete the run")
        _check_time(self.id, "at", at)
        self._trigger(Completed, at, result=result)

    def fail(self, error: ErrorInfo, *, at: datetime) -> None:
        self._check_running("fail the run")
        _check_time(self.id, "at", at)
        self._trigger(Failed, at, error=error.to_dict())

    def cancel(self, reason: str, *, at: datetime) -> None:
        self._check_running("cancel the run")
        _check_time(self.id, "at", at)
        self._trigger(Cancelled, at, reason=reason)

    # -- replay --------------------------------------------------------------------

    def check_replay(
        self, seq: int, kind: CommandKind, name: str | None = None
    ) -> CommandRecord | None:
        """Compare what the code asks for at ``seq`` with what history holds there.

        ``None``: history holds nothing at ``seq`` yet, so run the command live.
        Otherwise the recorded command; its ``outcome`` is the result to feed back,
        or ``None`` while the command is open (a step to re-run after a crash, a
        timer still pending). Raises ``NonDeterminismError`` if history holds a
        different command there (arguments are not compared, as in Temporal).
        """
        requested = Command(CommandKind(kind), name)
        if seq == self.next_seq:
            return None
        if seq > self.next_seq:
            raise SeqOutOfOrderError(self.id, seq, self.next_seq)
        record = self.command_at(seq)
        if record.command != requested:
            raise NonDeterminismError(self.id, seq, record.command, requested)
        return record

    # -- validation ------------------------------------------------------------------

    def _check_running(self, action: str) -> None:
        if self.is_finished:
            raise RunFinishedError(self.id, self.status, action)

    def _check_issue(self, seq: int, at: datetime, action: str) -> None:
        self._check_running(f"{action} at seq {seq}")
        _check_time(self.id, "at", at)
        if seq != self.next_seq:
            raise SeqOutOfOrderError(self.id, seq, self.next_seq)

    def _check_open(
        self, seq: int, kind: CommandKind, at: datetime, action: str
    ) -> CommandState:
        """The open command of ``kind`` at ``seq``, ready for its outcome."""
        self._check_running(f"{action} at seq {seq}")
        _check_time(self.id, "at", at)
        state = self._command_state(seq)
        found = Command(CommandKind(state["kind"]), state["name"])
        if found.kind is not kind:
            raise WrongCommandKindError(self.id, seq, kind, found)
        if state["outcome"] is not None:
            raise OutcomeAlreadyRecordedError(self.id, seq, found)
        return state

    def _trigger(self, event_class: type[RunEvent], at: datetime, **data: Any) -> None:
        self.trigger_event(event_class, timestamp=at, **data)


def _check_time(workflow_id: str, argument: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise TimeArgumentError(workflow_id, argument, value)


def check_message_address(topic: Any, key: Any, what: str) -> None:
    """Raise ``TypeError`` unless ``topic`` is a non-empty str and ``key`` one or
    None (``what`` starts the message: ``"ctx.publish"``)."""
    if not isinstance(topic, str) or not topic:
        raise TypeError(f"{what} topic {topic!r} must be a non-empty str")
    if key is not None and (not isinstance(key, str) or not key):
        raise TypeError(f"{what} key {key!r} must be a non-empty str or None")


def message_id(workflow_id: str, seq: int) -> str:
    """The stable id of the message run ``workflow_id`` published at ``seq``: the
    same on every delivery, so a consumer can drop one it has seen."""
    return f"{workflow_id}:{seq}"
