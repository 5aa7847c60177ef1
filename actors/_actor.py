"""``WorkflowActor``: one run as a pykka actor driving its coroutine by hand.

The coroutine is resumed with ``send``/``throw`` on the actor's thread (no event
loop). Each request it awaits gets the next seqs; a command whose outcome history
holds is answered from history (replay), else it runs live. Every mailbox message
is handled by one ``_on_<message>`` method, and all the events it causes are saved
in one commit (with the ``Started`` of any child runs it spawned).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs
import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from actors._context import (
    CallStep,
    Gather,
    Leaf,
    Receive,
    Request,
    Sleep,
    SpawnChild,
    WorkflowContext,
)
from actors._definitions import ActivityDefinition, WorkflowDefinition
from actors._errors import (
    ChildFailedError,
    ContextError,
    NonDeterministicEndError,
    QueryError,
    ReceiveTimeoutError,
    RunCancelledError,
    RunConflictError,
    RunEnd,
    RunUnavailableError,
    StepFailed,
    UnknownQueryError,
    WorkflowCancelled,
    WorkflowFailedError,
)
from actors._logs import RunScope, enter_scope, leave_scope
from actors._messages import (
    CancelRun,
    ChildDone,
    DeliverSignal,
    Passivate,
    Query,
    Reply,
    StepOutcome,
    TimerDue,
)
from actors._metrics import Metrics
from actors._ref import RunHandle
from aggregates import (
    CommandKind,
    CommandRecord,
    ErrorInfo,
    NonDeterminismError,
    OutcomeKind,
    RunError,
    RunFinishedError,
    RunStatus,
    StepScheduled,
    ValueKind,
    WorkflowRun,
)
from supervision import SupervisedActor

__all__ = ["RunServices", "WorkerFailed", "WorkflowActor"]

logger = logging.getLogger("chronik.actors")


class RunServices(Protocol):
    """What a run's actor needs from its system."""

    def now(self) -> datetime: ...
    def save(self, run: WorkflowRun, *children: WorkflowRun) -> None: ...
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
    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        """A child run to save with the parent, or ``None`` if ``child_id`` already
        names the same run; ``RunConflictError`` if it names another."""

    def start_runs(self, runs: list[WorkflowRun]) -> None: ...
    def watch_child(self, parent_id: str, child_id: str) -> None:
        """Tell the parent ``ChildDone`` now if the child has already ended."""

    def cancel_run(self, workflow_id: str, reason: str) -> None: ...
    def run_finished(self, run: WorkflowRun) -> None: ...
    def run_broken(self, workflow_id: str) -> None: ...
    def may_restart(self, handle: RunHandle) -> bool:
        """Count a fault of the run's actor; whether a restart is still allowed."""

    def load_run(self, workflow_id: str) -> WorkflowRun:
        """The run as the journal holds it now."""

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        """Detach the run's actor if no message is waiting for it."""


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
class _Wait:
    """The request the suspended coroutine awaits, and the seqs it was given."""

    request: Request
    seqs: tuple[int, ...]


class WorkflowActor(SupervisedActor):
    """Drives one run. Under a supervisor (the system's ``runs``), an engine
    fault ends this incarnation as a failure and the supervisor starts another,
    which replays the run's history; refs, which hold the run's handle rather
    than an actor, carry on. ``read_only`` replays a finished run to answer
    queries and records nothing."""

    use_daemon_thread = True  # a crashed process must not wait for its runs

    def __init__(
        self,
        services: RunServices,
        definition: WorkflowDefinition,
        run: WorkflowRun,
        handle: RunHandle,
        *,
        read_only: bool = False,
        reload: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self._metrics = metrics or Metrics()  # the system's counters
        self._log_scope = RunScope(run.id)  # log records while it handles the run
        self._services = services
        self._definition = definition
        self._run = run
        self._handle = handle
        self._read_only = read_only
        self._reload = reload  # read the run again from the journal in on_start
        self._thread: threading.Thread | None = None
        self._coroutine: Coroutine[Any, Any, Any] | None = None
        # Invariant: _seq is the seq of the last command the code issued; every
        # issued command is in the aggregate (saved with this message's events).
        self._seq = 0
        self._inside = False  # the workflow's own code is running on _thread
        self._nondeterminism: NonDeterminismError | None = None
        self._in_flight: set[int] = set()  # steps handed (or to hand) to the pool
        # Steps issued by this message: handed to the pool once what came before
        # them is durable, so a step never runs ahead of its predecessor's result.
        self._to_submit: list[tuple[ActivityDefinition, tuple[Any, ...], int]] = []
        self._wait: _Wait | None = None  # None while the coroutine runs or ended
        self._cancel_thrown = False
        self._new_children: list[WorkflowRun] = []
        self._cancel_children: list[str] = []
        self._queries: dict[str, Callable[..., Any]] = {}
        self._failure: BaseException | None = None  # why the run failed, if it did
        self._broken: BaseException | None = None  # stopped on this error
        self._replaced = False  # failed, for its supervisor to start another
        if not self._read_only:
            handle.attach(self.actor_ref)  # before on_start: a timer may fire at once
        self._handlers: dict[type, Callable[[Any], Any]] = {
            StepOutcome: self._on_step_outcome,
            TimerDue: self._on_timer_due,
            DeliverSignal: self._on_deliver_signal,
            ChildDone: self._on_child_done,
            CancelRun: self._on_cancel_run,
            Query: self._on_query,
            Passivate: self._on_passivate,
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

    def patched(self, patch_id: str) -> bool:
        seq = self._seq + 1
        if seq < self._run.next_seq:  # replaying: did the run take the new path?
            record = self._run.command_at(seq)
            if record.kind is not CommandKind.PATCH or record.name != patch_id:
                return False  # it got here before the patch existed
            self._seq = seq
            return True
        self._seq = seq
        self._run.record_patch(seq, patch_id, at=self._services.now())
        return True

    def set_query(self, name: str, handler: Callable[..., Any]) -> None:
        self._queries[name] = handler

    # -- lifecycle ---------------------------------------------------------------

    def on_start(self) -> None:
        self._thread = threading.current_thread()
        scope = enter_scope(self._log_scope)
        try:
            if self._reload:  # a restart: the run as the journal holds it now
                self._run = self._services.load_run(self.workflow_id)
            if not self._read_only:
                self._note_activation()
            if self._run.is_finished and not self._read_only:
                # Restarted after a fault that followed the run's last commit.
                self._finish()
                return
            context = WorkflowContext(self)
            run = self._run
            args, kwargs = _fresh(run.args), _fresh(run.kwargs)
            self._coroutine = self._definition.fn(context, *args, **kwargs)
            self._resume(_Answer())
            self._after_message()
        except Exception as error:
            self._fault(error)
        finally:
            leave_scope(scope)

    def _note_activation(self) -> None:
        metrics, run = self._metrics, self._run
        metrics.add("activations")
        if run.version > 1:  # more than its Started: the code replays history
            metrics.add("replays")
            metrics.add("events_replayed", run.version)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "activated: replaying %d events of workflow %s",
                    run.version,
                    run.name,
                )
        elif logger.isEnabledFor(logging.INFO):
            logger.info("run started: workflow %s", run.name)

    def on_receive(self, message: Any) -> Any:
        if self._broken is not None:  # messages queued before the stop
            reason = f"its actor stopped on {self._broken!r}"
            return Reply(error=RunUnavailableError(self.workflow_id, reason))
        handler = self._handlers.get(type(message))
        scope = enter_scope(self._log_scope)
        try:
            if handler is None:
                raise TypeError(
                    f"workflow actor {self.workflow_id!r} got a message of unknown "
                    f"type {type(message).__qualname__}"
                )
            return handler(message)
        except Exception as error:
            return self._fault(error)
        finally:
            leave_scope(scope)

    def _fault(self, error: BaseException) -> Reply:
        """An engine fault (the workflow's own failure is its result, not this).

        History is intact: what this message caused was saved in one commit or
        not at all. Supervised and within the run's restart budget, this
        incarnation fails and its supervisor replays the run in a new one (an
        asker is asked to retry there); otherwise the run breaks off: its refs
        say why until a message or the next open activates it again."""
        self._broken = error
        self._coroutine_close()
        if self._read_only:
            self.stop()
        elif self._supervision_link is not None and self._services.may_restart(
            self._handle
        ):
            logger.warning(
                "engine fault (%r); its supervisor restarts the run's actor, "
                "which replays the journal",
                error,
            )
            self._replaced = True
            self._handle_failure(type(error), error, error.__traceback__)
            return Reply(retry=True)
        else:
            logger.error(
                "engine fault (%r) with no restart left (its budget is spent, or "
                "the system is closing): the run breaks off until a message or "
                "the next open activates it",
                error,
            )
            self._metrics.add("runs_broken_off")
            self._handle.break_off(error)
            self._services.run_broken(self.workflow_id)
            self.stop()
        return Reply(error=error)  # an asker owns the error its message caused

    def _actor_loop_teardown(self) -> None:
        # Told messages this incarnation never handled (a step outcome, a timer,
        # a cancel) go to its replacement; askers hear it died and ask again.
        if self._replaced:
            asks: list[Envelope[Any]] = []
            while not self.actor_inbox.empty():
                envelope: Envelope[Any] = self.actor_inbox.get()
                if envelope.reply_to is not None:
                    asks.append(envelope)
                elif not isinstance(envelope.message, _ActorStop):
                    self._handle.stash(envelope.message)
            for envelope in asks:
                self.actor_inbox.put(envelope)
        super()._actor_loop_teardown()

    # -- messages ------------------------------------------------------------------

    def _on_step_outcome(self, outcome: StepOutcome) -> None:
        run, seq = self._run, outcome.seq
        self._in_flight.discard(seq)
        if run.is_finished or not run.is_open(seq):
            return  # the run ended while the step ran (it was cancelled)
        base = run.attempts_at(seq)
        for failure in outcome.failures:
            run.fail_step(
                seq,
                failure.error,
                attempt=base + failure.attempt,
                final=False,
                at=failure.at,
            )
        attempt = base + len(outcome.failures) + 1
        if outcome.error is None:
            run.complete_step(seq, outcome.result, at=outcome.finished_at)
            self._metrics.add("steps_completed")
        else:
            run.fail_step(
                seq, outcome.error, attempt=attempt, final=True, at=outcome.finished_at
            )
            self._metrics.add("steps_failed")
        if logger.isEnabledFor(logging.DEBUG):
            how = "completed" if outcome.error is None else "failed"
            extra = {"seq": seq, "attempt": attempt}
            logger.debug("step %s %s", run.command_at(seq).name, how, extra=extra)
        self._progress()

    def _on_timer_due(self, message: TimerDue) -> None:
        seq, run = message.seq, self._run
        wait = self._wait
        if wait is None or seq not in wait.seqs or not run.is_open(seq):
            return  # a receive whose signal came first, or a stale fire
        record = run.command_at(seq)
        if record.fire_at is not None and self._services.now() < record.fire_at:
            # Registered by a message whose commit was lost: history's time rules.
            self._add_timer(seq, record.fire_at)
            return
        if record.kind is CommandKind.TIMER:
            run.fire_timer(seq, at=self._services.now())
        else:
            run.time_out_receive(seq, at=self._services.now())
        self._metrics.add("timers_fired")
        if logger.isEnabledFor(logging.DEBUG):
            timer = record.kind is CommandKind.TIMER
            logger.debug(
                "timer fired" if timer else "receive timed out", extra={"seq": seq}
            )
        self._progress()

    def _on_deliver_signal(self, signal: DeliverSignal) -> Reply:
        try:
            new = self._run.receive_signal(
                signal.topic, signal.payload, signal.signal_id, at=self._services.now()
            )
        except RunError as error:  # refused before any event: the run is intact
            return Reply(error=error)
        if new:
            self._metrics.add("signals_received")
            logger.debug("signal received: %r (id %s)", signal.topic, signal.signal_id)
        self._progress()
        return Reply(signal.signal_id)

    def _on_child_done(self, done: ChildDone) -> None:
        run = self._run
        if run.is_finished:
            return
        for record in run.open_commands:
            if record.kind is CommandKind.CHILD and record.child_id == done.child_id:
                now = self._services.now()
                if done.error is None:
                    run.complete_child(record.seq, done.result, at=now)
                else:
                    run.fail_child(record.seq, done.error, at=now)
                break
        self._progress()

    def _on_cancel_run(self, message: CancelRun) -> Reply:
        run = self._run
        if run.is_finished:
            action = f"cancel ({message.reason})"
            return Reply(error=RunFinishedError(self.workflow_id, run.status, action))
        if run.request_cancel(message.reason, at=self._services.now()):
            wait, self._wait = self._wait, None
            if wait is not None:
                self._resume(self._throw_cancel(wait))
        self._after_message()
        return Reply()

    def _on_query(self, query: Query) -> Reply:
        handler = self._queries.get(query.name)
        if handler is None:
            known = tuple(sorted(self._queries))
            return Reply(error=UnknownQueryError(self.workflow_id, query.name, known))
        try:
            return Reply(handler(*query.args))
        except Exception as error:
            info = ErrorInfo.from_exception(error)
            return Reply(error=QueryError(self.workflow_id, query.name, info))

    def _on_passivate(self, message: Passivate) -> None:
        if self._handle.idle_since != message.idle_since or not self._idle():
            return  # something happened since the system looked
        if self._services.passivate(self.workflow_id, self.actor_inbox.empty):
            logger.debug("passivated: idle, its actor stops until a message comes")
            self._coroutine_close()
            self.stop()

    def _on_worker_failed(self, message: WorkerFailed) -> None:
        raise message.error

    # -- driving the coroutine --------------------------------------------------------

    def _progress(self) -> None:
        """Resume the coroutine if what it waits for has all ended; then save."""
        wait = self._wait
        if wait is not None:
            answer = self._answer(wait)
            if answer is not None:
                self._wait = None
                self._resume(answer)
        self._after_message()

    def _resume(self, answer: _Answer | None) -> None:
        while self._coroutine is not None and answer is not None:
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
                answer = self._await(request)
            except NonDeterminismError as error:
                self._end(error=error)
                return
            except RunFinishedError:
                if not self._read_only:
                    raise
                self._coroutine_close()  # replayed as far as the history goes

    def _await(self, request: object) -> _Answer | None:
        """Issue what the coroutine awaits; its answer, or None to wait for it."""
        if not isinstance(request, Request):
            return _Answer(error=_not_a_command(self.workflow_id, request))
        leaves = request.requests if isinstance(request, Gather) else (request,)
        try:
            wait = _Wait(request, tuple(self._issue(leaf) for leaf in leaves))  # type: ignore[arg-type]
        except RunConflictError as error:
            return _Answer(error=error)
        run = self._run
        cancel_at = run.cancel_after_seq
        if not self._cancel_thrown and cancel_at is not None and cancel_at <= self._seq:
            return self._throw_cancel(wait)  # where history says it was thrown
        answer = self._answer(wait)
        if answer is None:
            self._wait = wait
        return answer

    def _throw_cancel(self, wait: _Wait) -> _Answer:
        self._cancel_thrown = True
        for seq in wait.seqs:  # children the cancelled await was waiting on
            record = self._run.command_at(seq)
            if record.kind is CommandKind.CHILD and record.is_open:
                assert record.child_id is not None
                self._cancel_children.append(record.child_id)
        reason = self._run.cancel_reason or ""
        return _Answer(error=WorkflowCancelled(self.workflow_id, reason))

    # -- issuing commands ------------------------------------------------------------

    def _issue(self, leaf: Leaf) -> int:
        if isinstance(leaf, CallStep):
            return self._issue_call(leaf)
        if isinstance(leaf, Sleep):
            return self._issue_sleep(leaf)
        if isinstance(leaf, Receive):
            return self._issue_receive(leaf)
        return self._issue_spawn(leaf)

    def _issue_call(self, leaf: CallStep) -> int:
        seq = self._seq = self._seq + 1
        run, step = self._run, leaf.step
        record = run.check_replay(seq, CommandKind.STEP, step.name)
        if record is None:
            run.schedule_step(seq, step.name, leaf.args, at=self._services.now())
        if (record is None or record.is_open) and not self._read_only:
            self._in_flight.add(seq)
            self._to_submit.append((step, leaf.args, seq))
        return seq

    def _issue_sleep(self, leaf: Sleep) -> int:
        seq = self._seq = self._seq + 1
        record = self._run.check_replay(seq, CommandKind.TIMER)
        if record is None:
            now = self._services.now()
            fire_at = leaf.until or now + timedelta(seconds=leaf.seconds)
            self._run.start_timer(seq, fire_at, at=now)
        elif record.is_open:
            assert record.fire_at is not None
            fire_at = record.fire_at
        else:
            return seq
        self._add_timer(seq, fire_at)
        return seq

    def _issue_receive(self, leaf: Receive) -> int:
        seq = self._seq = self._seq + 1
        record = self._run.check_replay(seq, CommandKind.RECEIVE, leaf.topic)
        if record is None:
            now = self._services.now()
            deadline = None
            if leaf.timeout is not None:
                deadline = now + timedelta(seconds=leaf.timeout)
            self._run.await_signal(seq, leaf.topic, timeout_at=deadline, at=now)
        elif record.is_open:
            deadline = record.fire_at
        else:
            return seq
        if deadline is not None:
            self._add_timer(seq, deadline)
        return seq

    def _issue_spawn(self, leaf: SpawnChild) -> int:
        seq, run, name = self._seq + 1, self._run, leaf.workflow.name
        record = run.check_replay(seq, CommandKind.CHILD, name)
        if record is None:
            child_id = leaf.child_id or f"{self.workflow_id}/{seq}"
            child = self._services.new_child(
                self.workflow_id, child_id, leaf.workflow, leaf.args
            )
            run.start_child(seq, child_id, name, at=self._services.now())
            if child is not None:
                self._new_children.append(child)
            elif not self._read_only:
                self._services.watch_child(self.workflow_id, child_id)
        elif record.is_open and not self._read_only:
            assert record.child_id is not None
            self._services.watch_child(self.workflow_id, record.child_id)
        self._seq = seq
        return seq

    def _add_timer(self, seq: int, fire_at: datetime) -> None:
        if not self._read_only:
            self._services.add_timer(self.workflow_id, seq, fire_at)

    # -- answers from history ----------------------------------------------------------

    def _answer(self, wait: _Wait) -> _Answer | None:
        request = wait.request
        if not isinstance(request, Gather):
            return self._leaf_answer(request, wait.seqs[0])  # type: ignore[arg-type]
        # Every receive takes its signal now, in seq order, even if others wait.
        answers = [
            self._leaf_answer(leaf, seq)
            for leaf, seq in zip(request.requests, wait.seqs, strict=True)
        ]
        ended = [answer for answer in answers if answer is not None]
        if len(ended) < len(answers):
            return None
        if request.return_exceptions:
            return _Answer([a.error if a.error is not None else a.value for a in ended])
        for answer in ended:
            if answer.error is not None:
                return answer
        return _Answer([answer.value for answer in ended])

    def _leaf_answer(self, leaf: Leaf, seq: int) -> _Answer | None:
        if isinstance(leaf, SpawnChild) and leaf.detached:
            return _Answer(self._run.command_at(seq).child_id)
        outcome = self._run.outcome_at(seq)
        if outcome is None:
            if isinstance(leaf, Receive):
                return self._take_signal(leaf.topic, seq)
            return None
        if outcome.kind is OutcomeKind.COMPLETED:
            return _Answer(_fresh(outcome.value))
        if isinstance(leaf, CallStep) and leaf.best_effort:
            return _Answer(None)
        return _Answer(error=self._failure_of(self._run.command_at(seq)))

    def _take_signal(self, topic: str, seq: int) -> _Answer | None:
        if self._run.is_finished or not self._run.pending_signals.get(topic):
            return None
        signal = self._run.consume_signal(seq, at=self._services.now())
        return _Answer(_fresh(signal.payload))

    def _failure_of(self, record: CommandRecord) -> BaseException:
        assert record.outcome is not None
        if record.outcome.kind is OutcomeKind.TIMED_OUT:
            topic = str(record.name)
            return ReceiveTimeoutError(self.workflow_id, record.seq, topic)
        error = record.outcome.error
        assert error is not None
        if record.kind is CommandKind.CHILD:
            assert record.child_id is not None
            return ChildFailedError(
                self.workflow_id, record.seq, record.child_id, error
            )
        name = str(record.name)
        return StepFailed(self.workflow_id, record.seq, name, error, record.attempts)

    # -- the end -----------------------------------------------------------------------

    def _end(self, *, result: Any = None, error: BaseException | None = None) -> None:
        self._coroutine_close()
        self._wait = None
        if self._read_only:
            return
        now = self._services.now()
        if self._nondeterminism is not None:  # even if the code caught it
            error = self._nondeterminism
        elif (
            not isinstance(error, NonDeterminismError)
            and self._seq + 1 < self._run.next_seq  # history goes on past the end
        ):
            ended = (
                RunEnd(RunStatus.COMPLETED)
                if error is None
                else RunEnd(RunStatus.FAILED, ErrorInfo.from_exception(error))
            )
            recorded = self._run.command_at(self._seq + 1).command
            error = NonDeterministicEndError(
                self.workflow_id, self._seq + 1, recorded, ended
            )
        if error is None:
            try:
                self._services.check_encodable(result)
            except TypeError as unencodable:
                error = unencodable
        if error is None:
            self._run.complete(result, at=now)
        elif isinstance(error, WorkflowCancelled) and self._cancel_thrown:
            self._run.cancel(error.reason, at=now)
        else:
            self._run.fail(ErrorInfo.from_exception(error), at=now)
            self._failure = error

    def _coroutine_close(self) -> None:
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            coroutine.close()

    def _idle(self) -> bool:
        return self._wait is not None and not self._in_flight

    def _after_message(self) -> None:
        if self._read_only:
            return
        run = self._run
        if self._must_save():  # one commit for all this message caused
            children, self._new_children = self._new_children, []
            self._services.save(run, *children)
            if children:
                self._services.start_runs(children)
        submit, self._to_submit = self._to_submit, []
        for step, args, seq in submit:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("step %s scheduled", step.name, extra={"seq": seq})
            self._services.submit_step(
                step, args, self.workflow_id, seq, self.actor_ref
            )
        cancels, self._cancel_children = self._cancel_children, []
        for child_id in cancels:
            reason = f"parent {self.workflow_id!r} was cancelled: {run.cancel_reason}"
            self._services.cancel_run(child_id, reason)
        if run.is_finished:
            self._finish()
            return
        self._handle.idle_since = time.monotonic() if self._idle() else None

    def _must_save(self) -> bool:
        # A step's StepScheduled need not be durable before the step runs (the
        # step is at-least-once anyway): alone, it rides with the step's outcome.
        return any(
            not isinstance(event, StepScheduled) or event.seq not in self._in_flight
            for event in self._run.pending_events
        )

    def _finish(self) -> None:
        run = self._run
        if run.status is RunStatus.COMPLETED:
            self._metrics.add("runs_completed")
            logger.info("run completed")
            self._handle.finish(RunStatus.COMPLETED, result=run.result)
        elif run.status is RunStatus.CANCELLED:
            reason = run.cancel_reason or ""
            self._metrics.add("runs_cancelled")
            logger.info("run cancelled: %s", reason)
            error = RunCancelledError(self.workflow_id, reason)
            self._handle.finish(RunStatus.CANCELLED, error=error)
        else:
            info = run.error
            assert info is not None
            self._metrics.add("runs_failed")
            logger.error("run failed: %s: %s", info.type, info.message)
            failed = WorkflowFailedError(self.workflow_id, info)
            failed.__cause__ = self._failure
            self._handle.finish(run.status, error=failed)
        self._services.run_finished(run)
        self.stop()


_IMMUTABLE = (type(None), bool, int, float, str, bytes, datetime, uuid.UUID)


def _fresh(value: Any) -> Any:
    """A copy of a value from history for the workflow to keep: the code may
    change it, and history (saved later, snapshotted, replayed) must not."""
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


def _not_a_command(workflow_id: str, request: object) -> TypeError:
    return TypeError(
        f"workflow {workflow_id!r} awaited {request!r}, which is not a chronik "
        "command; await only ctx.call, ctx.sleep, ctx.sleep_until, ctx.receive, "
        "ctx.spawn and ctx.gather (asyncio and other event loops do not run "
        "inside workflows)"
    )
