"""Dispatchers: many actors share a small, fixed set of threads.

As Akka's dispatchers schedule actors, a ``Dispatcher`` runs a
``DispatchedActor`` on one of its threads only while the actor has messages:
a message put in an idle actor's mailbox schedules the actor; a thread takes it,
handles up to ``throughput`` messages one at a time and in order, and then
gives the thread back (rescheduling the actor if more came). An actor is never
run by two threads at once, so it handles one message at a time, as a
``ThreadingActor`` does, but a thousand idle actors hold no thread at all.

A handler that blocks (a journal commit, say) holds its thread meanwhile; size
the dispatcher for that (the other threads go on with other actors).
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import threading
from collections import deque
from typing import Any

import pykka
from pykka._envelope import Envelope

from supervision._actor import SupervisedActor
from supervision._flag import LazyEvent

__all__ = ["DispatchedActor", "Dispatcher", "inline_turns"]

logger = logging.getLogger("chronik.supervision")

_numbers = itertools.count(1)


class _Inline(threading.local):
    """Whether this thread may run an actor's turn itself, and whether it is."""

    allowed = False
    running = False


_inline = _Inline()


class inline_turns:
    """On this thread, a message that schedules an idle actor runs the actor's
    turn here and now, instead of handing it to a dispatcher thread.

    For threads whose work ends in telling an actor (a step's worker thread
    after the step returned): the hand-off to another thread, and its wake-up,
    is saved. An actor is still never run by two threads at once, and a turn
    never runs inside another (the second is scheduled as usual).
    """

    def __enter__(self) -> None:
        self._before = _inline.allowed
        _inline.allowed = True

    def __exit__(self, *exc: object) -> None:
        _inline.allowed = self._before


class Dispatcher:
    """A fixed set of daemon threads that run scheduled actors."""

    def __init__(
        self, threads: int = 8, *, name: str = "chronik-dispatch", throughput: int = 8
    ) -> None:
        if not isinstance(threads, int) or threads < 1:
            msg = f"a dispatcher needs threads >= 1, not {threads!r}"
            raise ValueError(msg)
        if not isinstance(throughput, int) or throughput < 1:
            msg = f"a dispatcher needs throughput >= 1, not {throughput!r}"
            raise ValueError(msg)
        self.size = threads
        self.throughput = throughput  # messages an actor handles per turn
        self._name = f"{name}-{next(_numbers)}"
        self._ready: queue.SimpleQueue[DispatchedActor | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._actors = 0  # started and not yet ended

    @property
    def actors(self) -> int:
        """How many of its actors have started and not yet ended."""
        return self._actors

    def _count(self, change: int) -> None:
        with self._lock:
            self._actors += change

    @property
    def threads(self) -> int:
        """How many threads it has started (at most ``size``)."""
        return len(self._threads)

    def schedule(self, actor: DispatchedActor) -> None:
        """Give ``actor`` a turn on one of the threads (it has work)."""
        self._ready.put(actor)
        if len(self._threads) < self.size:
            self._grow()

    def _grow(self) -> None:
        with self._lock:
            if self._closed or len(self._threads) >= self.size:
                return
            thread = threading.Thread(
                target=self._work,
                name=f"{self._name}-{len(self._threads) + 1}",
                daemon=True,  # a crashed process must not wait for its actors
            )
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while (actor := self._ready.get()) is not None:
            actor._dispatch_turn()

    def close(self, timeout: float | None = None) -> None:
        """Let the threads end once the actors scheduled so far had their turn."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._ready.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


class _Mailbox:
    """An actor's inbox that schedules the actor when a message comes.

    Invariant: ``_scheduled`` is True from the moment the actor is handed to
    the dispatcher until a turn ends with the mailbox empty; so at most one
    thread runs the actor, and no message waits in an idle mailbox.
    """

    __slots__ = ("_actor", "_closed", "_lock", "_messages", "_scheduled")

    def __init__(self, actor: DispatchedActor) -> None:
        self._actor = actor
        # None while empty: an idle actor's mailbox holds no deque (~0.7 KiB).
        self._messages: deque[Envelope[Any]] | None = None
        self._lock = threading.Lock()
        self._scheduled = True  # until its start has run
        self._closed = False

    def put(self, envelope: Envelope[Any], /) -> None:
        with self._lock:
            if not self._closed:
                if self._messages is None:
                    self._messages = deque()
                self._messages.append(envelope)
                if self._scheduled:
                    return
                self._scheduled = True
        if self._closed:
            _answer_dead(self._actor, envelope)
            return
        if _inline.allowed and not _inline.running:
            _inline.running = True
            try:
                self._actor._dispatch_turn()
            finally:
                _inline.running = False
            return
        self._actor._dispatcher.schedule(self._actor)

    def get(self) -> Envelope[Any]:
        with self._lock:
            if not self._messages:
                raise IndexError("get from an empty mailbox")
            return self._take()

    def empty(self) -> bool:
        return not self._messages

    def _take(self) -> Envelope[Any]:
        """The first message; hold the lock, and know there is one."""
        messages = self._messages
        assert messages
        envelope = messages.popleft()
        if not messages:
            self._messages = None
        return envelope

    def take(self) -> Envelope[Any] | None:
        """The next message; ``None`` if there is none, and then the actor is
        no longer scheduled (a message put later schedules it again)."""
        with self._lock:
            if self._messages:
                return self._take()
            self._scheduled = False
            return None

    def keep_scheduled(self) -> bool:
        """At the end of a turn: whether messages are left (the actor stays
        scheduled, for another turn), else the actor is no longer scheduled."""
        with self._lock:
            if self._messages:
                return True
            self._scheduled = False
            return False

    def close(self) -> list[Envelope[Any]]:
        """Take no more messages; those left over."""
        with self._lock:
            self._closed = True
            left, self._messages = list(self._messages or ()), None
        return left


def _answer_dead(actor: DispatchedActor, envelope: Envelope[Any]) -> None:
    if envelope.reply_to is not None:
        error = pykka.ActorDeadError(f"{actor.actor_ref} stopped")
        envelope.reply_to.set_exception((pykka.ActorDeadError, error, None))


class DispatchedActor(SupervisedActor):
    """A ``SupervisedActor`` run by a ``Dispatcher`` instead of its own thread.

    Set ``dispatcher`` before ``start`` (a class attribute, or in ``__init__``
    before calling ``super().__init__()``).
    """

    _dispatcher: Dispatcher

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Its ref reads the same flag (pykka's ref copies the attribute).
        stopped = LazyEvent()
        self.actor_stopped = stopped  # type: ignore[assignment]
        self.actor_ref.actor_stopped = stopped  # type: ignore[assignment]

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
        """As ``pykka.Actor.start``, but not in pykka's ``ActorRegistry``: its
        removal scans a list, which thousands of runs' actors would make slow
        (their dispatcher counts them; ``ActorRegistry.stop_all`` skips them)."""
        actor = cls(*args, **kwargs)
        actor._start_actor_loop()
        return actor.actor_ref

    def _stop(self) -> None:
        self._supervision_begin_exit()
        self.actor_stopped.set()
        try:
            self.on_stop()
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _create_actor_inbox(self) -> _Mailbox:  # type: ignore[override]
        return _Mailbox(self)

    def _start_actor_loop(self) -> None:
        self._dispatch_started = False
        self._dispatch_ended = False
        self._dispatcher._count(1)
        self._dispatcher.schedule(self)

    def _dispatch_turn(self) -> None:
        """One turn on a dispatcher thread: start, or up to ``throughput``
        messages, one at a time; the end of the actor once it has stopped."""
        mailbox: _Mailbox = self.actor_inbox  # type: ignore[assignment]
        try:
            if not self._dispatch_started:
                self._dispatch_started = True
                self._actor_loop_setup()
            for _ in range(self._dispatcher.throughput):
                if self.actor_stopped.is_set():
                    break
                envelope = mailbox.take()
                if envelope is None:
                    return
                try:
                    self._supervision_handle(envelope)
                finally:
                    self._after_envelope(envelope.message)
            if not self.actor_stopped.is_set():
                if mailbox.keep_scheduled():
                    self._dispatcher.schedule(self)
                return
            self._actor_loop_teardown()
        except BaseException:  # a failure outside any handler
            self._handle_failure(*sys.exc_info())
            self._actor_loop_teardown()
        self._dispatch_end(mailbox)

    def _dispatch_end(self, mailbox: _Mailbox) -> None:
        if self._dispatch_ended:
            return
        self._dispatch_ended = True
        for envelope in mailbox.close():
            _answer_dead(self, envelope)
        try:
            self._supervision_finish()
        finally:
            self._dispatcher._count(-1)
