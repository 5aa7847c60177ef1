"""``RunActor``: the mailbox shell around one run's ``WorkflowInstance``.

Each message goes to the instance, whose effects go to the ``RunHost`` (one
commit, then steps, timers and children); the host is the only service the actor
sees. What stays here is what only an actor has: its mailbox and ref, faults
(restart by the supervisor, or break-off), passivation, and the run's end.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from actors._definitions import WorkflowDefinition
from actors._errors import (
    PartitionLostError,
    RunCancelledError,
    RunUnavailableError,
    WorkflowFailedError,
)
from actors._host import RunHost
from actors._instance import Effects, Start, WorkflowInstance
from actors._logs import RunScope, enter_scope, leave_scope
from actors._messages import Passivate, Reply, WorkerFailed
from actors._metrics import Metrics
from actors._ref import RunHandle
from aggregates import RunStatus, WorkflowRun
from journal import FencedOutError
from supervision import DispatchedActor, Dispatcher

__all__ = ["RunActor"]

logger = logging.getLogger("chronik.actors")


class RunActor(DispatchedActor):
    """Drives one run. Under a supervisor (the system's ``runs``), an engine
    fault ends this incarnation as a failure and the supervisor starts another,
    which replays the run's history; refs, which hold the run's handle rather
    than an actor, carry on. ``read_only`` replays a finished run to answer
    queries and records nothing. Runs share the threads of ``dispatcher``."""

    def __init__(
        self,
        host: RunHost,
        definition: WorkflowDefinition,
        run: WorkflowRun,
        handle: RunHandle,
        *,
        dispatcher: Dispatcher,
        read_only: bool = False,
        reload: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        super().__init__()
        self._metrics = metrics or Metrics()  # the system's counters
        self._log_scope = RunScope(run.id)  # log records while it handles the run
        self._host = host
        self._definition = definition
        self._workflow_id = run.id
        self._instance = self._new_instance(run, read_only)
        self._handle = handle
        self._read_only = read_only
        self._reload = reload  # read the run again from the journal in on_start
        self._broken: BaseException | None = None  # stopped on this error
        self._replaced = False  # failed, for its supervisor to start another
        if not self._read_only:
            handle.attach(self.actor_ref)  # before on_start: a timer may fire at once

    def _new_instance(self, run: WorkflowRun, read_only: bool) -> WorkflowInstance:
        return WorkflowInstance(
            self._definition,
            run,
            self._host,
            read_only=read_only,
            metrics=self._metrics,
        )

    @property
    def workflow_id(self) -> str:
        return self._workflow_id

    # -- lifecycle ---------------------------------------------------------------

    def on_start(self) -> None:
        scope = enter_scope(self._log_scope)
        try:
            if self._reload:  # a restart: the run as the journal holds it now
                run = self._host.load_run(self.workflow_id)
                self._instance = self._new_instance(run, self._read_only)
            if not self._read_only:
                self._note_activation()
            if self._instance.run.is_finished and not self._read_only:
                # Restarted after a fault that followed the run's last commit.
                self._finish()
                return
            self._apply(self._instance.activate(Start()))
        except Exception as error:
            self._fault(error)
        finally:
            leave_scope(scope)

    def _note_activation(self) -> None:
        metrics, run = self._metrics, self._instance.run
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
        scope = enter_scope(self._log_scope)
        try:
            if isinstance(message, Passivate):
                return self._on_passivate(message)
            if isinstance(message, WorkerFailed):
                raise message.error
            effects = self._instance.activate(message)
            self._apply(effects)
            return effects.reply
        except Exception as error:
            return self._fault(error)
        finally:
            leave_scope(scope)

    def _apply(self, effects: Effects) -> None:
        """Hand the effects to the host; then note how the run stands."""
        if self._read_only:
            return
        self._host.apply(self._instance.run, effects, self.actor_ref)
        if effects.finished:
            self._finish()
        elif effects.idle is not None:
            self._handle.idle_since = time.monotonic() if effects.idle else None

    def _fault(self, error: BaseException) -> Reply:
        """An engine fault (the workflow's own failure is its result, not this).

        History is intact: what this message caused was saved in one commit or
        not at all. Supervised and within the run's restart budget, this
        incarnation fails and its supervisor replays the run in a new one (an
        asker is asked to retry there); otherwise the run breaks off: its refs
        say why until a message or the next open activates it again."""
        self._broken = error
        self._instance.close()
        if self._read_only:
            self.stop()
        elif isinstance(error, FencedOutError | PartitionLostError):
            logger.warning(
                "another host took this run's partition (%s): this host stops "
                "driving the run; its new owner replays it",
                error,
            )
            self._host.run_released(self.workflow_id)
            self.stop()
        elif self._supervision_link is not None and self._host.may_restart(
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
            self._host.run_broken(self.workflow_id)
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

    def _on_passivate(self, message: Passivate) -> None:
        if self._handle.idle_since != message.idle_since or not self._instance.idle:
            return  # something happened since the system looked
        if self._host.passivate(self.workflow_id, self.actor_inbox.empty):
            logger.debug("passivated: idle, its actor stops until a message comes")
            self._instance.close()
            self.stop()

    def _finish(self) -> None:
        run = self._instance.run
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
            failed.__cause__ = self._instance.failure
            self._handle.finish(run.status, error=failed)
        self._host.run_finished(run)
        self.stop()
