"""``ActorSystem``: the facade users touch (open, spawn, ref, history, service,
spawn_actor, close).

It opens the journal and builds the parts that do the work: the ``Router`` (the
registry of runs, activation by replay, passivation), the ``SystemHost`` (all a
run's actor sees: one commit per message, then steps, timers and children), the
``Worker`` (steps), the ``TimerService`` and the ``Dispatcher`` (the threads the
runs' actors share), under one supervision tree.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self, overload

import pykka
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Transcoder

from actors._backend import Backend, Presence, backend_for
from actors._clock import Clock, SystemClock
from actors._definitions import (
    WorkflowDefinition,
    is_workflow_name,
    resolve_workflow,
)
from actors._errors import (
    ClockJumpError,
    SystemClosedError,
    SystemFailedError,
    UnknownRunError,
)
from actors._host import SystemHost
from actors._inbox import OperatorInbox, OperatorRequests
from actors._index import UnfinishedRuns
from actors._logs import install_filters
from actors._messages import (
    CancelRun,
    DeliverSignal,
    Query,
    Reply,
    TimerDue,
)
from actors._metrics import Metrics, SystemStats, commit_source_of
from actors._named import NamedActors
from actors._outbox import WAKE, Relay, RelayActor, Sink
from actors._ownership import Ownership, check_host_name, new_host_id
from actors._plain import Actor, registered_actor
from actors._publisher import StatsPublisher
from actors._ref import RunHandle, RunRef
from actors._router import Router
from actors._timers import TimerService
from actors._worker import Worker
from aggregates import (
    RunFinishedError,
    WorkflowRun,
)
from journal import (
    ConverterLike,
    JournalClosedError,
    JournalConfigError,
    Leases,
    MsgpackTranscoder,
    partition_of,
)
from supervision import (
    Dispatcher,
    Strategy,
    SupervisedRef,
    Supervisor,
    SupervisorFlags,
    start_supervisor,
)

__all__ = ["ActorSystem"]

logger = logging.getLogger("chronik.actors")

RUNS_FLAGS = SupervisorFlags(Strategy.SIMPLE_ONE_FOR_ONE, max_restarts=100, period=5.0)
"""The ``runs`` supervisor's intensity counts restarts of all runs together: a
fault that hits every run (a full disk) escalates and stops the system."""


_LOAD_CHUNK = 1000  # unfinished runs read in one transaction at open


class RunsApp(Application[str]):
    """The journal's view of workflow runs: one WorkflowRun aggregate per run."""

    # Enables the snapshot store; the system takes the snapshots (see save).
    is_snapshotting_enabled = True
    # Fixed, not the class's name: a PostgreSQL journal's tables are named after
    # it (chronikruns_events, chronikruns_snapshots; LMDB ignores it).
    name = "ChronikRuns"

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


class ActorSystem(NamedActors):
    """Open with ``ActorSystem.open(path)``; every unfinished run resumes by replay.

    The facade users touch: it owns the journal, and its parts do the work: the
    ``Router`` (the registry of runs, activation by replay, passivation), the
    ``SystemHost`` (what runs' actors see: commits, steps, timers), the
    ``Worker`` (steps) and the ``Dispatcher`` (the threads runs' actors share).
    """

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
        lease_ttl: float = 5.0,
        host_name: str | None = None,
    ) -> None:
        self._path = path
        self._clock = clock
        # The same converters encode the journal's events and normalise values.
        self._transcoder = MsgpackTranscoder(converters)
        self.converters = self._transcoder.converters
        self._backend: Backend = backend_for(path)
        self._backend.prepare()  # a PostgreSQL journal's format, before any table
        self._app = RunsApp(self._backend.env(), self.converters)
        self._index = UnfinishedRuns(self._app)
        # This system is one of possibly several hosts of the journal: it drives
        # the partitions of runs it holds leases on (see actors._ownership).
        host_id = new_host_id(host_name)
        self._ownership = Ownership(
            Leases(self._backend.lease_storage(self._app)),
            host_id,
            lease_ttl,
            time.time,
            present=self._backend.present,
        )
        # Held while this system lives: a dead host's leases go at once.
        self._presence: Presence | None = self._backend.hold_presence(host_id)
        self._backend.sweep()  # what hosts killed before left behind
        self._resumed_ids: set[str] = set()  # unfinished runs this host resumed
        self._resuming = threading.Lock()  # rounds of the lease keeper and wakes
        self._rounds = 0  # lease rounds so far
        self._crashed = False  # crash_presence on a backend with no presence
        # The runs' actors share these threads, however many runs are active.
        self._dispatcher = Dispatcher(dispatcher_threads, name="chronik-runs")
        self._timers = TimerService(clock.now, self._fire_timer)
        self._idle_timeout = idle_timeout
        self._closing = threading.Event()
        self._closed = False
        install_filters()  # log records name their run (chronik's loggers)
        self._metrics = Metrics(commit_source_of(self._app.recorder))  # see stats()
        self._worker = Worker(
            max_workers, clock=clock, normalise=self.normalise, metrics=self._metrics
        )
        self._publisher = StatsPublisher(
            self._backend.stats_store(self._app), self.stats
        )
        self._failure: BaseException | None = None  # escalated to the root
        self._stopped = threading.Event()  # closed, by close() or a failure
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
        NamedActors.__init__(self)
        self._relays: list[SupervisedRef] = []  # the outbox's relay services
        self._router = Router(
            self._app,
            self._supervisor.supervisor("runs"),
            self._dispatcher,
            self._metrics,
            max_run_restarts=max_run_restarts,
            closing=self._closing,
            check_open=self._check_open,
            owns=self._owns,
        )
        self._host = self._make_host(snapshot_every)
        self._router.host = self._host  # what the runs' actors see of the system
        self._stop_timers = clock.drive(self._timers)
        self._housekeeper = threading.Thread(
            target=self._housekeep, name="chronik-housekeeping", daemon=True
        )
        self._inbox: OperatorInbox | None = None  # requests of other processes
        self._lease_keeper = threading.Thread(
            target=self._keep_leases, name="chronik-leases", daemon=True
        )

    def _make_host(self, snapshot_every: int) -> SystemHost:
        return SystemHost(**self._host_parts(snapshot_every))

    def _host_parts(self, snapshot_every: int) -> dict[str, Any]:
        return {
            "app": self._app,
            "router": self._router,
            "worker": self._worker,
            "timers": self._timers,
            "clock": self._clock,
            "transcoder": self._transcoder,
            "snapshot_every": snapshot_every,
            "closing": self._closing,
            "fence_for": self._ownership.fence,
            "partition_lost": self._ownership.forget,
        }

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
        lease_ttl: float = 5.0,
        host_name: str | None = None,
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
        Every open system is one host of the journal among any others open on
        it (in this process or others): it drives only the partitions of runs it
        holds leases on, its commits carry their fencing tokens, it takes over
        the partitions of a host that died (at once: its presence lock is free)
        or stopped renewing, and gives back its surplus when another joins. A
        signal or cancel for a run another host drives goes through the journal
        to that host; ``ref.result()`` waits wherever the run is driven.
        ``lease_ttl``: seconds a host's leases hold without a renewal
        (renewed every third of it). ``host_name``: a name this host keeps
        across restarts (unique among live hosts, as DBOS's executor id): opened
        again under it, it takes its previous life's partitions at once, not
        once their leases expire (a PostgreSQL journal, where nothing else tells
        that a host died, needs it for a fast restart).
        """
        if idle_timeout is not None and not idle_timeout > 0:
            msg = f"idle_timeout={idle_timeout!r} must be seconds > 0, or None"
            raise ValueError(msg)
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            msg = f"snapshot_every={snapshot_every!r} must be an int >= 1"
            raise ValueError(msg)
        if (
            not isinstance(lease_ttl, int | float)
            or not math.isfinite(lease_ttl)
            or lease_ttl <= 0
        ):
            msg = f"lease_ttl={lease_ttl!r} must be seconds > 0"
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
            lease_ttl=lease_ttl,
            host_name=None if host_name is None else check_host_name(host_name),
        )
        try:
            system._ownership.tick()  # its share of the partitions
            system._resume_unfinished()
            system._index.checkpoint(system._clock.now())
            system._inbox = OperatorInbox.start(
                system, system._app, system._backend, system._ownership.host_id
            )
        except BaseException:
            system.close()
            raise
        system._housekeeper.start()
        system._lease_keeper.start()
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
        """How many runs have an actor now."""
        return self._router.live_runs

    @property
    def passivations(self) -> int:
        """How many times a run gave up its actor."""
        return self._router.passivations

    @property
    def restarts(self) -> int:
        """How many times a supervisor replaced a run's actor."""
        return self._router.restarts

    def stats(self) -> SystemStats:
        """What this system has done since it opened (counters, commit groups)."""
        return self._metrics.snapshot(
            live_runs=self._router.live_runs,
            run_restarts=self._router.restarts,
            passivations=self._router.passivations,
            partitions_held=len(self._ownership.held),
            lease_writes=self._ownership.leases.writes,
        )

    # -- runs -----------------------------------------------------------------------

    @overload
    def spawn(self, workflow: WorkflowDefinition, *args: Any, id: str) -> RunRef: ...

    @overload
    def spawn(self, workflow: type[Actor], *args: Any, id: str) -> SupervisedRef: ...

    @overload
    def spawn(self, workflow: str, *args: Any, id: str) -> RunRef | SupervisedRef: ...

    def spawn(
        self, workflow: WorkflowDefinition | type[Actor] | str, *args: Any, id: str
    ) -> RunRef | SupervisedRef:
        """Start ``workflow(ctx, *args)`` as run ``id``, or return run ``id``.

        The id is an idempotency key: the same workflow and arguments give the
        existing run; anything else is a ``RunConflictError``. Arguments msgpack
        cannot encode raise ``UnencodableValueError`` and nothing is written.

        A plain ``Actor`` subclass, or the ``name`` one is registered under
        (when no workflow has that name), starts that actor instead, named
        ``id`` (as ``spawn_actor(cls, *args, name=id)``): not durable, and
        reached the same way (``ref.send(topic, payload)``).
        """
        self._check_open()
        plain = _plain_actor(workflow)
        if plain is not None:
            return self.spawn_actor(plain, *args, name=id)
        assert not isinstance(workflow, type)
        definition = self._definition(workflow)
        args_list = self.normalise(list(args))
        # Only the runs held in memory are looked up first: a new id (the usual
        # case) costs no read, and one in the journal only fails the commit below.
        handle = self._router.known(id) if isinstance(id, str) and id else None
        if handle is None:
            run = WorkflowRun.start(
                id, definition.name, args_list, at=self._clock.now()
            )
            try:
                # Outside the lock, so that concurrent spawns share a commit.
                self._host.commit(run)
            except IntegrityError:  # in the journal, or spawned meanwhile
                handle = self._router.find(id)
                assert handle is not None
            else:
                self._metrics.add("runs_started")
                with self._router.lock:
                    handle = self._router.handle_of(run)
                    self._router.start(definition, run)
                self._wake_owners([id])
                return self._ref(handle)
        self._router.check_same(handle, definition.name, args_list)
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
        # First only the runs held in memory are looked up (new ids cost no
        # read); if the commit finds one in the journal, all are read there.
        refs = self._spawn_batch(definition, wanted, self._router.known)
        if refs is None:
            refs = self._spawn_batch(definition, wanted, self._router.find)
        if refs is None:  # one was spawned meanwhile: go one by one
            refs = [self.spawn(definition, *args, id=i) for i, args in wanted]
        return refs

    def _spawn_batch(
        self,
        definition: WorkflowDefinition,
        wanted: list[tuple[str, list[Any]]],
        lookup: Callable[[str], RunHandle | None],
    ) -> list[RunRef] | None:
        """Start the runs ``lookup`` does not find, in one commit; None if the
        journal already held one of them."""
        found = {
            run_id: lookup(run_id) for run_id, _ in wanted if isinstance(run_id, str)
        }
        for run_id, args in wanted:
            handle = found.get(run_id)
            if handle is not None:
                self._router.check_same(handle, definition.name, args)
        now = self._clock.now()
        new = [
            WorkflowRun.start(run_id, definition.name, args, at=now)
            for run_id, args in wanted
            if found.get(run_id) is None
        ]
        if new:
            try:
                self._host.commit(new[0], *new[1:])
            except IntegrityError:
                return None
            self._metrics.add("runs_started", len(new))
        with self._router.lock:
            for run in new:
                self._router.start(definition, run)
            started = {run.id: self._router.handle_of(run) for run in new}
        self._wake_owners([run.id for run in new])
        return [
            self._ref(started.get(run_id) or found[run_id])  # type: ignore[arg-type]
            for run_id, _ in wanted
        ]

    def _wake_owner(self, run_id: str) -> None:
        self._backend.wake_run_owner(self._app, run_id)

    def _wake_owners(self, run_ids: Iterable[str]) -> None:
        """Wake the hosts that drive those of ``run_ids`` (just started here)
        this host does not: they start them now, not at their next round."""
        elsewhere = {partition_of(i): i for i in run_ids if not self._owns(i)}
        for run_id in elsewhere.values():
            self._backend.wake_run_owner(self._app, run_id)

    def _definition(self, workflow: WorkflowDefinition | str) -> WorkflowDefinition:
        definition = (
            resolve_workflow(workflow) if isinstance(workflow, str) else workflow
        )
        if not isinstance(definition, WorkflowDefinition):
            msg = f"spawn takes a @workflow function or its name, not {workflow!r}"
            raise TypeError(msg)
        return definition

    def send(
        self,
        target: RunRef | SupervisedRef | str,
        topic: str,
        payload: Any = None,
        *,
        timeout: float = 30.0,
    ) -> Any:
        """Send ``topic`` and ``payload`` to a workflow run or a plain actor or
        service, by ref or by name (a plain actor or service of that name, else
        the run of that id): a run records it as a signal and answers with the
        signal's id once durable; an actor answers with what its handler
        returns (``Actor.receive``)."""
        if isinstance(target, str):
            self._check_open()
            named = self.has_actor(target)
            target = self.actor(target) if named else self.ref(target)
        if isinstance(target, RunRef | SupervisedRef):
            return target.send(topic, payload, timeout=timeout)
        msg = f"send takes a ref or a name, not {target!r}"
        raise TypeError(msg)

    def ref(self, workflow_id: str) -> RunRef:
        """The run ``workflow_id``, from any thread; ``UnknownRunError`` if none."""
        self._check_open()
        handle = self._router.find(workflow_id)
        if handle is None:
            raise UnknownRunError(workflow_id)
        return self._ref(handle)

    def relay(
        self,
        sink: Sink,
        *,
        poll: float = 0.5,
        max_attempts: int = 5,
        first_pause: float = 0.05,
        max_pause: float = 5.0,
        service: bool = True,
        max_restarts: int = 10,
        period: float = 60.0,
    ) -> Relay:
        """Deliver the journal's published messages (``ctx.publish``) to ``sink``
        at least once, in log order, from a supervised service named
        ``"outbox:<sink.name>"`` (see ``actors._outbox``); the relay, to read its
        position and dead letters. ``poll``: seconds between looks once caught
        up; ``max_attempts``: tries of one message before it is a dead letter;
        ``max_pause``: the longest wait between tries while the sink's server is
        out (``SinkUnavailableError``: messages wait, never dead-lettered);
        ``first_pause``: the wait after a message's first refusal (doubling).
        ``service=False`` starts no service: the caller delivers with
        ``relay.deliver()`` (a page at a time) when it wants."""
        self._check_open()
        if not poll > 0:
            raise ValueError(f"poll must be seconds > 0, not {poll!r}")
        relay = Relay(
            self._app,
            self._app.factory.process_recorder(),
            sink,
            max_attempts=max_attempts,
            first_pause=first_pause,
        )
        if not service:
            return relay
        started = self.service(
            relay.tracking_name.replace("/", "%2F"),  # no "/" in a service's name
            RelayActor,
            relay,
            poll,
            max_pause,
            max_restarts=max_restarts,
            period=period,
        )
        self._relays.append(started)
        self._host.on_published = self._wake_relays
        return relay

    def _wake_relays(self) -> None:
        """A commit here carried a published message: the relays look now."""
        for service in self._relays:
            with contextlib.suppress(Exception):  # stopping, restarting: it polls
                service.tell(WAKE)

    def history(self, workflow_id: str) -> WorkflowRun:
        """Run ``workflow_id`` as its journal holds it now: commands, outcomes,
        signals, status. A copy to read; changing it changes nothing."""
        self._check_open()
        run = self._router.get_run(workflow_id)
        if run is None:
            raise UnknownRunError(workflow_id)
        return run

    def normalise(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""
        return self._transcoder.decode(self._transcoder.encode(value))

    def ask(self, handle: RunHandle, message: Any, timeout: float | None) -> Reply:
        """Deliver ``message`` to run ``handle``'s actor; wait for its reply. A
        signal or cancel for a run another host drives goes
        into the journal's operator inbox, which that host follows: durable
        when this returns, delivered by the owner (deduplicated by signal id)."""
        if not self.drives(handle.workflow_id) and not isinstance(message, Query):
            return self._queue_elsewhere(handle, message)
        return self._router.ask(handle, message, timeout)

    def settled(self, handle: RunHandle) -> bool:
        """Whether the run has ended, read from the journal if another host
        drives it (``ref.result()`` and ``ref.status()`` look here)."""
        return self._router.settled(handle)

    def drives(self, workflow_id: str) -> bool:
        """Whether this system drives the run now (holds its partition's lease)."""
        return self._owns(workflow_id)

    def _queue_elsewhere(self, handle: RunHandle, message: Any) -> Reply:
        """Queue a signal or cancel for the host that drives the run; a finished
        run refuses it here, with nothing written."""
        workflow_id = handle.workflow_id
        if self._router.settled(handle):
            action = f"handle {type(message).__name__}"
            raise RunFinishedError(workflow_id, handle.status, action)
        requests = OperatorRequests(self._app, wake=self._wake_owner)
        origin = f"host {self._ownership.host_id}"
        now = self._clock.now()
        if isinstance(message, DeliverSignal):
            requests.signal(
                workflow_id,
                message.topic,
                message.payload,
                signal_id=message.signal_id,
                origin=origin,
                at=now,
            )
            return Reply(message.signal_id)
        if isinstance(message, CancelRun):
            requests.cancel(workflow_id, reason=message.reason, origin=origin, at=now)
            return Reply()
        msg = f"no way to queue {message!r} for another host"
        raise TypeError(msg)

    def _ref(self, handle: RunHandle) -> RunRef:
        return RunRef(handle, self)

    def _fire_timer(self, workflow_id: str, seq: int) -> None:
        self._router.tell(workflow_id, TimerDue(seq))

    def _owns(self, workflow_id: str) -> bool:
        return self._ownership.holds(partition_of(workflow_id))

    def woken(self) -> None:
        """Another process (or host) woke this one: a run may have been
        started in a partition it drives (the inbox calls this)."""
        try:
            self._resume_unfinished()
        except (JournalClosedError, SystemClosedError):
            return
        except Exception:
            logger.exception(
                "resuming runs started elsewhere failed; the next lease round "
                "tries again"
            )

    def _resume_unfinished(self, partitions: frozenset[int] | None = None) -> None:
        """Arm the timers of the unfinished runs this host drives (of
        ``partitions``, if given) and not yet resumed; activate those with work
        to do (the others wait passive for a message)."""
        with self._resuming:
            self._resume_unfinished_now(partitions)

    def _resume_unfinished_now(self, partitions: frozenset[int] | None) -> None:
        everything = self._index.load()
        self._resumed_ids.intersection_update(everything)  # forget ended runs
        unfinished = []
        for run_id in everything:
            if run_id in self._resumed_ids or not self._owns(run_id):
                continue
            if partitions is not None and partition_of(run_id) not in partitions:
                continue
            self._resumed_ids.add(run_id)
            handle = self._router.known(run_id)
            # A handle without an actor: spawned here while another host drove
            # it, or driven here before the partition went and came back.
            if handle is None or (handle.actor is None and not handle.finished):
                unfinished.append(run_id)
        unfinished.sort()
        for first in range(0, len(unfinished), _LOAD_CHUNK):
            chunk = unfinished[first : first + _LOAD_CHUNK]
            for run in self._router.load_runs(chunk):
                if run.is_finished:
                    continue
                for seq, fire_at in run.pending_timers.items():
                    self._timers.add(run.id, seq, fire_at)
                self._router.resume(run)

    def _keep_leases(self) -> None:
        """A lease round every third of the lease TTL, until closing."""
        ownership = self._ownership
        while not self._closing.wait(ownership.ttl / 3):
            try:
                self._lease_round()
            except (JournalClosedError, SystemClosedError):
                return
            except ClockJumpError as error:
                logger.warning("%s", error)
            except Exception:
                logger.exception(
                    "renewing the leases of %r failed; trying again in %.1f s",
                    self._path,
                    ownership.ttl / 3,
                )

    def _lease_round(self) -> None:
        """Renew; stop driving the runs of partitions lost or given back;
        resume those of partitions gained, and runs started meanwhile (by
        another host) in partitions held."""
        ownership = self._ownership
        if self._crashed:  # renews nothing; finds out what it lost, as a
            lost = ownership.check_lost()  # stale owner's next write would
            if lost:
                self._leave_partitions(lost)
            return
        if self._presence is not None and self._presence.ensure():
            logger.warning(
                "host %s: its presence file in %r was gone (removed by hand?) and "
                "was made again; other hosts may have taken its partitions meanwhile",
                ownership.host_id,
                self._path,
            )
        changes = ownership.tick(busy=self._router.busy)
        if changes.lost or changes.surplus:
            self._leave_partitions(changes.lost | changes.surplus)
        if changes.surplus:
            ownership.give_back(changes.surplus)
        self._rounds += 1
        if changes.gained or self._rounds % self._backend.resume_every == 0:
            self._resume_unfinished()
        if changes.gained and self._inbox is not None:
            self._inbox.catch_up(changes.gained)  # what the last owner left

    def _leave_partitions(self, partitions: frozenset[int]) -> None:
        left = self._router.release(partitions)
        with self._resuming:
            self._resumed_ids.difference_update(
                [i for i in self._resumed_ids if partition_of(i) in partitions]
            )
        if left:
            logger.info(
                "%d run(s) of %d partition(s) left to other hosts",
                len(left),
                len(partitions),
            )

    def crash_presence(self) -> None:
        """Let other hosts see this one as dead (its process gone) while it
        still runs: for crash tests in one process. They take its partitions at
        once; its own writes from then on are fenced out. A backend with no
        presence (PostgreSQL) gets the same from this host's leases running
        out now, unrenewed, while it still believes it holds them."""
        if self._presence is not None:
            self._presence.release()
            return
        self._crashed = True  # no more lease rounds: a dead host renews nothing
        self._ownership.expire_all()

    # -- housekeeping -------------------------------------------------------------

    def _housekeep(self) -> None:
        """Passivate idle runs; checkpoint the index of unfinished runs."""
        idle = self._idle_timeout
        period = 1.0 if idle is None else min(1.0, idle / 4)
        last_checkpoint = time.monotonic()
        while not self._closing.wait(period):
            if idle is not None:
                self._router.passivate_idle(idle)
            if time.monotonic() - last_checkpoint > 60.0:
                self._index.checkpoint(self._clock.now())
                last_checkpoint = time.monotonic()

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
        if self._lease_keeper.is_alive():
            self._lease_keeper.join()
        self._stop_timers()
        # Running attempts finish and their actors record them; queued ones are
        # dropped and run again when the journal is reopened.
        self._worker.close(wait=True)
        handles = self._router.live_handles()
        actors = [h.actor for h in handles if h.actor is not None]
        for future in [actor.stop(block=False) for actor in actors]:
            future.get()
        try:
            self._supervisor.stop()
            self._index.checkpoint(self._clock.now())
            self._ownership.leave()  # its partitions are free at once
        finally:
            if self._presence is not None:
                self._presence.release()
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
        handles = self._router.live_handles()
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


def _plain_actor(workflow: object) -> type[Actor] | None:
    """The plain actor class ``spawn`` was given, or that its name defines."""
    if isinstance(workflow, type) and issubclass(workflow, Actor):
        return workflow
    if isinstance(workflow, str) and not is_workflow_name(workflow):
        return registered_actor(workflow)
    return None


def _tell(actor: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        actor.tell(message)
