"""``ProbedSystem``: an ``ActorSystem`` a test watches and may crash.

A ``Probe`` sees every commit (``save``: one per mailbox message, and one per
spawn) and every step handed to the worker pool. It tells ``Quiescence`` what is
in hand, and asks its ``FaultHooks`` whether to crash at a commit or inside a
step. A crash (``kill``) is a dead process: the system commits nothing more and
starts no step, whatever its threads still try.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pykka

from actors._clock import ManualClock
from actors._definitions import ActivityDefinition
from actors._host import SystemHost
from actors._info import current_info
from actors._system import ActorSystem
from actors._timers import TimerService
from actors._worker import StepJob
from actors.testing._errors import InjectedCrash, InjectedStepFailure
from actors.testing._quiet import Quiescence
from aggregates import RunEvent, WorkflowRun

__all__ = [
    "FaultHooks",
    "Probe",
    "ProbedSystem",
    "SkippingClock",
    "StepAction",
    "describe_events",
]


class SkippingClock(ManualClock):
    """A ``ManualClock`` that remembers the timer service it drove last: the
    one of the system being opened on it (several may share the clock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_driven: TimerService | None = None

    def drive(self, timers: TimerService) -> Callable[[], None]:
        self.last_driven = timers
        return super().drive(timers)


@attrs.frozen
class StepAction:
    """What an injected fault does to one step attempt."""

    crash_before: bool = False  # the system dies before the body runs
    crash_after: bool = False  # the body runs, then the system dies
    fail_before: bool = False  # the attempt raises before the body runs
    fail_after: bool = False  # the body runs, then the attempt raises


class FaultHooks:
    """No faults; a fault plan overrides what it injects."""

    def crash_before_commit(self, number: int, events: Sequence[RunEvent]) -> bool:
        return False

    def crash_after_commit(self, number: int, events: Sequence[RunEvent]) -> bool:
        return False

    def on_step(self, key: str, name: str, attempt: int) -> StepAction:
        return StepAction()


class Probe:
    """The hooks of one system: commits, steps, and its crash."""

    def __init__(
        self,
        clock: SkippingClock,
        faults: FaultHooks | None = None,
        name: str = "the system",
        focus: str | None = None,
    ) -> None:
        self.clock = clock
        self.faults = faults or FaultHooks()
        self.name = name
        self.focus = focus  # the run whose id descriptions of events leave out
        self.quiet = Quiescence()
        self.timers: TimerService | None = None  # the system's, once it is built
        self.crashed = threading.Event()
        self.crash_note = ""  # where it crashed
        self.log: list[str] = []  # each durable commit and injected failure
        self.steps: dict[str, ActivityDefinition] = {}  # by idempotency key
        # Timers whose command has ended: they can only be stale.
        self.closed_timers: set[tuple[str, int]] = set()
        self.on_kill: Callable[[], None] | None = None  # the system winds down
        self.closer: threading.Thread | None = None  # winding it down
        self._condition = threading.Condition()
        # Invariant: once _dead, no commit starts; kill waits out the ones begun.
        self._dead = False
        self._saving = 0
        self._attempted = 0

    @property
    def dead(self) -> bool:
        return self._dead

    @property
    def attempted(self) -> int:
        """Commits tried so far (a crashed one included)."""
        with self._condition:
            return self._attempted

    def kill(self, note: str) -> None:
        """Crash now: every later commit raises and no step starts."""
        with self._condition:
            if self._dead:
                return
            self._dead = True
            self.crash_note = note
            self._condition.wait_for(lambda: self._saving == 0)
        self.crashed.set()
        if self.on_kill is not None:
            self.on_kill()

    def wait_wound_down(self, timeout: float) -> bool:
        """After a crash: whether the dead system's threads ended in time."""
        closer = self.closer
        if closer is not None:
            closer.join(timeout)
        return closer is None or not closer.is_alive()

    def save(
        self,
        save: Callable[..., None],
        run: WorkflowRun,
        children: tuple[WorkflowRun, ...],
    ) -> None:
        events = [
            event
            for r in (run, *children)
            for event in r.pending_events
            if isinstance(event, RunEvent)  # all are: the aggregate's own events
        ]
        with self._condition:
            self._check_alive()
            self._attempted += 1
            number = self._attempted
        described = f"commit {number} [{describe_events(events, self.focus)}]"
        if self.faults.crash_before_commit(number, events):
            self.kill(f"crashed before {described} was durable")
        with self._condition:
            self._check_alive()
            self._saving += 1
        try:
            save(run, *children)
        finally:
            with self._condition:
                self._saving -= 1
                self._condition.notify_all()
        self.log.append(described)
        self.quiet.committed(events)
        if run.is_finished and run.parent_id is not None:
            self.quiet.child_ended(run.parent_id, run.id)
        if self.faults.crash_after_commit(number, events):
            self.kill(f"crashed right after {described} was durable")
            self._check_alive()

    def submit(
        self,
        submit: Callable[[ActivityDefinition], None],
        step: ActivityDefinition,
        workflow_id: str,
        seq: int,
    ) -> None:
        """Hand ``step`` (wrapped, to inject faults) on to the pool with ``submit``."""
        if self._dead:
            return  # a dead process starts nothing
        key = f"{workflow_id}/{seq}"
        self.steps.setdefault(key, step)
        self.quiet.submitted(workflow_id, seq)
        submit(self._wrap(step, key))

    def _check_alive(self) -> None:
        if self._dead:
            raise InjectedCrash(f"{self.name} {self.crash_note}: it writes nothing")

    def _wrap(self, step: ActivityDefinition, key: str) -> ActivityDefinition:
        fn = step.fn

        def enter() -> StepAction:
            self._check_alive()
            info = current_info()
            attempt = 1 if info is None else info.attempt
            action = self.faults.on_step(key, step.name, attempt)
            where = f"in step {key} ({step.name}) attempt {attempt}"
            if action.crash_before:
                self.kill(f"crashed {where}, before its body ran")
                self._check_alive()
            if action.fail_before:
                self.log.append(f"failed {where}, before its body ran (injected)")
                raise InjectedStepFailure(f"injected failure {where}, before its body")
            return action

        def leave(action: StepAction, failed: bool) -> None:
            where = f"in step {key} ({step.name})"
            if action.crash_after:
                self.kill(f"crashed {where} after its body ran, before its outcome")
            if action.fail_after and not failed:
                self.log.append(f"failed {where}, after its body ran (injected)")
                raise InjectedStepFailure(f"injected failure {where}, after its body")

        if step.is_async:

            async def run_async(*args: Any, **kwargs: Any) -> Any:
                action = enter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    leave(action, failed=True)
                    raise
                leave(action, failed=False)
                return result

            return attrs.evolve(step, fn=run_async)

        def run(*args: Any, **kwargs: Any) -> Any:
            action = enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                leave(action, failed=True)
                raise
            leave(action, failed=False)
            return result

        return attrs.evolve(step, fn=run)


_opening = threading.local()  # the probe of the system being opened


class ProbedSystem(ActorSystem):
    """An ``ActorSystem`` whose commits and steps go through its ``probe``
    from the start (the runs resumed while it opens included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.probe: Probe = _opening.probe
        super().__init__(*args, **kwargs)
        self.probe.timers = self.probe.clock.last_driven
        self.probe.on_kill = self._wind_down

    def _wind_down(self) -> None:
        """Close a crashed system in the background: its threads end, its
        commits and steps are refused already (``close`` writes only the index
        checkpoint, which the journal's log alone determines). Its presence
        goes at once, as a dead process's lock does: the next system takes its
        partitions on opening, not after their leases expire."""
        self.crash_presence()
        closer = threading.Thread(
            target=self._close_quietly, name="chronik-test-crashed", daemon=True
        )
        self.probe.closer = closer
        closer.start()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @classmethod
    def open_probed(cls, path: str, probe: Probe, **options: Any) -> ProbedSystem:
        _opening.probe = probe
        try:
            return cls.open(path, clock=probe.clock, **options)
        finally:
            del _opening.probe

    def _make_host(self, snapshot_every: int) -> SystemHost:
        return ProbedHost(self.probe, **self._host_parts(snapshot_every))


class ProbedHost(SystemHost):
    """A system's host whose commits and steps go through a probe first."""

    def __init__(self, probe: Probe, **parts: Any) -> None:
        super().__init__(**parts)
        self._probe = probe

    def commit(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        self._probe.save(super().commit, run, children)

    def submit_step(self, job: StepJob, reply_to: pykka.ActorRef[Any]) -> None:
        def submit(wrapped: ActivityDefinition) -> None:
            super(ProbedHost, self).submit_step(
                attrs.evolve(job, step=wrapped), reply_to
            )

        self._probe.submit(submit, job.step, job.workflow_id, job.seq)


def describe_events(events: Sequence[RunEvent], focus: str | None = None) -> str:
    """``Started, StepScheduled(1), child-1:Started``: each event with its seq,
    and its run unless that is ``focus``."""
    parts = []
    for event in events:
        seq = getattr(event, "seq", None)
        part = type(event).__name__ if seq is None else f"{type(event).__name__}({seq})"
        run = str(event.originator_id)
        parts.append(part if run == focus else f"{run}:{part}")
    return ", ".join(parts)
