"""``ActorSystem``: the journal, the runs' actors, the step pool and the timers.

A run is *live* (an actor drives it), *passive* (on disk only: waiting on a timer,
a signal or a child with nothing in flight, past the idle timeout) or finished.
Every message for a run goes through ``_route``, which activates a passive run by
replay; passivation and routing hold the same lock, so no message is lost to an
actor that is stopping.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Self

import attrs
import pykka
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Transcoder

from actors._clock import Clock, SystemClock
from actors._commands import command_of_kind
from actors._definitions import (
    ActivityDefinition,
    WorkflowDefinition,
    resolve_workflow,
)
from actors._errors import (
    DuplicateActorError,
    RunCancelledError,
    RunConflictError,
    RunUnavailableError,
    SystemClosedError,
    SystemFailedError,
    UnknownActorError,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowFailedError,
)
from actors._host import SystemHost
from actors._inbox import OperatorInbox
from actors._index import UnfinishedRuns
from actors._logs import install_filters
from actors._messages import (
    AttemptFailed,
    AttemptFailure,
    CancelRun,
    ChildDone,
    DeliverSignal,
    Passivate,
    Query,
    Reply,
    StepOutcome,
    TimerDue,
    WorkerFailed,
)
from actors._metrics import Metrics, SystemStats, journal_of
from actors._publisher import StatsPublisher
from actors._ref import RunHandle, RunRef
from actors._run_actor import RunActor
from actors._timers import TimerService
from actors._worker import StepJob, Worker, WorkerError
from aggregates import (
    ErrorInfo,
    RunFinishedError,
    RunSnapshot,
    RunStatus,
    WorkflowRun,
)
from journal import ConverterLike, JournalConfigError, MsgpackTranscoder
from supervision import (
    Backoff,
    ChildSpec,
    Dispatcher,
    DuplicateChildError,
    Restart,
    Strategy,
    SupervisedRef,
    Supervisor,
    SupervisorFlags,
    SupervisorInfo,
    start_supervisor,
)

__all__ = ["ActorSystem"]

logger = logging.getLogger("chronik.actors")

RUNS_FLAGS = SupervisorFlags(Strategy.SIMPLE_ONE_FOR_ONE, max_restarts=100, period=5.0)
"""The ``runs`` supervisor's intensity counts restarts of all runs together: a
fault that hits every run (a full disk) escalates and stops the system."""


class _Runs(Application[str]):
    """The journal's view of workflow runs: one WorkflowRun aggregate per run."""

    # Enables the snapshot store; the system takes the snapshots (see save).
    is_snapshotting_enabled = True

    def __init__(self, env: dict[str, str], converters: Sequence[ConverterLike] = ()):
        self.converters = converters  # read by construct_transcoder, in __init__
        super().__init__(env)

    def construct_transcoder(self) -> Transcoder:
        transcoder = super().construct_transcoder()
        if isinstance(transcoder, MsgpackTranscoder):
            transcoder.add_converters(self.converters)
        elif self.converters:
            raise JournalConfigError(
                "TRANSCODER_TOPIC",
                type(transcoder).__name__,
                "converters= needs chronik's journal.MsgpackTranscoder",
            )
        return transcoder


class ActorSystem:
    """Open with ``ActorSystem.open(path)``; every unfinished run resumes by replay."""

    def __init__(
        self,
        path: str,
        *,
        clock: Clock,
        max_workers: int,
        dispatcher_threads: int,
        idle_timeout: float | None,
        snapshot_every: int,
        max_run_restarts: int,
        converters: Iterable[ConverterLike] = (),
    ) -> None:
        self._path = path
        self._clock = clock
        # The same converters encode the journal's events and normalise values.
        self._transcoder = MsgpackTranscoder(converters)
        self.converters = self._transcoder.converters
        env = {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path}
        self._app = _Runs(env, self.converters)
        self._snapshot_every = snapshot_every
        self._index = UnfinishedRuns(self._app)
        # The runs' actors share these threads, however many runs are active.
        self._dispatcher = Dispatcher(dispatcher_threads, name="chronik-runs")
        self._timers = TimerService(clock.now, self._fire_timer)
        self._idle_timeout = idle_timeout
        self._closing = threading.Event()
        self._closed = False
        self._route_lock = threading.RLock()
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
        install_filters()  # log records name their run (chronik's loggers)
        self._metrics = Metrics(journal_of(self._app.recorder))  # see stats()
        self._worker = Worker(
            max_workers, clock=clock, normalise=self.normalise, metrics=self._metrics
        )
        self._publisher = StatsPublisher(self._metrics.journal, self.stats)
        self._max_run_restarts = max_run_restarts
        self._failure: BaseException | None = None  # escalated to the root
        self._stopped = threading.Event()  # closed, by close() or a failure
        self._names: dict[str, tuple[str, ...]] = {}  # actor name -> tree path
        self._waiting: dict[str, ChildSpec] = {}  # services not started yet
        self._actor_numbers = itertools.count(1)
        self._supervisor = start_supervisor(
            [
                Supervisor.child_spec("runs", (), RUNS_FLAGS),
                Supervisor.child_spec(
                    "actors", (), SupervisorFlags(Strategy.SIMPLE_ONE_FOR_ONE)
                ),
                Supervisor.child_spec("services", (), SupervisorFlags(max_restarts=0)),
            ],
            SupervisorFlags(max_restarts=0),
            name="chronik",
            on_escalate=self._escalated,
        )
        self._supervisor.wait_quiet()
        self._runs = self._supervisor.supervisor("runs")
        self._stop_timers = clock.drive(self._timers)
        self._housekeeper = threading.Thread(
            target=self._housekeep, name="chronik-housekeeping", daemon=True
        )
        self._inbox: OperatorInbox | None = None  # requests of other processes
        self._host = SystemHost(self)  # what the runs' actors see of the system

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        max_workers: int = 16,
        dispatcher_threads: int = 8,
        idle_timeout: float | None = 60.0,
        snapshot_every: int = 200,
        max_run_restarts: int = 3,
        converters: Iterable[ConverterLike] = (),
    ) -> Self:
        """Open the journal at ``path`` and resume every unfinished run.

        ``converters``: the user types that workflow arguments, step results,
        signal payloads and results may hold: dataclasses, attrs classes,
        pydantic models and enums as their class, anything else as a
        ``journal.Converter``. Sets and frozensets need none.

        ``idle_timeout``: seconds a run may wait (on a timer, signal or child, with
        no step running) before it gives up its actor and thread; ``None`` keeps
        every run resident. ``dispatcher_threads``: the threads every run's actor
        shares (a run holds no thread of its own). ``snapshot_every``: events
        between aggregate snapshots.
        ``max_run_restarts``: how many times in 5 s the supervisor replaces the
        actor of one run after engine faults before the run breaks off (its refs
        then raise ``RunUnavailableError`` until a message or the next open).
        """
        if idle_timeout is not None and not idle_timeout > 0:
            msg = f"idle_timeout={idle_timeout!r} must be seconds > 0, or None"
            raise ValueError(msg)
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            msg = f"snapshot_every={snapshot_every!r} must be an int >= 1"
            raise ValueError(msg)
        if not isinstance(max_run_restarts, int) or max_run_restarts < 0:
            msg = f"max_run_restarts={max_run_restarts!r} must be an int >= 0"
            raise ValueError(msg)
        converters = MsgpackTranscoder(converters).converters  # before any write
        system = cls(
            os.fspath(path),
            clock=clock or SystemClock(),
            max_workers=max_workers,
            dispatcher_threads=dispatcher_threads,
            idle_timeout=idle_timeout,
            snapshot_every=snapshot_every,
            max_run_restarts=max_run_restarts,
            converters=converters,
        )
        try:
            system._resume_unfinished()
            system._inbox = OperatorInbox.start(system, system._app, system._path)
        except BaseException:
            system.close()
            raise
        system._housekeeper.start()
        system._publisher.start()
        return system

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if exc[0] is None:
            self._raise_failure()  # a failure that stopped the system is news

    @property
    def path(self) -> str:
        return self._path

    @property
    def live_runs(self) -> int:
        """How many runs have an actor (and a thread) now."""
        return len(self._live)

    def stats(self) -> SystemStats:
        """What this system has done since it opened (counters, commit groups)."""
        return self._metrics.snapshot(
            live_runs=len(self._live),
            run_restarts=self.restarts,
            passivations=self.passivations,
        )

    # -- runs -----------------------------------------------------------------------

    def spawn(self, workflow: WorkflowDefinition | str, *args: Any, id: str) -> RunRef:
        """Start ``workflow(ctx, *args)`` as run ``id``, or return run ``id``.

        The id is an idempotency key: the same workflow and arguments give the
        existing run; anything else is a ``RunConflictError``. Arguments msgpack
        cannot encode raise ``UnencodableValueError`` and nothing is written.
        """
        self._check_open()
        definition = self._definition(workflow)
        args_list = self.normalise(list(args))
        handle = self._find(id) if isinstance(id, str) and id else None
        if handle is None:
            run = WorkflowRun.start(
                id, definition.name, args_list, at=self._clock.now()
            )
            try:
                # Outside the lock, so that concurrent spawns share a commit.
                self.save(run)
            except IntegrityError:  # spawned meanwhile, by a thread or a process
                handle = self._find(id)
                assert handle is not None
            else:
                self._metrics.add("runs_started")
                with self._route_lock:
                    handle = self._handle_of(run)
                    self._start(definition, run)
                return self._ref(handle)
        self._check_same(handle, definition.name, args_list)
        return self._ref(handle)

    def spawn_many(
        self,
        workflow: WorkflowDefinition | str,
        runs: Iterable[tuple[str, Sequence[Any]]],
    ) -> list[RunRef]:
        """Spawn many runs of ``workflow``, given as ``(id, args)``, in one commit.

        Each id behaves as in ``spawn``: an existing run with the same arguments
        is returned, with others it is a ``RunConflictError`` (and nothing of the
        batch is written). Nothing is written either if any argument is
        unencodable or an id repeats within the batch.
        """
        self._check_open()
        definition = self._definition(workflow)
        wanted = [(run_id, self.normalise(list(args))) for run_id, args in runs]
        ids = [run_id for run_id, _ in wanted]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            msg = f"spawn_many got the ids {repeated!r} more than once"
            raise ValueError(msg)
        found = {
            run_id: self._find(run_id) for run_id in ids if isinstance(run_id, str)
        }
        for run_id, args in wanted:
            handle = found.get(run_id)
            if handle is not None:
                self._check_same(handle, definition.name, args)
        now = self._clock.now()
        new = [
            WorkflowRun.start(run_id, definition.name, args, at=now)
            for run_id, args in wanted
            if found.get(run_id) is None
        ]
        if new:
            try:
                self.save(new[0], *new[1:])
            except IntegrityError:  # one was spawned meanwhile: go one by one
                return [self.spawn(definition, *args, id=i) for i, args in wanted]
            self._metrics.add("runs_started", len(new))
        with self._route_lock:
            for run in new:
                self._start(definition, run)
            started = {run.id: self._handle_of(run) for run in new}
        return [
            self._ref(started.get(run_id) or found[run_id])  # type: ignore[arg-type]
            for run_id in ids
        ]

    def _definition(self, workflow: WorkflowDefinition | str) -> WorkflowDefinition:
        definition = (
            resolve_workflow(workflow) if isinstance(workflow, str) else workflow
        )
        if not isinstance(definition, WorkflowDefinition):
            msg = f"spawn takes a @workflow function or its name, not {workflow!r}"
            raise TypeError(msg)
        return definition

    def ref(self, workflow_id: str) -> RunRef:
        """The run ``workflow_id``, from any thread; ``UnknownRunError`` if none."""
        self._check_open()
        handle = self._handles.get(workflow_id)
        if handle is None:
            with self._route_lock:
                handle = self._find(workflow_id)
        if handle is None:
            raise UnknownRunError(workflow_id)
        return self._ref(handle)

    def history(self, workflow_id: str) -> WorkflowRun:
        """Run ``workflow_id`` as its journal holds it now: commands, outcomes,
        signals, status. A copy to read; changing it changes nothing."""
        self._check_open()
        run = self._get_run(workflow_id)
        if run is None:
            raise UnknownRunError(workflow_id)
        return run

    def normalise(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""
        return self._transcoder.decode(self._transcoder.encode(value))

    def _ref(self, handle: RunHandle) -> RunRef:
        return RunRef(handle, self)

    def _find(self, workflow_id: str) -> RunHandle | None:
        """The handle of run ``workflow_id``, read from the journal if need be."""
        handle = self._handles.get(workflow_id)
        if handle is not None:
            return handle
        run = self._get_run(workflow_id)
        if run is None:
            return None
        with self._route_lock:
            return self._handle_of(run)

    def _get_run(self, workflow_id: str) -> WorkflowRun | None:
        try:
            run: WorkflowRun = self._app.repository.get(workflow_id)
        except AggregateNotFoundError:
            return None
        return run

    def _handle_of(self, run: WorkflowRun) -> RunHandle:
        handle = self._handles.get(run.id)
        if handle is None:
            handle = RunHandle(run.id, run.name, list(run.args))
            self._handles[run.id] = handle
        if run.is_finished and not handle.finished:
            status, result, error = _ending(run)
            handle.finish(status, result, error)
        elif handle.actor is None and not run.is_finished:
            handle.loaded = run
        return handle

    def _start(
        self, definition: WorkflowDefinition, run: WorkflowRun
    ) -> pykka.ActorRef[Any]:
        """Start the run's actor under the ``runs`` supervisor. Hold the lock.

        The supervisor runs the factory in its own thread and never waits for a
        run's actor while it does, so holding the route lock here is safe; it
        waits for actors only when it stops them (closing, giving up), and
        ``close`` stops the runs' actors itself first.
        """
        handle = self._handle_of(run)
        if not run.is_finished:
            self._live[run.id] = handle
            self._broken.pop(run.id, None)
        handle.activations += 1
        started: list[pykka.ActorRef[Any]] = []

        def start() -> pykka.ActorRef[Any]:
            # Never raises: a restart reads the journal in the actor's on_start,
            # where a failure is one more fault of the run, not of this factory.
            if started:
                handle.restarts += 1
                self.restarts += 1
            actor = RunActor.start(
                self._host,
                definition,
                run,
                handle,
                dispatcher=self._dispatcher,
                reload=bool(started),
                metrics=self._metrics,
            )
            started.append(actor)
            return actor

        child_id = _child_id(run.id, handle.activations)
        self._runs.start_child(ChildSpec(child_id, start, Restart.TRANSIENT))
        return started[0]

    @staticmethod
    def _check_same(handle: RunHandle, name: str, args: list[Any]) -> None:
        if (handle.name, handle.args) != (name, args):
            raise RunConflictError(
                handle.workflow_id,
                f"{handle.name}{tuple(handle.args)!r}",
                f"{name}{tuple(args)!r}",
            )

    def _resume_unfinished(self) -> None:
        """Activate runs with work to do; the others wait passive for a message."""
        for workflow_id in sorted(self._index.load()):
            run = self._get_run(workflow_id)
            if run is None or run.is_finished:
                continue
            for seq, fire_at in run.pending_timers.items():
                self._timers.add(workflow_id, seq, fire_at)
            if _has_work(run):
                with (
                    self._route_lock,
                    contextlib.suppress(
                        UnknownWorkflowError, RunFinishedError, RunUnavailableError
                    ),
                ):
                    # A run whose code is gone reports it on its handle (ref.result)
                    # and does not keep the journal's other runs from resuming; a
                    # child its parent's replay started may have finished by now.
                    self._activate(self._handle_of(run), run)
        self._index.checkpoint(self._clock.now())

    # -- routing messages to runs -------------------------------------------------

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
        run = self._get_run(handle.workflow_id)
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
        with self._route_lock:
            if handle.finished and isinstance(message, Query):
                read_only = self._replay_finished(handle)
                actor = read_only
            else:
                actor = self._activate(handle)
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

    def _tell(self, workflow_id: str, message: Any) -> None:
        """Deliver ``message`` to an unfinished run, activating it; else drop it."""
        if self._closing.is_set():
            return  # redone from history when the journal is reopened
        with self._route_lock:
            handle = self._find(workflow_id)
            if handle is None or handle.finished:
                return
            try:
                self._activate(handle)
            except (RunUnavailableError, RunFinishedError, UnknownWorkflowError):
                return  # it resumes (or reports why not) on the next open
            handle.tell(message)

    def _activate(
        self, handle: RunHandle, run: WorkflowRun | None = None
    ) -> pykka.ActorRef[Any]:
        """The run's live actor, started by replay if it has none. Hold the lock."""
        if handle.actor is not None:
            return handle.actor
        self._check_open()
        action = "take messages"
        if handle.finished:
            raise RunFinishedError(handle.workflow_id, handle.status, action)
        run = run or handle.loaded or self._get_run(handle.workflow_id)
        if run is None:
            raise UnknownRunError(handle.workflow_id)
        if run.is_finished:
            self._handle_of(run)
            raise RunFinishedError(handle.workflow_id, run.status, action)
        try:
            definition = resolve_workflow(run.name)
        except UnknownWorkflowError as error:
            handle.break_off(error)  # ref.result() says why it cannot resume
            self._broken[handle.workflow_id] = handle
            raise
        # The ref, even if on_start has already ended the run (a later ask then
        # finds the actor dead and reports how the run ended).
        return self._start(definition, run)

    def _replay_finished(self, handle: RunHandle) -> pykka.ActorRef[Any]:
        run = self._get_run(handle.workflow_id)
        assert run is not None
        assert run.is_finished
        definition = resolve_workflow(run.name)
        return RunActor.start(
            self._host,
            definition,
            run,
            handle,
            dispatcher=self._dispatcher,
            read_only=True,
        )

    # -- plain actors and services ------------------------------------------------

    def service(
        self,
        name: str,
        actor_class: type[pykka.ThreadingActor],
        *args: Any,
        auto_start: bool = True,
        restart: Restart = Restart.PERMANENT,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        shutdown: float | None = 5.0,
        **kwargs: Any,
    ) -> SupervisedRef:
        """Keep ``actor_class(*args, **kwargs)`` alive under the system, by name.

        It gets a supervisor of its own: restarted by ``restart`` at most
        ``max_restarts`` times in ``period`` seconds (after ``backoff`` pauses),
        past which the failure escalates and stops the system
        (``SystemFailedError``). The ref stays valid across restarts; with
        ``auto_start=False`` the service starts at ``start_service(name)``.
        """
        self._check_open()
        actor = ChildSpec.for_actor(
            name,
            actor_class,
            args=args,
            kwargs=kwargs,
            restart=restart,
            shutdown=shutdown,
        )
        flags = SupervisorFlags(
            max_restarts=max_restarts, period=period, backoff=backoff
        )
        spec = Supervisor.child_spec(name, (actor,), flags)
        ref = self._claim_name(name, ("services", name, name))
        if auto_start:
            self._start_named(name, "services", spec)
        else:
            self._waiting[name] = spec
        return ref

    def start_service(self, name: str) -> SupervisedRef:
        """Start the service ``name`` registered with ``auto_start=False``."""
        self._check_open()
        spec = self._waiting.pop(name, None)
        if spec is None:
            raise UnknownActorError(name, tuple(sorted(self._names)))
        self._start_named(name, "services", spec)
        return self.actor(name)

    def spawn_actor(
        self,
        actor_class: type[pykka.ThreadingActor],
        *args: Any,
        name: str | None = None,
        restart: Restart = Restart.TRANSIENT,
        shutdown: float | None = 5.0,
        **kwargs: Any,
    ) -> SupervisedRef:
        """Start a plain (not durable) actor under the system's ``actors``
        supervisor, restarted by ``restart``; reachable by ``name``."""
        self._check_open()
        if name is None:
            name = f"{actor_class.__name__}-{next(self._actor_numbers)}"
        spec = ChildSpec.for_actor(
            name,
            actor_class,
            args=args,
            kwargs=kwargs,
            restart=restart,
            shutdown=shutdown,
        )
        ref = self._claim_name(name, ("actors", name))
        self._start_named(name, "actors", spec)
        return ref

    def actor(self, name: str) -> SupervisedRef:
        """The service or plain actor ``name``: a ref valid across restarts."""
        self._check_open()
        path = self._names.get(name)
        if path is None:
            raise UnknownActorError(name, tuple(sorted(self._names)))
        return self._supervisor.child(*path)

    def tree(self) -> SupervisorInfo:
        """The live supervision tree: runs, plain actors and services, with
        restart counts and last failures, as frozen data."""
        return self._supervisor.tree()

    def format_tree(self) -> str:
        return self._supervisor.format_tree()

    def _claim_name(self, name: str, path: tuple[str, ...]) -> SupervisedRef:
        """Reserve ``name`` for the child at ``path``. A name taken under the
        same supervisor is that supervisor's to refuse (a plain actor that has
        exited for good has left it, and its name is free again)."""
        if not isinstance(name, str) or not name or "/" in name:
            msg = f"an actor name is a non-empty str without '/', not {name!r}"
            raise ValueError(msg)
        with self._route_lock:
            taken = self._names.get(name)
            if taken is not None and (taken[0] != path[0] or name in self._waiting):
                raise DuplicateActorError(name)
            self._names[name] = path
        return self._supervisor.child(*path)

    def _start_named(self, name: str, under: str, spec: ChildSpec) -> None:
        try:
            self._supervisor.supervisor(under).start_child(spec)
        except DuplicateChildError:
            raise DuplicateActorError(name) from None  # it keeps its name
        except BaseException:
            with self._route_lock:
                del self._names[name]
            raise

    # -- services for the runs' actors ------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def save(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        """Append the runs' pending events in one commit; snapshot when due.

        This is ``Application.save`` without its bookkeeping, which costs more
        than the commit, and with snapshots taken from the aggregate in hand
        rather than rebuilt from the journal.
        """
        mapper = self._app.mapper
        events = list(run.collect_events())
        for child in children:
            events += child.collect_events()
        self._app.recorder.insert_events([mapper.to_stored_event(e) for e in events])
        every = self._snapshot_every
        if any(
            e.originator_id == run.id and e.originator_version % every == 0
            for e in events
        ):
            snapshot = RunSnapshot.take(run)
            assert self._app.snapshots is not None
            self._app.snapshots.put([snapshot])

    def check_encodable(self, value: Any) -> None:
        self._transcoder.encode(value)

    def add_timer(self, workflow_id: str, seq: int, fire_at: datetime) -> None:
        self._timers.add(workflow_id, seq, fire_at)

    def new_child(
        self,
        parent_id: str,
        child_id: str,
        definition: WorkflowDefinition,
        args: tuple[Any, ...],
    ) -> WorkflowRun | None:
        args_list = self.normalise(list(args))
        with self._route_lock:
            existing = self._find(child_id)
            if existing is not None:
                self._check_same(existing, definition.name, args_list)
                return None
            return WorkflowRun.start(
                child_id,
                definition.name,
                args_list,
                parent_id=parent_id,
                at=self._clock.now(),
            )

    def start_runs(self, runs: list[WorkflowRun]) -> None:
        self._metrics.add("runs_started", len(runs))  # saved with their parent
        with self._route_lock:
            for run in runs:
                if not self._closing.is_set():
                    self._start(resolve_workflow(run.name), run)

    def watch_child(self, parent_id: str, child_id: str) -> None:
        """The parent waits on the child: tell it if the child has ended, else
        make sure the child runs (its start may have been lost to a fault)."""
        with self._route_lock:
            child = self._find(child_id)
            if child is not None and not child.finished:
                with contextlib.suppress(
                    RunUnavailableError, RunFinishedError, UnknownWorkflowError
                ):
                    self._activate(child)
        if child is not None and child.finished:
            self._tell(parent_id, _child_done(child_id, child))

    def cancel_run(self, workflow_id: str, reason: str) -> None:
        self._tell(workflow_id, CancelRun(reason))

    def run_finished(self, run: WorkflowRun) -> None:
        with self._route_lock:
            self._live.pop(run.id, None)
            handle = self._handle_of(run)
        if run.parent_id is not None:
            self._tell(run.parent_id, _child_done(run.id, handle))

    def run_broken(self, workflow_id: str) -> None:
        with self._route_lock:
            handle = self._live.pop(workflow_id, None)
            if handle is not None:
                self._broken[workflow_id] = handle

    def load_run(self, workflow_id: str) -> WorkflowRun:
        run = self._get_run(workflow_id)
        if run is None:
            raise UnknownRunError(workflow_id)
        return run

    def may_restart(self, handle: RunHandle) -> bool:
        faults = handle.fault(time.monotonic(), RUNS_FLAGS.period)
        if self._closing.is_set():
            return False  # nothing restarts while the system closes
        return faults <= self._max_run_restarts

    def passivate(self, workflow_id: str, inbox_empty: Any) -> bool:
        with self._route_lock:
            handle = self._live.get(workflow_id)
            if handle is None or not inbox_empty():
                return False
            del self._live[workflow_id]
            handle.actor = None
            handle.idle_since = None
            self.passivations += 1
            return True

    def submit_step(
        self,
        step: ActivityDefinition,
        args: tuple[Any, ...],
        workflow_id: str,
        seq: int,
        reply_to: pykka.ActorRef[Any],
    ) -> None:
        if self._closing.is_set():
            return  # not recorded: it runs when the journal is reopened
        failures: list[AttemptFailure] = []

        def report(message: AttemptFailed | StepOutcome | WorkerError) -> None:
            # The actor is told only the outcome, with every failed attempt.
            if isinstance(message, AttemptFailed):
                failures.append(
                    AttemptFailure(message.attempt, message.error, message.at)
                )
            elif isinstance(message, StepOutcome):
                _tell(reply_to, attrs.evolve(message, failures=tuple(failures)))
            else:
                _tell(reply_to, WorkerFailed(message.seq, message.error))

        self._worker.submit(StepJob(step, args, workflow_id, seq), report)

    def _fire_timer(self, workflow_id: str, seq: int) -> None:
        self._tell(workflow_id, TimerDue(seq))

    # -- housekeeping -------------------------------------------------------------

    def _housekeep(self) -> None:
        """Passivate idle runs; checkpoint the index of unfinished runs."""
        idle = self._idle_timeout
        period = 1.0 if idle is None else min(1.0, idle / 4)
        last_checkpoint = time.monotonic()
        while not self._closing.wait(period):
            if idle is not None:
                self._passivate_idle(idle)
            if time.monotonic() - last_checkpoint > 60.0:
                self._index.checkpoint(self._clock.now())
                last_checkpoint = time.monotonic()

    def _passivate_idle(self, idle_timeout: float) -> None:
        now = time.monotonic()
        with self._route_lock:
            handles = list(self._live.values())
        for handle in handles:
            since, actor = handle.idle_since, handle.actor
            if since is not None and actor is not None and now - since >= idle_timeout:
                _tell(actor, Passivate(since))

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Stop every run; a step still running is recorded or runs again later.
        Then stop services and actors, in reverse start order."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._inbox is not None:
            self._inbox.stop()
        if self._housekeeper.is_alive():
            self._housekeeper.join()
        self._stop_timers()
        # Running attempts finish and their actors record them; queued ones are
        # dropped and run again when the journal is reopened.
        self._worker.close(wait=True)
        with self._route_lock:
            actors = [h.actor for h in self._live.values() if h.actor is not None]
        for future in [actor.stop(block=False) for actor in actors]:
            future.get()
        try:
            self._supervisor.stop()
            self._index.checkpoint(self._clock.now())
        finally:
            self._publisher.close()  # once more, marked closed; never raises
            self._dispatcher.close()
            self._app.close()
            self._stopped.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the system is closed; False if ``timeout`` passed first.
        Raises ``SystemFailedError`` if it stopped because a failure escalated
        to the root of its supervision tree."""
        stopped = self._stopped.wait(timeout)
        self._raise_failure()
        return stopped

    @property
    def failure(self) -> BaseException | None:
        """What escalated to the root and stopped the system, if anything did."""
        return self._failure

    def _escalated(self, cause: BaseException) -> None:
        """The root supervisor gave up: stop the system, surface ``cause``."""
        self._failure = cause
        logger.critical(
            "actor system on %r stops: a failure escalated to the root of its "
            "supervision tree: %r",
            self._path,
            cause,
        )
        error = SystemFailedError(self._path, repr(cause))
        error.__cause__ = cause
        with self._route_lock:
            handles = list(self._live.values())
        for handle in handles:  # their result() would otherwise wait forever
            handle.break_off(error)
        # Not on the root's thread: close() waits for the tree to stop.
        threading.Thread(target=self.close, name="chronik-failed-close").start()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            error = SystemFailedError(self._path, repr(self._failure))
            raise error from self._failure

    def _check_open(self) -> None:
        if self._closed:
            self._raise_failure()
            raise SystemClosedError(self._path)


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


def _ending(run: WorkflowRun) -> tuple[RunStatus, Any, BaseException | None]:
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


def _tell(actor: pykka.ActorRef[Any], message: Any) -> None:
    # A stopped actor's run resumes by replay on the next open; the message
    # (a step outcome, a timer fire) is then redone from history.
    with contextlib.suppress(pykka.ActorDeadError):
        actor.tell(message)
