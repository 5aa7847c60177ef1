"""The operator inbox: signals and cancels asked for by another process.

``chronik signal`` and ``chronik cancel`` run in a process of their own, while
a run must only ever be driven by the one actor of the system hosting it. So the
command never touches the run: it appends a request to the stream ``INBOX_ID``
of the journal's application log (hash-chained and audited like every event),
with optimistic concurrency on the stream's version, then wakes the host that
drives the run (``actors._wake``). Every open ``ActorSystem`` follows the
inbox: on open it delivers the requests its runs' histories do not show yet,
then the new ones of the runs it drives each time it is woken, and at least
every ``SLOW_POLL`` (the requests of different runs side by side, each run's in
order), through the system's own API (``ref.send(..., signal_id=request's
signal id)``, ``ref.cancel``). Delivery is idempotent (a signal by its id, a
cancel by the run's state), so two hosts, or a delivery redone after a crash,
never record a request twice.

The inbox is read from the stream's next version: a read of one key, where a
topic-filtered subscription of the log would rescan every notification since
its last match on each poll.

Invariant: a request the inbox skipped or failed to deliver is still in the
journal; the next open delivers it if its run is unfinished and lacks it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

import attrs
import pykka
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import register_topic

from actors._backend import Backend, Listener
from actors._errors import SystemClosedError, UnknownRunError
from actors._hostlock import HostLock
from actors._index import UnfinishedRuns
from actors._ref import RunRef
from actors._wake import SLOW_POLL, wake_run_owner
from aggregates import RunFinishedError, WorkflowRun
from chronik_errors import ChronikError
from journal import JournalClosedError, partition_of

__all__ = [
    "INBOX_ID",
    "OperatorCancelRequested",
    "OperatorInbox",
    "OperatorRequest",
    "OperatorRequests",
    "OperatorSignalRequested",
]

logger = logging.getLogger("chronik.actors.inbox")

INBOX_ID: Final = "chronik:operator-requests"
DELIVERY_TIMEOUT: Final = 30.0
DELIVERERS: Final = 16  # runs whose requests are delivered at once
_PAGE: Final = 1000


@attrs.frozen(slots=False, kw_only=True)
class OperatorRequest:
    """A request for run ``run_id``, by ``origin`` (who and where, for audit)."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    run_id: str
    origin: str

    def describe(self) -> str:
        raise NotImplementedError


@attrs.frozen(slots=False, kw_only=True)
class OperatorSignalRequested(OperatorRequest):
    topic: str
    payload: Any
    signal_id: str

    TOPIC = "actors:OperatorSignalRequested"

    def describe(self) -> str:
        return (
            f"request {self.originator_version} (signal {self.topic!r}, id "
            f"{self.signal_id!r}, for run {self.run_id!r})"
        )


@attrs.frozen(slots=False, kw_only=True)
class OperatorCancelRequested(OperatorRequest):
    reason: str

    TOPIC = "actors:OperatorCancelRequested"

    def describe(self) -> str:
        return f"request {self.originator_version} (cancel run {self.run_id!r})"


register_topic(OperatorSignalRequested.TOPIC, OperatorSignalRequested)
register_topic(OperatorCancelRequested.TOPIC, OperatorCancelRequested)

_R = TypeVar("_R", bound=OperatorRequest)


class OperatorRequests:
    """The inbox stream of one journal, through an eventsourcing application."""

    def __init__(
        self,
        app: Application[Any],
        wake: Callable[[str], None] | None = None,
    ) -> None:
        self._app = app
        # Wakes the host that drives a run once a request for it is durable;
        # by default the LMDB journal's (a pipe per host).
        self._wake = wake

    def signal(
        self,
        run_id: str,
        topic: str,
        payload: Any,
        *,
        signal_id: str,
        origin: str,
        at: datetime,
    ) -> OperatorSignalRequested:
        """Append a signal request; an unencodable payload raises, unwritten."""

        def make(version: int) -> OperatorSignalRequested:
            return OperatorSignalRequested(
                originator_id=INBOX_ID,
                originator_version=version,
                timestamp=at,
                run_id=run_id,
                origin=origin,
                topic=topic,
                payload=payload,
                signal_id=signal_id,
            )

        return self._append(make)

    def cancel(
        self, run_id: str, *, reason: str, origin: str, at: datetime
    ) -> OperatorCancelRequested:
        def make(version: int) -> OperatorCancelRequested:
            return OperatorCancelRequested(
                originator_id=INBOX_ID,
                originator_version=version,
                timestamp=at,
                run_id=run_id,
                origin=origin,
                reason=reason,
            )

        return self._append(make)

    def read(self, gt: int = 0) -> Iterator[OperatorRequest]:
        """The requests after version ``gt``, oldest first."""
        recorder, mapper = self._app.recorder, self._app.mapper
        while True:
            page = recorder.select_events(INBOX_ID, gt=gt, limit=_PAGE)
            for stored in page:
                request = mapper.to_domain_event(stored)
                assert isinstance(request, OperatorRequest)
                yield request
            if len(page) < _PAGE:
                return
            gt = page[-1].originator_version

    def _append(self, make: Callable[[int], _R]) -> _R:
        # Each lost race means another writer appended: retry after it.
        while True:
            last = self._app.recorder.select_events(INBOX_ID, desc=True, limit=1)
            request = make(last[0].originator_version + 1 if last else 1)
            stored = self._app.mapper.to_stored_event(request)
            try:
                self._app.recorder.insert_events([stored])
            except IntegrityError:
                continue
            if self._wake is not None:
                self._wake(request.run_id)
            else:
                journal = getattr(self._app.recorder, "journal", None)
                if journal is not None:  # an LMDB journal: its hosts listen
                    wake_run_owner(journal, request.run_id)
            return request


class RequestTarget(Protocol):
    """What the inbox delivers through: an open system."""

    def ref(self, workflow_id: str) -> RunRef: ...

    def history(self, workflow_id: str) -> WorkflowRun: ...

    def drives(self, workflow_id: str) -> bool:
        """Whether this system drives the run (holds its partition); the inbox
        delivers only those, the others are their hosts'."""

    def woken(self) -> None:
        """Someone woke this host: also look for runs started elsewhere."""


class OperatorInbox:
    """Follows one journal's inbox for one open system, holding its host lock."""

    def __init__(
        self,
        target: RequestTarget,
        app: Application[Any],
        path: str,
        channel: Listener,
    ):
        self._target = target
        self._channel = channel
        self._slow_poll = SLOW_POLL  # seconds between reads while idle
        self._requests = OperatorRequests(app)
        self._index = UnfinishedRuns(app)
        self._path = path
        self._stopping = threading.Event()
        self._lock: HostLock | None = None
        self._thread = threading.Thread(
            target=self._follow, name="chronik-operator-inbox", daemon=True
        )
        self.delivered = 0  # requests this system delivered (not skipped)

    @classmethod
    def start(
        cls,
        target: RequestTarget,
        app: Application[Any],
        backend: Backend,
        host_id: str,
    ) -> OperatorInbox:
        """Listen for wakes and take the host lock, then follow: a request
        appended before a probe that saw the lock is read by the catch-up or by
        a round after it."""
        inbox = cls(target, app, backend.where, backend.listen(host_id))
        inbox._slow_poll = backend.slow_poll
        inbox._lock = backend.host_lock()
        inbox._thread.start()
        return inbox

    def stop(self) -> None:
        """Stop delivering and let go of the host lock (requests from now on wait
        for the next open). Waits briefly for a delivery in progress."""
        self._stopping.set()
        self._channel.wake()
        if self._lock is not None:
            self._lock.release()
        thread = self._thread
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=DELIVERY_TIMEOUT / 3)
        self._channel.close()

    def _follow(self) -> None:
        try:
            version = self._catch_up()
            while True:
                woken = self._channel.wait(self._slow_poll)
                if self._stopping.is_set():
                    return
                version = self._poll(version)
                if woken:
                    self._target.woken()
        except (SystemClosedError, JournalClosedError):
            return  # closed during a delivery; the next open delivers it

    def _poll(self, version: int) -> int:
        try:
            requests = list(self._requests.read(gt=version))
            if requests:
                self._deliver_all(requests)
                version = requests[-1].originator_version
        except JournalClosedError:
            raise
        except ChronikError as error:  # the journal could not be read
            if not self._stopping.is_set():
                logger.warning(
                    "the operator inbox of %r could not be read (%s); trying "
                    "again in 1 s",
                    self._path,
                    error,
                )
                self._stopping.wait(1.0)
        return version

    def catch_up(self, partitions: frozenset[int]) -> None:
        """Deliver what the runs of ``partitions`` (just taken over from another
        host) lack of the requests so far."""
        self._catch_up(partitions)

    def _catch_up(self, partitions: frozenset[int] | None = None) -> int:
        """Deliver the requests for unfinished runs (of ``partitions``, if
        given) that their histories lack.

        The requests are read before the unfinished runs, so that every run a
        request names was started before that list was made.
        """
        requests = list(self._requests.read())
        unfinished = self._index.load()
        if partitions is not None:
            unfinished = {i for i in unfinished if partition_of(i) in partitions}
        self._deliver_all(
            [
                request
                for request in requests
                if request.run_id in unfinished and not self._recorded(request)
            ]
        )
        return requests[-1].originator_version if requests else 0

    def _recorded(self, request: OperatorRequest) -> bool:
        try:
            run = self._target.history(request.run_id)
        except UnknownRunError:
            return True
        if run.is_finished:
            return True
        if isinstance(request, OperatorSignalRequested):
            return request.signal_id in run.signal_ids
        return run.cancel_requested

    def _deliver_all(self, requests: list[OperatorRequest]) -> None:
        """Deliver ``requests``: each run's in order, up to ``DELIVERERS`` runs
        at once, so that their commits share fsyncs (one at a time, two hundred
        signals to waiting runs cost two hundred commits back to back)."""
        by_run: dict[str, list[OperatorRequest]] = {}
        for request in requests:
            if self._target.drives(request.run_id):
                by_run.setdefault(request.run_id, []).append(request)
        requests = [r for run in by_run.values() for r in run]
        if len(by_run) <= 1:
            self._deliver_run(requests)
            return
        with ThreadPoolExecutor(
            max_workers=min(DELIVERERS, len(by_run)),
            thread_name_prefix="chronik-operator-delivery",
        ) as pool:
            for done in [pool.submit(self._deliver_run, r) for r in by_run.values()]:
                done.result()  # SystemClosedError: the system is closing

    def _deliver_run(self, requests: list[OperatorRequest]) -> None:
        for request in requests:
            if self._stopping.is_set():
                return
            self._deliver(request)

    def _deliver(self, request: OperatorRequest) -> None:
        """Deliver one request; it is never lost, so a failure is reported and
        left to the next open (and to the waiting ``chronik`` command)."""
        try:
            ref = self._target.ref(request.run_id)
            if isinstance(request, OperatorSignalRequested):
                ref.send(
                    request.topic,
                    request.payload,
                    signal_id=request.signal_id,
                    timeout=DELIVERY_TIMEOUT,
                )
            elif isinstance(request, OperatorCancelRequested):
                ref.cancel(request.reason, timeout=DELIVERY_TIMEOUT)
        except SystemClosedError:
            raise
        except (UnknownRunError, RunFinishedError) as error:
            logger.info("operator %s skipped: %s", request.describe(), error)
            return
        except (ChronikError, pykka.Timeout) as error:
            logger.warning(
                "operator %s not delivered: %s; it is delivered when the journal "
                "is next opened",
                request.describe(),
                error,
            )
            return
        except Exception:
            logger.exception(
                "operator %s not delivered: a chronik bug? It is delivered when "
                "the journal is next opened",
                request.describe(),
            )
            return
        self.delivered += 1
        logger.info("operator %s delivered", request.describe())
