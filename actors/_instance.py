"""``WorkflowInstance``: the deterministic driver of one run's coroutine.

No pykka, no threads of its own, no I/O: ``activate(message)`` applies one
message to the run (a start, a step outcome, a timer, a signal, a child's end, a
cancel, a query), resumes the coroutine as far as it can go, and returns the
``Effects`` for a host to carry out: commit the run's new events (and the child
runs it spawned) in one transaction, then hand steps to the worker, arm timers,
start, watch and cancel children, and answer the asker.

The coroutine is resumed with ``send``/``throw`` by hand (no event loop). Each
command it awaits gets the next seqs when it is awaited; a command whose outcome
history holds is answered from history (replay), else it runs live. The live
run actor, the ``Replayer`` and the crash-testing toolkit all drive runs through
this one class, so a replay and a live run can never drift apart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

import attrs

from actors._commands import (
    Answer,
    Command,
    Gather,
    Patched,
    Publish,
    RecordedValue,
    Request,
    command_of_kind,
    fresh,
)
from actors._context import WorkflowContext
from actors._definitions import ActivityDefinition, WorkflowDefinition
from actors._errors import (
    ContextError,
    NonDeterministicEndError,
    QueryError,
    RunConflictError,
    RunEnd,
    UnawaitedCommandError,
    UnknownQueryError,
    WorkflowCancelled,
)
from actors._guard import Guard
from actors._messages import (
    AttemptFailed,
    CancelRun,
    ChildDone,
    DeliverSignal,
    Query,
    Reply,
    StepOutcome,
    TimerDue,
)
from actors._metrics import Metrics
from aggregates import (
    CommandKind,
    CommandRecord,
    ErrorInfo,
    NonDeterminismError,
    RunError,
    RunFinishedError,
    RunStatus,
    StepScheduled,
    ValueKind,
    WorkflowRun,
)

__all__ = ["Effects", "InstanceEnv", "Start", "StepToRun", "WorkflowInstance"]

logger = logging.getLogger("chronik.actors")


class InstanceEnv(Protocol):
    """What an instance reads of the world: the clock, the encoder, other runs."""

    def now(self) -> datetime: ...
    def check_encodable(self, value: Any) -> None: ...
    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        """A child run to commit with the parent, or ``None`` if ``child_id``
        already names the same run; ``RunConflictError`` if it names another."""


@attrs.frozen
class Start:
    """Run the workflow's code from its start, replaying what history holds."""


@attrs.frozen
class StepToRun:
    """A step for the worker; ``attempts`` failed attempts are recorded already
    (the last at ``last_failed_at``), so it goes on from attempt attempts + 1."""

    step: ActivityDefinition
    args: tuple[Any, ...]
    seq: int
    attempts: int = 0
    scheduled_at: datetime | None = None  # None: scheduled by this activation
    last_failed_at: datetime | None = None


@attrs.define
class Effects:
    """What one activation asks of its host, in this order: commit the run's
    pending events (with ``children``) in one transaction, then the rest."""

    commit: bool = False
    children: list[WorkflowRun] = attrs.Factory(list)  # committed, then started
    steps: list[StepToRun] = attrs.Factory(list)
    timers: list[tuple[int, datetime]] = attrs.Factory(list)
    watch: list[str] = attrs.Factory(list)  # children whose end to report
    cancels: list[str] = attrs.Factory(list)  # children to cancel
    finished: bool = False  # the run has ended
    idle: bool | None = None  # waiting with nothing in flight; None: unchanged
    reply: Reply | None = None


@attrs.frozen
class _Wait:
    """The request the suspended coroutine awaits, and the seqs it was given."""

    request: Request
    seqs: tuple[int, ...]


class WorkflowInstance:
    """Drives one run. ``read_only`` replays a finished run (to answer queries,
    or to check history): it records nothing and its effects are empty."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        run: WorkflowRun,
        env: InstanceEnv,
        *,
        read_only: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._definition = definition
        self._run = run
        self._env = env
        self._read_only = read_only
        self._metrics = metrics or Metrics()
        self._coroutine: Coroutine[Any, Any, Any] | None = None
        # Invariant: _seq is the seq of the last command the code issued; every
        # issued command is in the aggregate (committed with this message's events).
        self._seq = 0
        self._thread: threading.Thread | None = None  # running the code, if any
        self._nondeterminism: NonDeterminismError | None = None
        self._guard = Guard(run.id, definition.guard, definition.allow)
        # Invariant: the requests the code made and has not awaited yet, in the
        # order it made them, with where it made them.
        self._unawaited: dict[int, tuple[Request, str]] = {}
        self._in_flight: set[int] = set()  # steps handed (or to hand) to the worker
        self._wait: _Wait | None = None  # None while the coroutine runs or ended
        self._cancel_thrown = False
        self._queries: dict[str, Callable[..., Any]] = {}
        self.failure: BaseException | None = None  # why the run failed, if it did
        self._effects = Effects()

    @property
    def run(self) -> WorkflowRun:
        return self._run

    @property
    def workflow_id(self) -> str:
        return self._run.id

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def idle(self) -> bool:
        """Waiting on something with no step in flight: may be passivated."""
        return self._wait is not None and not self._in_flight

    def activate(self, message: object) -> Effects:
        """Apply ``message``; what the host must do about it. An exception is an
        engine fault: what the message caused is then not to be committed."""
        name = _HANDLERS.get(type(message))
        if name is None:
            raise TypeError(
                f"workflow run {self.workflow_id!r} got a message of unknown "
                f"type {type(message).__qualname__}"
            )
        self._effects = effects = Effects()
        effects.reply = getattr(self, name)(message)
        return effects

    def close(self) -> None:
        """Close the coroutine (its ``finally`` blocks run); nothing more happens."""
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            coroutine.close()

    # -- the runtime the context talks to (see WorkflowRuntime) ---------------------

    def check_inside(self, what: str) -> None:
        if self._thread is None or threading.current_thread() is not self._thread:
            raise ContextError(
                what,
                f"was called outside workflow {self.workflow_id!r}: a context "
                "works only in its own workflow's code, while that code runs",
            )

    def check_encodable(self, value: Any) -> None:
        self._env.check_encodable(value)

    def clock_now(self) -> datetime:
        return self._env.now()

    def record_value(self, kind: ValueKind, make: Callable[[], Any]) -> Any:
        try:
            return RecordedValue(kind, make).resolve(self)
        except NonDeterminismError as error:
            self._nondeterminism = error  # the code may catch it; the run may not
            raise

    def patched(self, patch_id: str) -> bool:
        return Patched(patch_id).resolve(self)

    def publish(self, topic: str, payload: Any, key: str | None) -> str:
        try:
            return Publish(topic, payload, key).resolve(self)
        except NonDeterminismError as error:
            self._nondeterminism = error  # the code may catch it; the run may not
            raise

    def set_query(self, name: str, handler: Callable[..., Any]) -> None:
        self._queries[name] = handler

    def track(self, request: Request, location: str) -> None:
        if isinstance(request, Gather):  # its leaves are awaited with it
            for leaf in request.requests:
                self._unawaited.pop(id(leaf), None)
        self._unawaited[id(request)] = (request, location)

    def untrack(self, request: Request) -> None:
        self._unawaited.pop(id(request), None)

    # -- the driver the commands talk to (see actors._commands.Driver) ---------------

    def take_seq(self) -> int:
        self._seq += 1
        return self._seq

    def set_seq(self, seq: int) -> None:
        self._seq = seq

    def now(self) -> datetime:
        return self._env.now()

    def submit_step(
        self,
        step: ActivityDefinition,
        args: tuple[Any, ...],
        seq: int,
        record: CommandRecord | None,
    ) -> None:
        if self._read_only:
            return
        self._in_flight.add(seq)
        if record is None:
            self._effects.steps.append(StepToRun(step, args, seq))
        else:
            self._effects.steps.append(
                StepToRun(
                    step,
                    args,
                    seq,
                    record.attempts,
                    record.issued_at,
                    record.last_failed_at,
                )
            )

    def add_timer(self, seq: int, fire_at: datetime) -> None:
        if not self._read_only:
            self._effects.timers.append((seq, fire_at))

    def new_child(
        self, child_id: str, definition: WorkflowDefinition, args: tuple[Any, ...]
    ) -> WorkflowRun | None:
        return self._env.new_child(self.workflow_id, child_id, definition, args)

    def add_child(self, child: WorkflowRun) -> None:
        self._effects.children.append(child)

    def watch_child(self, child_id: str) -> None:
        if not self._read_only:
            self._effects.watch.append(child_id)

    def cancel_child(self, child_id: str) -> None:
        self._effects.cancels.append(child_id)

    # -- messages ----------------------------------------------------------------------

    def _apply_start(self, start: Start) -> None:
        context = WorkflowContext(self)
        run = self._run
        args, kwargs = fresh(run.args), fresh(run.kwargs)
        self._coroutine = self._definition.fn(context, *args, **kwargs)
        self._resume(Answer())
        self._settle()

    def _apply_step_outcome(self, outcome: StepOutcome) -> None:
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

    def _apply_attempt_failed(self, failed: AttemptFailed) -> None:
        """Record a failed attempt that will be retried, durably, at once: the
        attempt count, backoff and budget then survive a crash."""
        run, seq = self._run, failed.seq
        if run.is_finished or not run.is_open(seq):
            return  # the run ended while the step ran (it was cancelled)
        if failed.attempt <= run.attempts_at(seq):
            return  # recorded already (an attempt of an earlier activation)
        run.fail_step(
            seq, failed.error, attempt=failed.attempt, final=False, at=failed.at
        )
        self._settle()

    def _apply_timer_due(self, message: TimerDue) -> None:
        seq, run = message.seq, self._run
        wait = self._wait
        if wait is None or seq not in wait.seqs or not run.is_open(seq):
            return  # a receive whose signal came first, or a stale fire
        record = run.command_at(seq)
        now = self._env.now()
        if record.fire_at is not None and now < record.fire_at:
            # Armed by a message whose commit was lost: history's time rules.
            self.add_timer(seq, record.fire_at)
            return
        command_of_kind(record.kind).fire(run, seq, now)
        self._metrics.add("timers_fired")
        if logger.isEnabledFor(logging.DEBUG):
            timer = record.kind is CommandKind.TIMER
            logger.debug(
                "timer fired" if timer else "receive timed out", extra={"seq": seq}
            )
        self._progress()

    def _apply_deliver_signal(self, signal: DeliverSignal) -> Reply:
        try:
            new = self._run.receive_signal(
                signal.topic, signal.payload, signal.signal_id, at=self._env.now()
            )
        except RunError as error:  # refused before any event: the run is intact
            return Reply(error=error)
        if new:
            self._metrics.add("signals_received")
            logger.debug("signal received: %r (id %s)", signal.topic, signal.signal_id)
        self._progress()
        return Reply(signal.signal_id)

    def _apply_child_done(self, done: ChildDone) -> None:
        run = self._run
        if run.is_finished:
            return
        for record in run.open_commands:
            if record.kind is CommandKind.CHILD and record.child_id == done.child_id:
                now = self._env.now()
                if done.error is None:
                    run.complete_child(record.seq, done.result, at=now)
                else:
                    run.fail_child(record.seq, done.error, at=now)
                break
        self._progress()

    def _apply_cancel_run(self, message: CancelRun) -> Reply:
        run = self._run
        if run.is_finished:
            action = f"cancel ({message.reason})"
            return Reply(error=RunFinishedError(self.workflow_id, run.status, action))
        if run.request_cancel(message.reason, at=self._env.now()):
            wait, self._wait = self._wait, None
            if wait is not None:
                self._resume(self._throw_cancel(wait))
        self._settle()
        return Reply()

    def _apply_query(self, query: Query) -> Reply:
        handler = self._queries.get(query.name)
        if handler is None:
            known = tuple(sorted(self._queries))
            return Reply(error=UnknownQueryError(self.workflow_id, query.name, known))
        try:
            return Reply(handler(*query.args))
        except Exception as error:
            info = ErrorInfo.from_exception(error)
            return Reply(error=QueryError(self.workflow_id, query.name, info))

    # -- driving the coroutine --------------------------------------------------------

    def _progress(self) -> None:
        """Resume the coroutine if what it waits for has all ended."""
        wait = self._wait
        if wait is not None:
            answer = wait.request.answer(self, wait.seqs)
            if answer is not None:
                self._wait = None
                self._resume(answer)
        self._settle()

    def _resume(self, answer: Answer | None) -> None:
        while self._coroutine is not None and answer is not None:
            coroutine, guard = self._coroutine, self._guard
            guarded = guard.enter(getattr(coroutine, "cr_frame", None))
            try:
                self._thread = threading.current_thread()
                if answer.error is not None:
                    request = coroutine.throw(answer.error)
                else:
                    request = coroutine.send(answer.value)
            except StopIteration as stop:
                self._end(result=stop.value)
                return
            except Exception as error:
                self._end(error=error)
                return
            finally:
                if guarded:
                    guard.exit()
                self._thread = None
            fatal = self._nondeterminism or guard.error
            if fatal is not None:  # even if the code caught it
                self._end(error=fatal)
                return
            try:
                answer = self._await(request)
            except NonDeterminismError as error:
                self._end(error=error)
                return
            except RunFinishedError:
                if not self._read_only:
                    raise
                self.close()  # replayed as far as the history goes

    def _await(self, request: object) -> Answer | None:
        """Issue what the coroutine awaits; its answer, or None to wait for it."""
        if not isinstance(request, Request) or (
            isinstance(request, Command) and not request.awaitable
        ):
            return Answer(error=_not_a_command(self.workflow_id, request))
        self._unawaited.pop(id(request), None)
        try:
            wait = _Wait(request, request.issue(self))
        except RunConflictError as error:
            return Answer(error=error)
        cancel_at = self._run.cancel_after_seq
        if not self._cancel_thrown and cancel_at is not None and cancel_at <= self._seq:
            return self._throw_cancel(wait)  # where history says it was thrown
        answer = request.answer(self, wait.seqs)
        if answer is None:
            self._wait = wait
        return answer

    def _throw_cancel(self, wait: _Wait) -> Answer:
        self._cancel_thrown = True
        # What the code holds unawaited now, cancelling abandons: not a mistake.
        self._unawaited.clear()
        for seq in wait.seqs:  # children the cancelled await was waiting on
            record = self._run.command_at(seq)
            command_of_kind(record.kind).on_cancel(self, record)
        reason = self._run.cancel_reason or ""
        return Answer(error=WorkflowCancelled(self.workflow_id, reason))

    # -- the end -----------------------------------------------------------------------

    def _end(self, *, result: Any = None, error: BaseException | None = None) -> None:
        self.close()
        self._wait = None
        if self._read_only:
            return
        now = self._env.now()
        if self._nondeterminism is not None:  # even if the code caught it
            error = self._nondeterminism
        elif self._guard.error is not None:
            error = self._guard.error
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
        elif self._unawaited:
            error = self._unawaited_error(error)
        if error is None:
            try:
                self._env.check_encodable(result)
            except TypeError as unencodable:
                error = unencodable
        if error is None:
            self._run.complete(result, at=now)
        elif isinstance(error, WorkflowCancelled) and self._cancel_thrown:
            self._run.cancel(error.reason, at=now)
        else:
            self._run.fail(ErrorInfo.from_exception(error), at=now)
            self.failure = error

    def _unawaited_error(self, raised: BaseException | None) -> UnawaitedCommandError:
        request, location = next(iter(self._unawaited.values()))
        what = None if raised is None else f"{type(raised).__name__}: {raised}"
        error = UnawaitedCommandError(
            self.workflow_id, request.describe(), location, what
        )
        error.__cause__ = raised
        return error

    def _settle(self) -> None:
        """Fill in what the host must commit, and how the run stands now."""
        if self._read_only:
            return
        effects = self._effects
        effects.commit = self._must_commit()
        effects.finished = self._run.is_finished
        effects.idle = None if effects.finished else self.idle

    def _must_commit(self) -> bool:
        # A step's StepScheduled need not be durable before the step runs (the
        # step is at-least-once anyway): alone, it rides with the step's outcome.
        return any(
            not isinstance(event, StepScheduled) or event.seq not in self._in_flight
            for event in self._run.pending_events
        )


_HANDLERS: dict[type, str] = {
    Start: "_apply_start",
    StepOutcome: "_apply_step_outcome",
    AttemptFailed: "_apply_attempt_failed",
    TimerDue: "_apply_timer_due",
    DeliverSignal: "_apply_deliver_signal",
    ChildDone: "_apply_child_done",
    CancelRun: "_apply_cancel_run",
    Query: "_apply_query",
}
"""The method that applies each kind of message (one table, not one per run)."""


def _not_a_command(workflow_id: str, request: object) -> TypeError:
    return TypeError(
        f"workflow {workflow_id!r} awaited {request!r}, which is not a chronik "
        "command; await only ctx.call, ctx.sleep, ctx.sleep_until, ctx.receive, "
        "ctx.spawn and ctx.gather (asyncio and other event loops do not run "
        "inside workflows)"
    )
