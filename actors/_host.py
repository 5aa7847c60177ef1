"""``RunHost``: the only service a run's actor sees.

It carries out an activation's ``Effects`` in order: the run's pending events
(and the child runs it spawned) in one commit, then the children start, steps go
to the worker, timers are armed, children are watched and cancelled. Everything
else a run's actor asks of its system (restart budget, passivation, its end)
goes through here too; this is where ownership of runs will be checked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pykka
from eventsourcing.application import Application

from actors._clock import Clock
from actors._definitions import WorkflowDefinition
from actors._errors import PartitionLostError
from actors._instance import Effects, InstanceEnv, StepToRun
from actors._messages import AttemptFailed, CancelRun, StepOutcome, WorkerFailed
from actors._pool import on_pool_thread
from actors._ref import RunHandle
from actors._timers import TimerService
from actors._worker import StepJob, Worker, WorkerError
from aggregates import MessagePublished, RunSnapshot, WorkflowRun
from journal import Fence, MsgpackTranscoder, partition_of
from supervision import inline_turns

if TYPE_CHECKING:
    from actors._router import Router

__all__ = ["RunHost", "SystemHost"]

logger = logging.getLogger("chronik.actors")


class RunHost(InstanceEnv, Protocol):
    """What a run's actor asks of its system; what its instance reads too."""

    def apply(
        self, run: WorkflowRun, effects: Effects, reply_to: pykka.ActorRef[Any]
    ) -> None:
        """Carry out ``effects``: one commit first, then everything else."""

    def run_finished(self, run: WorkflowRun) -> None: ...
    def run_broken(self, workflow_id: str) -> None: ...
    def run_released(self, workflow_id: str) -> None:
        """The run's partition was taken by another host: forget its actor."""

    def may_restart(self, handle: RunHandle) -> bool:
        """Count a fault of the run's actor; whether a restart is still allowed."""

    def load_run(self, workflow_id: str) -> WorkflowRun:
        """The run as the journal holds it now."""

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        """Detach the run's actor if no message is waiting for it."""


class SystemHost:
    """The host of the runs of one ``ActorSystem``: the journal, the worker and
    the timers are its own; the registry of runs is the router's."""

    def __init__(
        self,
        app: Application[str],
        router: Router,
        worker: Worker,
        timers: TimerService,
        *,
        clock: Clock,
        transcoder: MsgpackTranscoder,
        snapshot_every: int,
        closing: threading.Event,
        fence_for: Callable[[int], Fence | None] | None = None,
        partition_lost: Callable[[int], None] = lambda partition: None,
    ) -> None:
        self._app = app
        # Told when a commit found a partition taken over: stop claiming it now,
        # not at the next lease round.
        self._partition_lost = partition_lost
        # The fence of a partition this host drives (None: it does not);
        # None for a host that drives every run unfenced.
        self._fence_for = fence_for
        self._router = router
        self._worker = worker
        self._timers = timers
        self._clock = clock
        self._transcoder = transcoder
        self._snapshot_every = snapshot_every
        self._closing = closing
        # Called after a commit that carried a published message (the outbox's
        # relays are told at once, not at their next look); None: no relay.
        self.on_published: Callable[[], None] | None = None

    # -- what an instance reads ------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def check_encodable(self, value: Any) -> None:
        self._transcoder.encode(value)

    def normalise(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""
        return self._transcoder.decode(self._transcoder.encode(value))

    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        args_list = self.normalise(list(args))
        return self._router.new_child(
            parent_id, child_id, definition, args_list, at=self._clock.now()
        )

    # -- effects -----------------------------------------------------------------------

    def apply(
        self, run: WorkflowRun, effects: Effects, reply_to: pykka.ActorRef[Any]
    ) -> None:
        if effects.commit:
            self.commit(run, *effects.children)
            if effects.children:
                self._router.start_runs(effects.children)
        now = self._clock.now() if effects.steps else None
        for step in effects.steps:
            if logger.isEnabledFor(logging.DEBUG):
                extra = {"seq": step.seq}
                logger.debug("step %s scheduled", step.step.name, extra=extra)
            assert now is not None
            self.submit_step(_job(run.id, step, now, self._token(run.id)), reply_to)
        for seq, fire_at in effects.timers:
            self._timers.add(run.id, seq, fire_at)
        for child_id in effects.watch:
            self._router.watch_child(run.id, child_id)
        for child_id in effects.cancels:
            reason = f"parent {run.id!r} was cancelled: {run.cancel_reason}"
            self._router.tell(child_id, CancelRun(reason))

    def commit(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        """Append the runs' pending events in one commit; snapshot when due.

        This is ``Application.save`` without its bookkeeping, which costs more
        than the commit, and with snapshots taken from the aggregate in hand
        rather than rebuilt from the journal.
        """
        mapper = self._app.mapper
        events = list(run.collect_events())
        own = len(events)  # the run's versions up to run.version, in order
        for child in children:
            events += child.collect_events()
        stored = [mapper.to_stored_event(e) for e in events]
        fence = self._fence(run) if own and run.version > own else None
        if fence is None:
            self._app.recorder.insert_events(stored)
        else:  # refused whole if another host took the run's partition since
            self._app.recorder.insert_events(stored, fence=fence)
        published = self.on_published
        if published is not None and any(
            isinstance(e, MessagePublished) for e in events
        ):
            published()
        every = self._snapshot_every
        if own and run.version // every > (run.version - own) // every:
            snapshot = RunSnapshot.take(run)
            assert self._app.snapshots is not None
            self._app.snapshots.put([snapshot])

    def _token(self, workflow_id: str) -> int | None:
        """The fencing token this host drives the run under (None: not held)."""
        if self._fence_for is None:
            return None
        fence = self._fence_for(partition_of(workflow_id))
        return None if fence is None else fence.token

    def _fence(self, run: WorkflowRun) -> Fence | None:
        """The fence for a commit of ``run``'s events past its start (starting
        a run needs none: a new stream conflicts by itself)."""
        if self._fence_for is None:
            return None
        partition = partition_of(run.id)
        fence = self._fence_for(partition)
        if fence is None:
            raise PartitionLostError(run.id, partition)
        return fence

    def submit_step(self, job: StepJob, reply_to: pykka.ActorRef[Any]) -> None:
        """Run ``job`` on the worker; tell ``reply_to`` each failed attempt that
        will be retried (recorded at once) and then the outcome."""
        if self._closing.is_set():
            return  # not recorded: it runs when the journal is reopened

        def report(message: AttemptFailed | StepOutcome | WorkerError) -> None:
            if isinstance(message, WorkerError):
                _tell(reply_to, WorkerFailed(message.seq, message.error))
            elif on_pool_thread():
                # The step is done with its thread: the run's actor handles its
                # outcome here, if idle, with no hand-off to a dispatcher thread.
                with inline_turns():
                    _tell(reply_to, message)
            else:
                _tell(reply_to, message)

        self._worker.submit(job, report)

    # -- the run's life --------------------------------------------------------------

    def run_finished(self, run: WorkflowRun) -> None:
        self._router.run_finished(run)

    def run_broken(self, workflow_id: str) -> None:
        self._router.run_broken(workflow_id)

    def run_released(self, workflow_id: str) -> None:
        self._partition_lost(partition_of(workflow_id))
        self._router.run_released(workflow_id)

    def may_restart(self, handle: RunHandle) -> bool:
        return self._router.may_restart(handle)

    def load_run(self, workflow_id: str) -> WorkflowRun:
        return self._router.load_run(workflow_id)

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        return self._router.passivate(workflow_id, inbox_empty)


def _job(
    workflow_id: str, step: StepToRun, now: datetime, token: int | None = None
) -> StepJob:
    """The worker's job for ``step``: a step history holds already goes on from
    its next attempt, with its budget spent since it was scheduled and what is
    left of the backoff after its last failed attempt."""
    if step.scheduled_at is None:
        return StepJob(step.step, step.args, workflow_id, step.seq, fencing_token=token)
    spent = max(0.0, (now - step.scheduled_at).total_seconds())
    delay = 0.0
    if step.attempts and step.last_failed_at is not None:
        since = (now - step.last_failed_at).total_seconds()
        delay = max(0.0, step.step.retry.delay(step.attempts) - since)
    return StepJob(
        step.step,
        step.args,
        workflow_id,
        step.seq,
        first_attempt=step.attempts + 1,
        spent=spent,
        delay=delay,
        fencing_token=token,
    )


def _tell(actor: pykka.ActorRef[Any], message: Any) -> None:
    # A stopped actor's run resumes by replay on the next open; the message
    # (a step outcome, a timer fire) is then redone from history.
    with contextlib.suppress(pykka.ActorDeadError):
        actor.tell(message)
