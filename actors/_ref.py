"""``RunRef``: a handle on one workflow run, usable from any thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

import pykka

from actors._errors import ResultTimeoutError, RunUnavailableError
from actors._messages import CancelRun, DeliverSignal, Query, Reply
from aggregates import RunStatus, WorkflowRun
from supervision import LazyEvent

__all__ = ["RunHandle", "RunRef"]


class RunHandle:
    """What the system knows of one run, shared by its refs and its actors.

    The actor is ``None`` while the run is passive (on disk only), finished, or
    broken off; the system activates it again by replay when a message comes.
    While a supervisor restarts the run's actor after a fault, ``actor`` is the
    dead incarnation: messages told meanwhile wait in a stash for the next one.
    Invariant: once ``done`` is set by ``finish``, ``status``, ``result`` and
    ``error`` are final.
    """

    def __init__(self, workflow_id: str, name: str, args: list[Any]) -> None:
        self.workflow_id = workflow_id
        self.name = name
        self.args = args
        self.actor: pykka.ActorRef[Any] | None = None
        # Monotonic time since which the run has waited with nothing in flight.
        self.idle_since: float | None = None
        self.status = RunStatus.RUNNING
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = LazyEvent()
        # The run as last read from the journal while it had no actor: the next
        # activation replays it instead of reading it again. Cleared on attach.
        self.loaded: WorkflowRun | None = None
        self.activations = 0  # actors started for it by activation (not restart)
        self.restarts = 0  # actors started for it by its supervisor after a fault
        self.faults: deque[float] | None = None  # monotonic times of recent faults
        # Invariant: _stash is empty unless actor is a dead incarnation that a
        # supervisor is replacing; the replacement takes it on attach.
        self._stash: list[Any] = []
        self._lock = threading.Lock()

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.RUNNING

    def attach(self, actor: pykka.ActorRef[Any]) -> None:
        """A (new) actor drives the run: a break-off before no longer stands.
        Messages stashed while its predecessor was being replaced go to it."""
        with self._lock:
            self.actor = actor
            stash, self._stash = self._stash, []
        self.idle_since = None
        self.loaded = None
        if not self.finished and self.done.is_set():
            self.error = None
            self.done.clear()
        for message in stash:
            actor.tell(message)
        _notify_changed()

    def tell(self, message: Any) -> None:
        """Tell the run's actor; if it died and is being replaced, its
        replacement gets the message. Without an actor, the message is dropped
        (it is redone from history when the run is next activated)."""
        with self._lock:
            actor = self.actor
            if actor is None:
                return
            try:
                actor.tell(message)
            except pykka.ActorDeadError:
                self._stash.append(message)

    def stash(self, message: Any) -> None:
        """Keep ``message`` for the actor that replaces the dead one."""
        with self._lock:
            self._stash.append(message)

    def finish(
        self, status: RunStatus, result: Any = None, error: BaseException | None = None
    ) -> None:
        self.status, self.result, self.error = status, result, error
        self._forget_actor()
        self.done.set()
        _notify_changed()

    def fault(self, now: float, period: float) -> int:
        """Count a fault of the run's actor at ``now``; how many in ``period``."""
        faults = self.faults
        if faults is None:
            faults = self.faults = deque()
        faults.append(now)
        while now - faults[0] > period:
            faults.popleft()
        return len(faults)

    def break_off(self, error: BaseException) -> None:
        """The run's actor stopped on ``error``: the run stays unfinished on disk."""
        self._forget_actor()
        self.error = RunUnavailableError(
            self.workflow_id, f"{type(error).__name__}: {error}"
        )
        self.error.__cause__ = error
        self.done.set()
        _notify_changed()

    def wait_replaced(self, stale: pykka.ActorRef[Any], deadline: float | None) -> None:
        """Wait until the run's actor is no longer ``stale`` (replaced, broken off
        or finished), until ``deadline`` (monotonic) at most, or briefly."""
        pause = 0.05 if deadline is None else max(0.0, deadline - time.monotonic())
        with _changed:
            _changed.wait_for(lambda: self.actor is not stale, min(pause, 0.05))

    def _forget_actor(self) -> None:
        with self._lock:
            self.actor = None
            self._stash.clear()


# Signalled whenever any handle's actor changes; waiters re-check their own.
_changed = threading.Condition()


def _notify_changed() -> None:
    with _changed:
        _changed.notify_all()


_FIRST_LOOK = 0.005  # seconds before result() first looks in the journal
_LAST_LOOK = 0.1  # and the longest pause between two looks


def _until(deadline: float | None, pause: float) -> float:
    if deadline is None:
        return pause
    return max(0.0, min(pause, deadline - time.monotonic()))


class RunRouter(Protocol):
    """How a ref reaches a run's actor, activating a passive run by replay."""

    def ask(self, handle: RunHandle, message: Any, timeout: float | None) -> Reply:
        """Deliver ``message`` to the run's actor and wait for its reply."""

    def settled(self, handle: RunHandle) -> bool:
        """Whether the run has ended (``handle`` then says how), read from the
        journal if another host drives it."""

    def normalise(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""


class RunRef:
    """Refer to a run by id: its status and result; signals, cancel, queries."""

    def __init__(self, handle: RunHandle, router: RunRouter) -> None:
        self._handle = handle
        self._router = router

    @property
    def id(self) -> str:
        return self._handle.workflow_id

    def __repr__(self) -> str:
        return f"RunRef({self.id!r}, {self._handle.status})"

    def status(self) -> RunStatus:
        self._router.settled(self._handle)
        return self._handle.status

    def result(self, timeout: float | None = None) -> Any:
        """The run's result, waiting up to ``timeout`` seconds for it, wherever
        the run is driven (this host, or another host of the journal).

        A failed run raises ``WorkflowFailedError``, a cancelled one
        ``RunCancelledError``; a run whose actor stopped on an error raises
        ``RunUnavailableError``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_LOOK
        while not self._handle.done.wait(_until(deadline, pause)):
            # Another host may drive the run: then its end shows in the journal.
            if self._router.settled(self._handle):
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(self.id, timeout)
            pause = min(pause * 2, _LAST_LOOK)
        if self._handle.error is not None:
            raise self._handle.error
        return self._handle.result

    def send(
        self,
        topic: str,
        payload: Any = None,
        *,
        signal_id: str | None = None,
        timeout: float | None = 30.0,
    ) -> str:
        """Send a signal; return its id once ``SignalReceived`` is durable.

        Re-sending with the same ``signal_id`` is a no-op, so a sender that lost
        the acknowledgement may safely send again.
        """
        if not isinstance(topic, str) or not topic:
            msg = f"signal topic {topic!r} must be a non-empty str"
            raise TypeError(msg)
        payload = self._router.normalise(payload)
        signal_id = signal_id or str(uuid.uuid4())
        message = DeliverSignal(topic, payload, signal_id)
        return str(self._ask(message, timeout))

    def cancel(
        self, reason: str = "cancelled", *, timeout: float | None = 30.0
    ) -> None:
        """Ask the run to cancel; return once the request is durable.

        The workflow sees ``WorkflowCancelled`` at its current ``await`` and may
        compensate; asking again is a no-op. A finished run raises
        ``RunFinishedError``.
        """
        if not isinstance(reason, str):
            msg = f"cancel reason {reason!r} must be a str"
            raise TypeError(msg)
        self._ask(CancelRun(reason), timeout)

    def query(self, name: str, *args: Any, timeout: float | None = 30.0) -> Any:
        """Call the query handler ``name`` the workflow registered.

        A passive run is activated by replay to answer; a finished run is
        replayed read-only, so its queries answer with its final state.
        """
        return self._ask(Query(name, args), timeout)

    def _ask(self, message: Any, timeout: float | None) -> Any:
        reply = self._router.ask(self._handle, message, timeout)
        if reply.error is not None:
            raise reply.error
        return reply.value
