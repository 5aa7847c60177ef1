"""``RunState``: the state of a workflow run, derived from its events only.

This is the read side of ``WorkflowRun``: one ``_apply_<event>`` method per event,
and the queries. Appliers never validate: history is the truth, and replaying it
must never fail. ``WorkflowRun`` adds the commands, which validate first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from eventsourcing.domain import BaseAggregate

from aggregates._error_info import ErrorInfo
from aggregates._errors import UnknownSeqError
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
from aggregates._kinds import CommandKind, OutcomeKind, RunStatus
from aggregates._records import (
    CommandRecord,
    CommandState,
    Outcome,
    Signal,
    SignalState,
    command_state,
    outcome_state,
)

__all__ = ["RunState"]


class RunState(BaseAggregate[str]):
    """A run's state. Attributes hold plain data only (snapshots store ``vars()``)."""

    def __init__(self) -> None:
        # Started fills in the header (see _apply_started).
        self._name = ""
        self._args: list[Any] = []
        self._kwargs: dict[str, Any] = {}
        self._parent_id: str | None = None
        self._status: str = RunStatus.RUNNING.value
        self._result: Any = None
        self._error: dict[str, Any] | None = None
        self._cancel_requested = False
        self._cancel_reason: str | None = None
        self._cancel_after_seq: int | None = None
        # Invariant: _commands[seq - 1] is the command issued at seq; seqs are dense.
        self._commands: list[CommandState] = []
        # Invariant: topic -> its received, unconsumed signals in acknowledged order;
        # no topic maps to an empty list.
        self._inbox: dict[str, list[SignalState]] = {}
        # Every signal id ever received -> its topic.
        self._signal_topics: dict[str, str] = {}

    # -- queries -------------------------------------------------------------

    @property
    def workflow_id(self) -> str:
        return self.id

    @property
    def name(self) -> str:
        return self._name

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self._args)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self._kwargs)

    @property
    def parent_id(self) -> str | None:
        return self._parent_id

    @property
    def started_at(self) -> datetime:
        return self.created_on

    @property
    def status(self) -> RunStatus:
        return RunStatus(self._status)

    @property
    def is_finished(self) -> bool:
        return self._status != RunStatus.RUNNING.value

    @property
    def result(self) -> Any:
        """The run's result once it completed (``None`` before)."""
        return self._result

    @property
    def error(self) -> ErrorInfo | None:
        """Why the run failed, once it failed."""
        return None if self._error is None else ErrorInfo.from_dict(self._error)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def cancel_after_seq(self) -> int | None:
        """The last seq issued when cancellation was requested (``None`` if not)."""
        return self._cancel_after_seq

    @property
    def cancel_reason(self) -> str | None:
        """The reason of the cancel request, or of the cancellation itself."""
        return self._cancel_reason

    @property
    def next_seq(self) -> int:
        """The seq of the next command; seqs start at 1."""
        return len(self._commands) + 1

    def command_at(self, seq: int) -> CommandRecord:
        """The command issued at ``seq``, with its outcome; else ``UnknownSeqError``."""
        return CommandRecord.from_state(seq, self._command_state(seq))

    def is_open(self, seq: int) -> bool:
        """Whether the command at ``seq`` has no outcome yet (cheaper than
        ``command_at(seq).is_open``, for the runtime's hot path)."""
        return self._command_state(seq)["outcome"] is None

    def attempts_at(self, seq: int) -> int:
        """The failed attempts recorded for the step at ``seq``."""
        return self._command_state(seq)["attempts"]

    def outcome_at(self, seq: int) -> Outcome | None:
        """The outcome of the command at ``seq``, or ``None`` while it is open."""
        state = self._command_state(seq)["outcome"]
        return None if state is None else Outcome.from_state(state)

    @property
    def commands(self) -> tuple[CommandRecord, ...]:
        return tuple(
            CommandRecord.from_state(seq, state)
            for seq, state in enumerate(self._commands, start=1)
        )

    @property
    def open_commands(self) -> tuple[CommandRecord, ...]:
        """Commands without an outcome: steps to (re)run, timers, receives, children."""
        return tuple(
            CommandRecord.from_state(seq, state)
            for seq, state in enumerate(self._commands, start=1)
            if state["outcome"] is None
        )

    @property
    def pending_signals(self) -> Mapping[str, tuple[Signal, ...]]:
        """Unconsumed signals per topic, in the order they were acknowledged."""
        return {
            topic: tuple(Signal.from_state(topic, state) for state in queue)
            for topic, queue in self._inbox.items()
        }

    @property
    def signal_ids(self) -> frozenset[str]:
        """The id of every signal ever received (consumed or not)."""
        return frozenset(self._signal_topics)

    @property
    def pending_timers(self) -> dict[int, datetime]:
        """seq -> fire time, for open timers and open receives with a deadline."""
        return {
            seq: state["fire_at"]
            for seq, state in enumerate(self._commands, start=1)
            if state["outcome"] is None and state["fire_at"] is not None
        }

    @property
    def patches(self) -> frozenset[str]:
        """The ids of the patches recorded by this run."""
        return frozenset(
            state["name"]
            for state in self._commands
            if state["kind"] == CommandKind.PATCH.value and state["name"] is not None
        )

    def _command_state(self, seq: int) -> CommandState:
        if not 1 <= seq <= len(self._commands):
            raise UnknownSeqError(self.id, seq, self.next_seq)
        return self._commands[seq - 1]

    # -- appliers: one per event, no validation --------------------------------

    def _apply_event(self, event: RunEvent) -> None:
        try:
            apply = _APPLIERS[type(event)]
        except KeyError:
            msg = f"WorkflowRun has no applier for {type(event).__qualname__} events"
            raise TypeError(msg) from None
        apply(self, event)

    def _apply_started(self, event: Started) -> None:
        self._name = event.name
        self._args = event.args
        self._kwargs = event.kwargs
        self._parent_id = event.parent_id

    def _apply_step_scheduled(self, event: StepScheduled) -> None:
        self._issue(
            command_state(
                CommandKind.STEP, event.name, event.timestamp, args=event.args
            )
        )

    def _apply_step_completed(self, event: StepCompleted) -> None:
        self._resolve(event.seq, event.timestamp, value=event.result)

    def _apply_step_failed(self, event: StepFailed) -> None:
        state = self._commands[event.seq - 1]
        state["attempts"] = event.attempt
        state["last_error"] = event.error
        state["failed_at"] = event.timestamp
        if event.final:
            self._resolve(
                event.seq, event.timestamp, OutcomeKind.FAILED, error=event.error
            )

    def _apply_timer_started(self, event: TimerStarted) -> None:
        self._issue(
            command_state(
                CommandKind.TIMER, None, event.timestamp, fire_at=event.fire_at
            )
        )

    def _apply_timer_fired(self, event: TimerFired) -> None:
        self._resolve(event.seq, event.timestamp)

    def _apply_signal_received(self, event: SignalReceived) -> None:
        self._signal_topics[event.signal_id] = event.topic
        self._inbox.setdefault(event.topic, []).append(
            {
                "signal_id": event.signal_id,
                "payload": event.payload,
                "at": event.timestamp,
            }
        )

    def _apply_signal_awaited(self, event: SignalAwaited) -> None:
        self._issue(
            command_state(
                CommandKind.RECEIVE,
                event.topic,
                event.timestamp,
                fire_at=event.timeout_at,
            )
        )

    def _apply_signal_consumed(self, event: SignalConsumed) -> None:
        queue = self._inbox[event.topic]
        index = next(
            i for i, state in enumerate(queue) if state["signal_id"] == event.signal_id
        )
        signal = queue.pop(index)
        if not queue:
            del self._inbox[event.topic]
        self._resolve(
            event.seq,
            event.timestamp,
            value=signal["payload"],
            signal_id=event.signal_id,
        )

    def _apply_receive_timed_out(self, event: ReceiveTimedOut) -> None:
        self._resolve(event.seq, event.timestamp, OutcomeKind.TIMED_OUT)

    def _apply_value_recorded(self, event: ValueRecorded) -> None:
        self._issue(command_state(CommandKind.VALUE, event.kind, event.timestamp))
        self._resolve(event.seq, event.timestamp, value=event.value)

    def _apply_child_started(self, event: ChildStarted) -> None:
        self._issue(
            command_state(
                CommandKind.CHILD,
                event.name,
                event.timestamp,
                child_id=event.child_id,
            )
        )

    def _apply_child_finished(self, event: ChildFinished) -> None:
        if event.error is None:
            self._resolve(event.seq, event.timestamp, value=event.result)
        else:
            self._resolve(
                event.seq, event.timestamp, OutcomeKind.FAILED, error=event.error
            )

    def _apply_patch_recorded(self, event: PatchRecorded) -> None:
        self._issue(command_state(CommandKind.PATCH, event.patch_id, event.timestamp))
        self._resolve(event.seq, event.timestamp, value=True)

    def _apply_message_published(self, event: MessagePublished) -> None:
        self._issue(command_state(CommandKind.PUBLISH, event.topic, event.timestamp))
        self._resolve(event.seq, event.timestamp, value=None)

    def _apply_cancel_requested(self, event: CancelRequested) -> None:
        self._cancel_requested = True
        self._cancel_reason = event.reason
        self._cancel_after_seq = event.after_seq

    def _apply_completed(self, event: Completed) -> None:
        self._status = RunStatus.COMPLETED.value
        self._result = event.result

    def _apply_failed(self, event: Failed) -> None:
        self._status = RunStatus.FAILED.value
        self._error = event.error

    def _apply_cancelled(self, event: Cancelled) -> None:
        self._status = RunStatus.CANCELLED.value
        self._cancel_reason = event.reason

    def _issue(self, state: CommandState) -> None:
        self._commands.append(state)

    def _resolve(
        self,
        seq: int,
        at: datetime,
        kind: OutcomeKind = OutcomeKind.COMPLETED,
        *,
        value: Any = None,
        error: dict[str, Any] | None = None,
        signal_id: str | None = None,
    ) -> None:
        self._commands[seq - 1]["outcome"] = outcome_state(
            kind, at, value=value, error=error, signal_id=signal_id
        )


_APPLIERS: Final[dict[type[RunEvent], Callable[[RunState, Any], None]]] = {
    Started: RunState._apply_started,
    StepScheduled: RunState._apply_step_scheduled,
    StepCompleted: RunState._apply_step_completed,
    StepFailed: RunState._apply_step_failed,
    TimerStarted: RunState._apply_timer_started,
    TimerFired: RunState._apply_timer_fired,
    SignalReceived: RunState._apply_signal_received,
    SignalAwaited: RunState._apply_signal_awaited,
    SignalConsumed: RunState._apply_signal_consumed,
    ReceiveTimedOut: RunState._apply_receive_timed_out,
    ValueRecorded: RunState._apply_value_recorded,
    ChildStarted: RunState._apply_child_started,
    ChildFinished: RunState._apply_child_finished,
    PatchRecorded: RunState._apply_patch_recorded,
    MessagePublished: RunState._apply_message_published,
    CancelRequested: RunState._apply_cancel_requested,
    Completed: RunState._apply_completed,
    Failed: RunState._apply_failed,
    Cancelled: RunState._apply_cancelled,
}
