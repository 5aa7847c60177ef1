"""``RunHost``: the only service a run's actor sees.

It carries out an activation's ``Effects`` in order: the run's pending events
(and the child runs it spawned) in one commit, then the children start, steps go
to the worker, timers are armed, children are watched and cancelled. Everything
else a run's actor asks of its system (restart budget, passivation, its end)
goes through here too; this is where ownership of runs will be checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pykka

from actors._definitions import WorkflowDefinition
from actors._instance import Effects, InstanceEnv
from actors._ref import RunHandle
from aggregates import WorkflowRun

if TYPE_CHECKING:
    from actors._system import ActorSystem

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
    def may_restart(self, handle: RunHandle) -> bool:
        """Count a fault of the run's actor; whether a restart is still allowed."""

    def load_run(self, workflow_id: str) -> WorkflowRun:
        """The run as the journal holds it now."""

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        """Detach the run's actor if no message is waiting for it."""


class SystemHost:
    """The host of the runs of one ``ActorSystem``."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system

    def now(self) -> datetime:
        return self._system.now()

    def check_encodable(self, value: Any) -> None:
        self._system.check_encodable(value)

    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        return self._system.new_child(parent_id, child_id, definition, args)

    def apply(
        self, run: WorkflowRun, effects: Effects, reply_to: pykka.ActorRef[Any]
    ) -> None:
        system = self._system
        if effects.commit:
            system.save(run, *effects.children)
            if effects.children:
                system.start_runs(effects.children)
        for step, args, seq in effects.steps:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("step %s scheduled", step.name, extra={"seq": seq})
            system.submit_step(step, args, run.id, seq, reply_to)
        for seq, fire_at in effects.timers:
            system.add_timer(run.id, seq, fire_at)
        for child_id in effects.watch:
            system.watch_child(run.id, child_id)
        for child_id in effects.cancels:
            reason = f"parent {run.id!r} was cancelled: {run.cancel_reason}"
            system.cancel_run(child_id, reason)

    def run_finished(self, run: WorkflowRun) -> None:
        self._system.run_finished(run)

    def run_broken(self, workflow_id: str) -> None:
        self._system.run_broken(workflow_id)

    def may_restart(self, handle: RunHandle) -> bool:
        return self._system.may_restart(handle)

    def load_run(self, workflow_id: str) -> WorkflowRun:
        return self._system.load_run(workflow_id)

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        return self._system.passivate(workflow_id, inbox_empty)
