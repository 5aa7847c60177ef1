"""``Router``: the registry of a system's runs, their activation and passivation.

A run is *live* (an actor drives it), *passive* (on disk only: waiting on a timer,
a signal or a child with nothing in flight, past the idle timeout) or finished.
Every message for a run goes through here, which activates a passive run by
replay; passivation and routing hold the same lock, so no message is lost to an
actor that is stopping.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pykka
from eventsourcing.application import AggregateNotFoundError, Application

from actors._commands import command_of_kind
from actors._definitions import WorkflowDefinition, resolve_workflow
from actors._errors import (
    RunCancelledError,
    RunConflictError,
    RunUnavailableError,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowFailedError,
)
from actors._host import RunHost
from actors._messages import (
    CancelRun,
    ChildDone,
    DeliverSignal,
    Passivate,
    Query,
    Reply,
)
from actors._metrics import Metrics
from actors._ref import RunHandle
from actors._run_actor import RunActor
from aggregates import (
    ErrorInfo,
    RunEvent,
    RunFinishedError,
    RunSnapshot,
    RunStatus,
    Started,
    WorkflowRun,
)
from journal import partition_of
from supervision import ChildSpec, Dispatcher, Restart, SupervisorRef, inline_turns

__all__ = ["Router"]

RESTART_PERIOD = 5.0  # seconds over which a run's restarts are counted


class Router:
    """Finds, activates, routes to and passivates the runs of one journal."""

    def __init__(
        self,
        app: Application[str],
        runs: SupervisorRef,
        dispatcher: Dispatcher,
        metrics: Metrics,
        *,
        max_run_restarts: int,
        closing: threading.Event,
        check_open: Callable[[], None],
        owns: Callable[[str], bool] = lambda workflow_id: True,
    ) -> None:
        self._app = app
        self.owns = owns  # whether this host drives the run (holds its partition)
        self._runs = runs  # the supervisor of the runs' actors
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._max_run_restarts = max_run_restarts
        self._closing = closing
        self._check_open = check_open
        self.host: RunHost | None = None  # set once, before any run starts
        self.lock = threading.RLock()
        # Handles anyone still holds (a ref, an actor): one object per run.
        self._handles: weakref.WeakValueDictionary[str, RunHandle] = (
            weakref.WeakValueDictionary()
        )
        # Invariant: exactly the runs with a live, unfinished actor are here.
        self._live: dict[str, RunHandle] = {}
        # Runs whose actor broke off (or whose code is gone), kept so that their
        # refs keep saying why until a message activates them again.
        self._broken: dict[str, RunHandle] = {}
        self.passivations = 0  # how many times a run gave up its actor
        self.restarts = 0  # how many times a supervisor replaced a run's actor

    @property
    def live_runs(self) -> int:
        return len(self._live)

    def live_handles(self) -> list[RunHandle]:
        with self.lock:
            return list(self._live.values())

    # -- the registry ----------------------------------------------------------------

    def known(self, workflow_id: str) -> RunHandle | None:
        """The handle of run ``workflow_id`` if someone holds it now."""
        return self._handles.get(workflow_id)

    def find(self, workflow_id: str) -> RunHandle | None:
        """The handle of run ``workflow_id``, read from the journal if need be."""
        handle = self._handles.get(workflow_id)
        if handle is not None:
            return handle
        run = self.get_run(workflow_id)
        if run is None:
            return None
        with self.lock:
            return self.handle_of(run)

    def get_run(self, workflow_id: str) -> WorkflowRun | None:
        return read_run(self._app, workflow_id)

    def load_runs(self, workflow_ids: Sequence[str]) -> Iterator[WorkflowRun]:
        """The runs the journal holds of ``workflow_ids``, in that order: read
        in bulk (one transaction for all, a seek each) where the recorders can,
        else one by one. For opening a journal of many unfinished runs."""
        app = self._app
        bulk = getattr(app.recorder, "select_streams", None)
        store = app.snapshots
        snapshots = None if store is None else store.recorder
        bulk_snapshots = getattr(snapshots, "select_streams", None)
        if bulk is None or (snapshots is not None and bulk_snapshots is None):
            for workflow_id in workflow_ids:
                if (run := self.get_run(workflow_id)) is not None:
                    yield run
            return
        last = {}
        if bulk_snapshots is not None:
            last = bulk_snapshots(workflow_ids, last_only=True)
        taken = {i: found[0].originator_version for i, found in last.items() if found}
        streams = bulk(workflow_ids, gt=taken)
        mapper = app.mapper
        for workflow_id in workflow_ids:
            stored = [*last.get(workflow_id, ()), *streams.get(workflow_id, ())]
            if stored:
                events = (mapper.to_domain_event(s) for s in stored)
                run = _project(None, events)  # type: ignore[arg-type]
                assert isinstance(run, WorkflowRun)
                yield run

    def load_run(self, workflow_id: str) -> WorkflowRun:
        """The run as the journal holds it now."""
        run = self.get_run(workflow_id)
        if run is None:
            raise UnknownRunError(workflow_id)
        return run

    def handle_of(self, run: WorkflowRun) -> RunHandle:
        handle = self._handles.get(run.id)
        if handle is None:
            handle = RunHandle(run.id, run.name, list(run.args))
            self._handles[run.id] = handle
        if run.is_finished and not handle.finished:
            status, result, error = ending_of(run)
            handle.finish(status, result, error)
        elif handle.actor is None and not run.is_finished:
            # Kept for the next activation only while this host drives the
            # run: another host's progress would make it stale.
            handle.loaded = run if self.owns(run.id) else None
        return handle

    @staticmethod
    def check_same(handle: RunHandle, name: str, args: list[Any]) -> None:
        if (handle.name, handle.args) != (name, args):
            raise RunConflictError(
                handle.workflow_id,
                f"{handle.name}{tuple(handle.args)!r}",
                f"{name}{tuple(args)!r}",
            )

    # -- activation ------------------------------------------------------------------

    def start(
        self, definition: WorkflowDefinition, run: WorkflowRun
    ) -> pykka.ActorRef[Any] | None:
        """Start the run's actor under the ``runs`` supervisor. Hold the lock.

        The first incarnation starts here (adopted by the supervisor, with no
        round trip to its thread); restarts run the factory in the supervisor's
        thread, which never waits for a run's actor while it does, so holding
        the lock here is safe; it waits for actors only when it stops them
        (closing, giving up), and the system stops the runs' actors itself
        first.
        """
        host = self.host
        assert host is not None
        handle = self.handle_of(run)
        if not self.owns(run.id):
            # Another host drives it (it finds the run in the journal): what
            # this host read of it goes stale, so it is not kept for later.
            handle.loaded = None
            return None
        if handle.actor is not None:
            # Started already: a lease round or a wake resumed the run between
            # its spawn's commit and this start (a second actor would run its
            # steps again).
            return handle.actor
        if not run.is_finished:
            self._live[run.id] = handle
            self._broken.pop(run.id, None)
        handle.activations += 1
        starts = itertools.count()

        def start() -> pykka.ActorRef[Any]:
            # Never raises: a restart reads the journal in the actor's on_start,
            # where a failure is one more fault of the run, not of this factory.
            # The first start runs here; restarts in the supervisor's thread.
            reload = next(starts) > 0
            if reload:
                handle.restarts += 1
                self.restarts += 1
            return RunActor.start(
                host,
                definition,
                run,
                handle,
                dispatcher=self._dispatcher,
                reload=reload,
                metrics=self._metrics,
            )

        child_id = _child_id(run.id, handle.activations)
        return self._runs.adopt_child(ChildSpec(child_id, start, Restart.TRANSIENT))

    def start_runs(self, runs: Iterable[WorkflowRun]) -> None:
        """Start runs just committed (children with their parent, or spawned)."""
        with self.lock:
            for run in runs:
                if not self._closing.is_set() and self.owns(run.id):
                    self.start(resolve_workflow(run.name), run)

    def activate(
        self, handle: RunHandle, run: WorkflowRun | None = None
    ) -> pykka.ActorRef[Any]:
        """The run's live actor, started by replay if it has none. Hold the lock."""
        if handle.actor is not None:
            return handle.actor
        self._check_open()
        action = "take messages"
        if handle.finished:
            raise RunFinishedError(handle.workflow_id, handle.status, action)
        run = run or handle.loaded or self.get_run(handle.workflow_id)
        if run is None:
            raise UnknownRunError(handle.workflow_id)
        if run.is_finished:
            self.handle_of(run)
            raise RunFinishedError(handle.workflow_id, run.status, action)
        if not self.owns(handle.workflow_id):
            reason = "another host drives it (this one does not hold its partition)"
            raise RunUnavailableError(handle.workflow_id, reason)
        try:
            definition = resolve_workflow(run.name)
        except UnknownWorkflowError as error:
            handle.break_off(error)  # ref.result() says why it cannot resume
            self._broken[handle.workflow_id] = handle
            raise
        # The ref, even if on_start has already ended the run (a later ask then
        # finds the actor dead and reports how the run ended).
        actor = self.start(definition, run)
        assert actor is not None  # owned: checked above
        return actor

    def resume(self, run: WorkflowRun) -> None:
        """Activate an unfinished run at open if it has work to do now; the
        others wait passive for a message (from the state just read: a
        handle this host made while another host drove the run holds an older
        one)."""
        if not _has_work(run):
            with self.lock:
                self.handle_of(run)  # its next activation replays this state
            return
        with (
            self.lock,
            contextlib.suppress(
                UnknownWorkflowError, RunFinishedError, RunUnavailableError
            ),
        ):
            # A run whose code is gone reports it on its handle (ref.result)
            # and does not keep the journal's other runs from resuming; a
            # child its parent's replay started may have finished by now.
            self.activate(self.handle_of(run), run)

    def _replay_read_only(self, handle: RunHandle) -> pykka.ActorRef[Any]:
        """An actor that replays the run as the journal holds it now and answers
        queries, with no effect: a finished run, or one another host drives."""
        run = self.load_run(handle.workflow_id)
        if run.is_finished:
            self.handle_of(run)
        assert self.host is not None
        return RunActor.start(
            self.host,
            resolve_workflow(run.name),
            run,
            handle,
            dispatcher=self._dispatcher,
            read_only=True,
        )

    # -- routing messages to runs ----------------------------------------------------

    def ask(self, handle: RunHandle, message: Any, timeout: float | None) -> Reply:
        """Deliver ``message`` to the run's actor and wait for its reply.

        An actor that dies before answering (a fault: its supervisor replaces it
        by replay) is asked again in its replacement, until ``timeout``; the
        messages are idempotent (a signal by its id, a cancel, a query)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        retried = False
        while True:
            self._check_open()
            try:
                actor, reply = self._ask_once(handle, message, deadline)
            except RunFinishedError:
                if retried and (answer := self._answer_from_history(handle, message)):
                    return answer
                raise
            if reply is not None and not reply.retry:
                return reply
            retried = True
            if deadline is not None and time.monotonic() >= deadline:
                raise pykka.Timeout(f"{handle.workflow_id!r} was being restarted")
            handle.wait_replaced(actor, deadline)

    def _answer_from_history(self, handle: RunHandle, message: Any) -> Reply | None:
        """A retried signal or cancel whose first ask was recorded, in the commit
        that also ended the run, before the actor faulted: it took effect."""
        run = self.get_run(handle.workflow_id)
        if run is None:
            return None
        if isinstance(message, DeliverSignal) and message.signal_id in run.signal_ids:
            return Reply(message.signal_id)
        if isinstance(message, CancelRun) and run.cancel_requested:
            return Reply()
        return None

    def _ask_once(
        self, handle: RunHandle, message: Any, deadline: float | None
    ) -> tuple[pykka.ActorRef[Any], Reply | None]:
        read_only = None
        with self.lock:
            if isinstance(message, Query) and (
                handle.finished or not self.owns(handle.workflow_id)
            ):
                read_only = self._replay_read_only(handle)
                actor = read_only
            else:
                actor = self.activate(handle)
        # Outside the lock (an actor passivated meanwhile answers dead, and the
        # message is asked again of its next activation). The asker waits for
        # the reply anyway: an idle actor's turn runs here, in the asker's
        # thread, with no hand-off to a dispatcher thread and back.
        with inline_turns():
            future = actor.ask(message, block=False)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            reply: Reply = future.get(timeout=timeout)
        except pykka.ActorDeadError:
            if handle.finished:
                action = f"handle {type(message).__name__}"
                raise RunFinishedError(
                    handle.workflow_id, handle.status, action
                ) from None
            # Died first: replaced by its supervisor, broken off or passivated.
            return actor, None
        finally:
            if read_only is not None:
                read_only.stop(block=False)
        return actor, reply

    def tell(self, workflow_id: str, message: Any) -> None:
        """Deliver ``message`` to an unfinished run, activating it; else drop it."""
        if self._closing.is_set():
            return  # redone from history when the journal is reopened
        with self.lock:
            handle = self.find(workflow_id)
            if handle is None or handle.finished:
                return
            try:
                self.activate(handle)
            except (RunUnavailableError, RunFinishedError, UnknownWorkflowError):
                return  # it resumes (or reports why not) on the next open
            handle.tell(message)

    # -- what a run's host asks ------------------------------------------------------

    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: list[Any],
        at: Any,
    ) -> WorkflowRun | None:
        """A child run to commit with its parent, or ``None`` if ``child_id``
        names the same run already; ``RunConflictError`` if another."""
        with self.lock:
            existing = self.find(child_id)
            if existing is not None:
                self.check_same(existing, definition.name, args)
                return None
            return WorkflowRun.start(
                child_id, definition.name, args, parent_id=parent_id, at=at
            )

    def watch_child(self, parent_id: str, child_id: str) -> None:
        """The parent waits on the child: tell it if the child has ended, else
        make sure the child runs (its start may have been lost to a fault)."""
        with self.lock:
            child = self.find(child_id)
            if child is not None and not child.finished:
                with contextlib.suppress(
                    RunUnavailableError, RunFinishedError, UnknownWorkflowError
                ):
                    self.activate(child)
        if child is not None and child.finished:
            self.tell(parent_id, _child_done(child_id, child))

    def run_finished(self, run: WorkflowRun) -> None:
        with self.lock:
            self._live.pop(run.id, None)
            handle = self.handle_of(run)
        if run.parent_id is not None:
            self.tell(run.parent_id, _child_done(run.id, handle))

    def run_broken(self, workflow_id: str) -> None:
        with self.lock:
            handle = self._live.pop(workflow_id, None)
            if handle is not None:
                self._broken[workflow_id] = handle

    def run_released(self, workflow_id: str) -> None:
        """The run's actor stopped because this host no longer drives the run."""
        with self.lock:
            handle = self._live.pop(workflow_id, None)
            if handle is not None:
                handle.actor = None
                handle.idle_since = None

    def busy(self, partition: int) -> bool:
        """Whether a run of ``partition`` has a step (or turn) in flight here:
        one waiting with nothing in flight, or passive, is not busy."""
        with self.lock:
            return any(
                handle.idle_since is None and partition_of(run_id) == partition
                for run_id, handle in self._live.items()
            )

    def release(self, partitions: frozenset[int]) -> list[str]:
        """Stop the actors of the live runs in ``partitions`` (the host lost them,
        or gives them back), with no restart; the runs they drove."""
        with self.lock:
            leaving = [
                handle
                for run_id, handle in self._live.items()
                if partition_of(run_id) in partitions
            ]
            for handle in leaving:
                del self._live[handle.workflow_id]
            for run_id, handle in list(self._handles.items()):
                if partition_of(run_id) in partitions:
                    handle.loaded = None  # the next owner moves it on
        stopping = []
        for handle in leaving:
            actor, handle.actor, handle.idle_since = handle.actor, None, None
            if actor is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    stopping.append(actor.stop(block=False))
        for future in stopping:
            with contextlib.suppress(pykka.ActorDeadError):
                future.get()
        return [handle.workflow_id for handle in leaving]

    def settled(self, handle: RunHandle) -> bool:
        """Whether the run has ended; unless an actor here drives it (and sets
        ``done`` when it ends), read from the journal and noted on ``handle``:
        another host may have ended it, even one that took it from this host."""
        if handle.done.is_set():
            return True
        if handle.actor is not None and self.owns(handle.workflow_id):
            return False  # its actor here sets ``done`` when it ends
        run = self.get_run(handle.workflow_id)
        if run is None or not run.is_finished:
            return False
        with self.lock:
            self.handle_of(run)  # finishes the handle
        return True

    def may_restart(self, handle: RunHandle) -> bool:
        """Count a fault of the run's actor; whether a restart is still allowed."""
        faults = handle.fault(time.monotonic(), RESTART_PERIOD)
        if self._closing.is_set():
            return False  # nothing restarts while the system closes
        return faults <= self._max_run_restarts

    # -- passivation -----------------------------------------------------------------

    def passivate(self, workflow_id: str, inbox_empty: Callable[[], bool]) -> bool:
        """Detach the run's actor if no message is waiting for it."""
        with self.lock:
            handle = self._live.get(workflow_id)
            if handle is None or not inbox_empty():
                return False
            del self._live[workflow_id]
            handle.actor = None
            handle.idle_since = None
            self.passivations += 1
            return True

    def passivate_idle(self, idle_timeout: float) -> None:
        """Ask every run idle for ``idle_timeout`` seconds to give up its actor."""
        now = time.monotonic()
        for handle in self.live_handles():
            since, actor = handle.idle_since, handle.actor
            if since is not None and actor is not None and now - since >= idle_timeout:
                with contextlib.suppress(pykka.ActorDeadError):
                    actor.tell(Passivate(since))


def _child_id(workflow_id: str, activation: int) -> str:
    """The run's id in the ``runs`` supervisor: unique per activation (the
    previous activation's actor may not have left yet), without ``/``."""
    escaped = workflow_id.replace("%", "%25").replace("/", "%2F")
    return f"{escaped}#{activation}"


def _has_work(run: WorkflowRun) -> bool:
    """Whether an unfinished run needs its actor now, not only on a message."""
    open_commands = run.open_commands
    if not open_commands:
        return True  # started, or ended in code, but its next events were lost
    return any(
        command_of_kind(record.kind).needs_actor(run, record)
        for record in open_commands
    )


def read_run(app: Application[str], workflow_id: str) -> WorkflowRun | None:
    """Run ``workflow_id`` as ``app``'s journal holds it now; None if none."""
    try:
        run: WorkflowRun = app.repository.get(workflow_id, projector_func=_project_run)
    except AggregateNotFoundError:
        return None
    return run


def _project_run(
    aggregate: WorkflowRun | None, events: Iterable[RunEvent]
) -> WorkflowRun | None:
    """``_project``, or None for a stream that is not a run's (the operator
    inbox, the index of unfinished runs): its first event starts no run."""
    events = iter(events)
    first = next(events, None)
    if first is None:
        return aggregate
    if aggregate is None and not isinstance(first, Started | RunSnapshot):
        return None
    return _project(first.mutate(aggregate), events)


def ending_of(run: WorkflowRun) -> tuple[RunStatus, Any, BaseException | None]:
    if run.status is RunStatus.COMPLETED:
        return run.status, run.result, None
    if run.status is RunStatus.CANCELLED:
        return run.status, None, RunCancelledError(run.id, run.cancel_reason or "")
    assert run.error is not None
    return run.status, None, WorkflowFailedError(run.id, run.error)


def _child_done(child_id: str, child: RunHandle) -> ChildDone:
    if child.status is RunStatus.COMPLETED:
        return ChildDone(child_id, child.result, None)
    error = child.error
    if isinstance(error, WorkflowFailedError):
        return ChildDone(child_id, None, error.error)
    assert error is not None
    return ChildDone(child_id, None, ErrorInfo.from_exception(error))


def _project(
    aggregate: WorkflowRun | None, events: Iterable[RunEvent]
) -> WorkflowRun | None:
    """eventsourcing's ``project_aggregate`` without its per-event
    ``isinstance`` check against a runtime-checkable Protocol, which costs more
    than applying the event (Python 3.11): a run's events are ``RunEvent``s."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
