"""``WorkflowActor``: one run as a pykka actor driving its coroutine by hand.

The coroutine is resumed with ``send``/``throw`` on the actor's thread (no event
loop). Each request it yields is answered from history when history holds the
outcome (replay), else run live. Every mailbox message is handled by one
``_on_<message>`` method, and all the events it causes are saved in one commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs
import pykka

from actors._context import CallStep, Receive, Sleep, WorkflowContext
from actors._definitions import ActivityDefinition, WorkflowDefinition
from actors._errors import (
    ContextError,
    ReceiveTimeoutError,
    StepFailed,
    WorkflowFailedError,
)
from actors._messages import DeliverSignal, StepOutcome, TimerDue
from actors._ref import RunHandle
from aggregates import (
    CommandKind,
    ErrorInfo,
    NonDeterminismError,
    OutcomeKind,
    RunError,
    RunStatus,
    ValueKind,
    WorkflowRun,
)

__all__ = ["RunServices", "WorkerFailed", "WorkflowActor"]


class RunServices(Protocol):
    """What a run's actor needs from its system."""

    def now(self) -> datetime: ...
    def save(self, run: WorkflowRun) -> None: ...
    def check_encodable(self, value: Any) -> None: ...
    def add_timer(self, workflow_id: str, seq: int, fire_at: datetime) -> None: ...
    def submit_step(
        self,
        step: ActivityDefinition,
        args: tuple[Any, ...],
        workflow_id: str,
        seq: int,
        reply_to: pykka.ActorRef[Any],
    ) -> None: ...
    def run_finished(self, workflow_id: str) -> None: ...


@attrs.frozen
class WorkerFailed:
    """A worker thread failed outside the step itself (a bug, not a step error)."""

    seq: int
    error: BaseException


@attrs.frozen
class _Answer:
    """What the coroutine is resumed with: a value, or an error thrown into it."""

    value: Any = None
    error: BaseException | None = None


@attrs.frozen
class _InFlight:
    step: ActivityDefinition
    args: tuple[Any, ...]
    scheduled_at: datetime
    recorded: bool  # StepScheduled is already in history (re-run after a crash)


class WorkflowActor(pykka.ThreadingActor):
    use_daemon_thread = True  # a crashed process must not wait for its runs

    def __init__(
        self,
        services: RunServices,
        definition: WorkflowDefinition,
        run: WorkflowRun,
        handle: RunHandle,
    ) -> None:
        super().__init__()
        self._services = services
        self._definition = definition
        self._run = run
        self._handle = handle
        self._thread: threading.Thread | None = None
        self._coroutine: Coroutine[Any, Any, Any] | None = None
        # Invariant: _seq is the seq of the last command the code issued.
        self._seq = 0
        self._inside = False  # the workflow's own code is running on _thread
        self._nondeterminism: NonDeterminismError | None = None
        self._in_flight: dict[int, _InFlight] = {}
        # The seq of the step, timer or receive the coroutine waits on.
        self._waiting: int | None = None
        self._failure: BaseException | None = None  # why the run failed, if it did
        handle.actor = self.actor_ref  # before on_start: a timer may fire at once
        self._handlers: dict[type, Callable[[Any], Any]] = {
            StepOutcome: self._on_step_outcome,
            TimerDue: self._on_timer_due,
            DeliverSignal: self._on_deliver_signal,
            WorkerFailed: self._on_worker_failed,
        }

    # -- the runtime the context talks to --------------------------------------

    @property
    def workflow_id(self) -> str:
        return self._run.id

    def check_inside(self, what: str) -> None:
        if not self._inside or threading.current_thread() is not self._thread:
            raise ContextError(
                what,
                f"was called outside workflow {self.workflow_id!r}: a context "
                "works only in its own workflow's code, while that code runs",
            )

    def check_encodable(self, value: Any) -> None:
        self._services.check_encodable(value)

    def clock_now(self) -> datetime:
        return self._services.now()

    def record_value(self, kind: ValueKind, make: Callable[[], Any]) -> Any:
        seq = self._seq = self._seq + 1
        try:
            record = self._run.check_replay(seq, CommandKind.VALUE, kind)
        except NonDeterminismError as error:
            self._nondeterminism = error  # the code may catch it; the run may not
            raise
        if record is not None and record.outcome is not None:
            return record.outcome.value
        value = make()
        self._run.record_value(seq, kind, value, at=self._services.now())
        return value

    # -- lifecycle ---------------------------------------------------------------

    def on_start(self) -> None:
        self._thread = threading.current_thread()
        try:
            context = WorkflowContext(self)
            run = self._run
            self._coroutine = self._definition.fn(context, *run.args, **run.kwargs)
            self._resume(_Answer())
            self._save()
        except Exception as error:
            self._break_off(error)
            raise

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            error = TypeError(
                f"workflow actor {self.workflow_id!r} got a message of unknown "
                f"type {type(message).__qualname__}"
            )
            self._break_off(error)
            raise error
        try:
            return handler(message)
        except Exception as error:
            self._break_off(error)
            raise

    def _break_off(self, error: BaseException) -> None:
        # History is intact (nothing half-saved); the run resumes on the next open.
        if self._coroutine is not None:
            self._coroutine.close()
            self._coroutine = None
        self._handle.break_off(error)
        self.stop()

    # -- messages ------------------------------------------------------------------

    def _on_step_outcome(self, outcome: StepOutcome) -> None:
        pending = self._in_flight.pop(outcome.seq)
        run, seq = self._run, outcome.seq
        if not pending.recorded:
            run.schedule_step(
                seq, pending.step.name, pending.args, at=pending.scheduled_at
            )
        base = run.command_at(seq).attempts
        for failure in outcome.failures:
            run.fail_step(
                seq,
                failure.error,
                attempt=base + failure.attempt,
                final=False,
                at=failure.at,
            )
        if outcome.error is None:
            run.complete_step(seq, outcome.result, at=outcome.finished_at)
            answer = _Answer(outcome.result)
        else:
            attempt = base + len(outcome.failures) + 1
            run.fail_step(
                seq, outcome.error, attempt=attempt, final=True, at=outcome.finished_at
            )
            answer = _Answer(error=self._step_failed(seq, pending.step.name))
        self._continue(seq, answer)

    def _on_timer_due(self, message: TimerDue) -> None:
        seq = message.seq
        if self._waiting != seq or not self._run.command_at(seq).is_open:
            return  # a receive whose signal came first, or a stale fire
        record = self._run.command_at(seq)
        now = self._services.now()
        if record.kind is CommandKind.TIMER:
            self._run.fire_timer(seq, at=now)
            self._continue(seq, _Answer())
        else:
            self._run.time_out_receive(seq, at=now)
            topic = str(record.name)
            timeout = ReceiveTimeoutError(self.workflow_id, seq, topic)
            self._continue(seq, _Answer(error=timeout))

    def _on_deliver_signal(self, signal: DeliverSignal) -> RunError | None:
        try:
            self._run.receive_signal(
                signal.topic, signal.payload, signal.signal_id, at=self._services.now()
            )
        except RunError as error:  # refused before any event: the run is intact
            return error
        waiting = self._waiting
        if waiting is not None and self._consumable(waiting):
            self._continue(waiting, self._consume(waiting))
        else:
            self._save()
        return None

    def _on_worker_failed(self, message: WorkerFailed) -> None:
        raise message.error

    def _continue(self, seq: int, answer: _Answer) -> None:
        assert self._waiting == seq
        self._waiting = None
        self._resume(answer)
        self._save()

    # -- driving the coroutine --------------------------------------------------------

    def _resume(self, answer: _Answer) -> None:
        while self._coroutine is not None:
            try:
                self._inside = True
                if answer.error is not None:
                    request = self._coroutine.throw(answer.error)
                else:
                    request = self._coroutine.send(answer.value)
            except StopIteration as stop:
                self._end(result=stop.value)
                return
            except Exception as error:
                self._end(error=error)
                return
            finally:
                self._inside = False
            if self._nondeterminism is not None:
                self._end(error=self._nondeterminism)
                return
            try:
                next_answer = self._issue(request)
            except NonDeterminismError as error:
                self._end(error=error)
                return
            if next_answer is None:
                return  # waiting for a message
            answer = next_answer

    def _issue(self, request: object) -> _Answer | None:
        if isinstance(request, CallStep):
            return self._issue_call(request)
        if isinstance(request, Sleep):
            return self._issue_sleep(request)
        if isinstance(request, Receive):
            return self._issue_receive(request)
        error = TypeError(
            f"workflow {self.workflow_id!r} awaited {request!r}, which is not a "
            "chronik command; await only ctx.call, ctx.sleep and ctx.receive "
            "(asyncio and other event loops do not run inside workflows)"
        )
        return _Answer(error=error)

    def _issue_call(self, request: CallStep) -> _Answer | None:
        seq = self._seq = self._seq + 1
        name = request.step.name
        record = self._run.check_replay(seq, CommandKind.STEP, name)
        if record is not None and record.outcome is not None:
            if record.outcome.kind is OutcomeKind.COMPLETED:
                return _Answer(record.outcome.value)
            return _Answer(error=self._step_failed(seq, name))
        self._in_flight[seq] = _InFlight(
            request.step, request.args, self._services.now(), record is not None
        )
        self._waiting = seq
        self._services.submit_step(
            request.step, request.args, self.workflow_id, seq, self.actor_ref
        )
        return None

    def _issue_sleep(self, request: Sleep) -> _Answer | None:
        seq = self._seq = self._seq + 1
        record = self._run.check_replay(seq, CommandKind.TIMER)
        if record is not None and record.outcome is not None:
            return _Answer()
        if record is None:
            now = self._services.now()
            fire_at = now + timedelta(seconds=request.seconds)
            self._run.start_timer(seq, fire_at, at=now)
        else:
            assert record.fire_at is not None
            fire_at = record.fire_at
        self._waiting = seq
        self._services.add_timer(self.workflow_id, seq, fire_at)
        return None

    def _issue_receive(self, request: Receive) -> _Answer | None:
        seq = self._seq = self._seq + 1
        record = self._run.check_replay(seq, CommandKind.RECEIVE, request.topic)
        if record is not None and record.outcome is not None:
            if record.outcome.kind is OutcomeKind.TIMED_OUT:
                timeout = ReceiveTimeoutError(self.workflow_id, seq, request.topic)
                return _Answer(error=timeout)
            return _Answer(record.outcome.value)
        if record is None:
            now = self._services.now()
            deadline = None
            if request.timeout is not None:
                deadline = now + timedelta(seconds=request.timeout)
            self._run.await_signal(seq, request.topic, timeout_at=deadline, at=now)
        else:
            deadline = record.fire_at
        if self._consumable(seq):
            return self._consume(seq)
        self._waiting = seq
        if deadline is not None:
            self._services.add_timer(self.workflow_id, seq, deadline)
        return None

    def _consumable(self, seq: int) -> bool:
        if seq >= self._run.next_seq:
            return False  # a step in flight, not yet in history
        record = self._run.command_at(seq)
        return (
            record.kind is CommandKind.RECEIVE
            and record.is_open
            and bool(self._run.pending_signals.get(str(record.name)))
        )

    def _consume(self, seq: int) -> _Answer:
        signal = self._run.consume_signal(seq, at=self._services.now())
        return _Answer(signal.payload)

    def _step_failed(self, seq: int, name: str) -> StepFailed:
        record = self._run.command_at(seq)
        assert record.outcome is not None
        assert record.outcome.error is not None
        return StepFailed(
            self.workflow_id, seq, name, record.outcome.error, record.attempts
        )

    # -- the end -----------------------------------------------------------------------

    def _end(self, *, result: Any = None, error: BaseException | None = None) -> None:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            coroutine.close()
        now = self._services.now()
        if self._nondeterminism is not None:  # even if the code caught it
            error = self._nondeterminism
        if error is None:
            try:
                self._services.check_encodable(result)
            except TypeError as unencodable:
                error = unencodable
        if error is None:
            self._run.complete(result, at=now)
        else:
            self._run.fail(ErrorInfo.from_exception(error), at=now)
            self._failure = error

    def _save(self) -> None:
        if self._run.pending_events:  # one commit for all this message caused
            self._services.save(self._run)
        if not self._run.is_finished:
            return
        if self._run.status is RunStatus.COMPLETED:
            self._handle.finish(RunStatus.COMPLETED, result=self._run.result)
        else:
            info = self._run.error
            assert info is not None
            failed = WorkflowFailedError(self.workflow_id, info)
            failed.__cause__ = self._failure
            self._handle.finish(self._run.status, error=failed)
        self._services.run_finished(self.workflow_id)
        self.stop()
