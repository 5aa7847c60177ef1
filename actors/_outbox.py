"""The transactional outbox's relay: the journal's messages to a sink, at least once.

``ctx.publish`` records a ``MessagePublished`` event in the run's stream, in the
same commit as the run's progress. A ``Relay`` reads those events from the
journal's log in log order (so messages of one key go out in publishing order),
hands each to its ``Sink`` and records how far it got as a tracking position in
the journal (eventsourcing's tracking recorder, under ``"outbox:<sink name>"``).
After a crash it starts again from the last recorded position: a message handed
to the sink but not yet tracked goes out again, with the same id, so delivery is
at least once and a consumer drops repeats by id. The position is recorded every
``track_every`` messages (32) and at the end of each page, so a crash sends at
most that many again.

A message the sink keeps refusing (``max_attempts`` tries, pausing longer each
time) is recorded as a dead letter, in the same transaction as the position
past it, and the relay goes on with the next: one bad message does not stop the
others. A sink whose server cannot be reached raises ``SinkUnavailableError``
instead: that is no fault of the message, so the relay stops where it is (the
messages wait in the journal, runs go on publishing) and tries again after a
pause that doubles up to ``max_pause``; it never dead-letters for an outage.
``Relay.dead_letters()`` lists the dead letters; ``Relay.retry(message_id)``
hands one to the sink again and records that it went.

The relay runs as a supervised service of the system (``ActorSystem.relay``):
a pykka actor that delivers a page at a time and, caught up, looks again after
``poll`` seconds. It never blocks runs: runs commit their messages whatever the
sink does, and the relay reads them when it can.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import attrs
import pykka
from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    ProcessRecorder,
    Tracking,
)
from eventsourcing.utils import register_topic

from actors._errors import SinkUnavailableError
from aggregates import MessagePublished, message_id

__all__ = [
    "WAKE",
    "DeadLetter",
    "OutboxMessage",
    "Relay",
    "RelayActor",
    "Sink",
]

logger = logging.getLogger(__name__)

_MESSAGE_TOPIC: Final = MessagePublished.TOPIC
_PAGE: Final = 256


@attrs.frozen
class OutboxMessage:
    """One published message, as the relay hands it to a sink."""

    id: str  # "<run id>:<seq>": the same on every delivery
    topic: str
    payload: Any
    key: str | None
    run_id: str
    position: int  # its place in the journal's log
    published_at: datetime


class Sink(Protocol):
    """Where a relay delivers: ``send`` returns once the message is accepted (a
    broker's acknowledgement) and raises if it was not.

    A sink may also have ``send_many(messages) -> int``: send them in order,
    waiting for the answers together, and return how many of the first were
    accepted (raising ``SinkUnavailableError`` if the server cannot be reached
    at all); the relay then sends in batches of ``batch``."""

    name: str

    def send(self, message: OutboxMessage) -> None: ...


@attrs.frozen(slots=False, kw_only=True)
class DeadLetter:
    """A message the sink refused ``attempts`` times (an event of the stream
    ``"chronik:outbox-dead:<sink name>"``); ``retried`` when handed again."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    message_id: str
    topic: str
    payload: Any
    key: str | None
    run_id: str
    position: int
    published_at: datetime
    error: str
    attempts: int
    retried: bool = False

    TOPIC = "actors:OutboxDeadLetter"

    def message(self) -> OutboxMessage:
        return OutboxMessage(
            self.message_id,
            self.topic,
            self.payload,
            self.key,
            self.run_id,
            self.position,
            self.published_at,
        )


register_topic(DeadLetter.TOPIC, DeadLetter)


class Relay:
    """Delivers the journal's messages to ``sink``; see the module."""

    def __init__(
        self,
        app: Application[Any],
        tracker: ProcessRecorder,
        sink: Sink,
        *,
        max_attempts: int = 5,
        first_pause: float = 0.05,
        page: int = _PAGE,
        track_every: int = 32,
        batch: int = 32,
    ) -> None:
        name = getattr(sink, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a sink needs a non-empty str name, not {name!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._app = app
        self._tracker = tracker
        self.sink = sink
        self.tracking_name = f"outbox:{name}"
        self.dead_stream = f"chronik:outbox-dead:{name}"
        self._max_attempts = max_attempts
        self._first_pause = first_pause
        self._page = page
        self.track_every = track_every
        self._batch = batch
        self._lock = threading.Lock()  # one delivery at a time
        self.delivered = 0  # sends accepted by the sink, this relay's life
        self.unavailable: str | None = None  # why the sink's server was out, if it is

    @property
    def position(self) -> int:
        """The log position up to which every message was delivered."""
        return self._tracker.max_tracking_id(self.tracking_name) or 0

    def pending(self) -> list[OutboxMessage]:
        """The messages after ``position`` (a page at most)."""
        return list(self._messages(self.position))

    def deliver(self) -> int:
        """Deliver the next page of messages; how many went (or were given up).

        A sink with ``send_many`` gets them in batches (in order; it answers
        how many of the first it accepted); a message a batch stopped at goes
        alone, with its attempts and perhaps a dead letter, as to any sink."""
        with self._lock:
            messages = list(self._messages(self.position))
            progress = _Progress(self)
            alone = False  # the message a batch stopped at goes alone next
            while progress.done < len(messages):
                if hasattr(self.sink, "send_many") and not alone:
                    batch = messages[progress.done : progress.done + self._batch]
                    accepted = self._send_batch(batch)
                    if accepted is None:
                        break
                    alone = accepted < len(batch)
                    if accepted:
                        progress.sent(batch[accepted - 1].position, accepted)
                        continue
                alone = False
                message = messages[progress.done]
                try:
                    error = self._send(message)
                except SinkUnavailableError as out:
                    self.unavailable = str(out)
                    break
                self.unavailable = None
                if error is None:
                    progress.sent(message.position, 1)
                else:
                    progress.buried(message, error)
            progress.finish()
            return progress.done

    def dead_letters(self) -> list[DeadLetter]:
        """Every message given up on, oldest first (retried ones included)."""
        events = self._app.events.get(self.dead_stream)
        return [event for event in events if isinstance(event, DeadLetter)]

    def retry(self, message_id: str) -> None:
        """Hand the dead letter ``message_id`` to the sink again (once); record
        that it went. Raises what the sink raised, or ``KeyError``."""
        with self._lock:
            letters = [d for d in self.dead_letters() if d.message_id == message_id]
            if not letters or letters[-1].retried:
                raise KeyError(f"no dead letter {message_id!r} waiting for a retry")
            letter = letters[-1]
            self.sink.send(letter.message())
            self.delivered += 1
            self._append_dead(
                attrs.evolve(letter, retried=True, error=letter.error), None
            )

    # -- internals ---------------------------------------------------------------

    def _messages(self, after: int) -> Iterator[OutboxMessage]:
        notifications = self._app.recorder.select_notifications(
            start=after + 1, limit=self._page, topics=[_MESSAGE_TOPIC]
        )
        for notification in notifications:
            yield self._message(notification)

    def _message(self, notification: Notification) -> OutboxMessage:
        event = self._app.mapper.to_domain_event(notification)
        assert isinstance(event, MessagePublished)
        run_id = str(event.originator_id)
        return OutboxMessage(
            message_id(run_id, event.seq),
            event.topic,
            event.payload,
            event.key,
            run_id,
            notification.id,
            event.timestamp,
        )

    def _send(self, message: OutboxMessage) -> str | None:
        """None once the sink took it; else the last refusal, in words."""
        pause = self._first_pause
        error = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                self.sink.send(message)
            except SinkUnavailableError:
                raise  # an outage: not this message's fault, nor an attempt
            except Exception as refused:  # a sink's refusal is data here
                error = f"{type(refused).__name__}: {refused}"
                logger.warning(
                    "outbox %s: attempt %d of %d to deliver %s failed: %s",
                    self.sink.name,
                    attempt,
                    self._max_attempts,
                    message.id,
                    error,
                )
                if attempt < self._max_attempts:
                    time.sleep(pause)
                    pause = min(pause * 2, 5.0)
            else:
                self.delivered += 1
                return None
        return error

    def _send_batch(self, batch: list[OutboxMessage]) -> int | None:
        """How many of ``batch``'s first messages the sink's ``send_many``
        accepted; None if its server cannot be reached."""
        try:
            accepted = int(self.sink.send_many(batch))  # type: ignore[attr-defined]
        except SinkUnavailableError as out:
            self.unavailable = str(out)
            return None
        except Exception:  # the first refused: the relay sends it alone next
            return 0
        if accepted:
            self.unavailable = None
            self.delivered += accepted
        return accepted

    def track(self, position: int) -> None:
        """Record that every message up to ``position`` was delivered."""
        try:
            self._tracker.insert_events(
                [], tracking=Tracking(self.tracking_name, position)
            )
        except IntegrityError:
            # Another relay of this sink (another host's) tracked as far or
            # further meanwhile: its position stands; both delivered (at least once).
            logger.info(
                "outbox %s: position %d was tracked already by another relay",
                self.sink.name,
                position,
            )

    def bury(self, message: OutboxMessage, error: str) -> None:
        """Record ``message`` as a dead letter, and the position past it."""
        logger.error(
            "outbox %s: gave up on message %s after %d attempts (%s); it is a "
            "dead letter now: relay.retry(%r) sends it again",
            self.sink.name,
            message.id,
            self._max_attempts,
            error,
            message.id,
        )
        letter = DeadLetter(
            originator_id=self.dead_stream,
            originator_version=0,  # set by _append_dead
            timestamp=datetime.now(UTC),
            message_id=message.id,
            topic=message.topic,
            payload=message.payload,
            key=message.key,
            run_id=message.run_id,
            position=message.position,
            published_at=message.published_at,
            error=error,
            attempts=self._max_attempts,
        )
        self._append_dead(letter, message.position)

    def _append_dead(self, letter: DeadLetter, position: int | None) -> None:
        """Append ``letter`` to the dead stream (with the tracking position past
        it, if given), in one transaction."""
        version = len(self.dead_letters()) + 1
        letter = attrs.evolve(
            letter, originator_version=version, timestamp=datetime.now(UTC)
        )
        stored = [self._app.mapper.to_stored_event(letter)]
        tracking = None if position is None else Tracking(self.tracking_name, position)
        self._tracker.insert_events(stored, tracking=tracking)


class _Progress:
    """One ``deliver``'s count, and the position it has yet to record (every
    ``track_every`` messages, before a dead letter, and at the end)."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self.done = 0  # messages delivered or given up
        self._last: int | None = None  # delivered up to here, not recorded
        self._untracked = 0

    def sent(self, position: int, count: int) -> None:
        self.done += count
        self._untracked += count
        self._last = position
        if self._untracked >= self._relay.track_every:
            self.finish()  # a crash re-sends at most this many

    def buried(self, message: OutboxMessage, error: str) -> None:
        self.done += 1
        self.finish()
        self._relay.bury(message, error)

    def finish(self) -> None:
        if self._last is not None:
            self._relay.track(self._last)
        self._last, self._untracked = None, 0


@attrs.frozen
class _Tick:
    """Deliver the next page. ``generation``: the timer's that sent it (a tick
    of a timer since replaced is stale); None when told directly."""

    generation: int | None = None


class _Wake:
    """A commit of this system carried a published message: look now, unless
    a look is under way or the sink's server is out."""


WAKE: Final = _Wake()


class RelayActor(pykka.ThreadingActor):
    """The relay as a supervised service: a page per message, a pause of
    ``poll`` seconds once caught up. A sink error that escapes the relay (not a
    refusal, which it records) fails the actor; its supervisor restarts it and
    delivery goes on from the tracked position."""

    def __init__(self, relay: Relay, poll: float, max_pause: float = 5.0) -> None:
        super().__init__()
        self._relay = relay
        self._poll = poll
        self._max_pause = max_pause
        self._pause = poll  # while the sink's server is out: doubles, capped
        self._timer: threading.Timer | None = None  # the pending look, if any
        self._generation = 0  # of the pending look's timer

    def on_start(self) -> None:
        self.actor_ref.tell(_Tick())

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Wake):
            if self._timer is None or self._relay.unavailable is not None:
                return None  # looking already, or waiting out an outage
        elif not isinstance(message, _Tick):
            return None
        elif message.generation not in (None, self._generation):
            return None  # a replaced timer's
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delivered = self._relay.deliver()
        if self._relay.unavailable is not None:
            logger.warning(
                "outbox %s: %s; trying again in %.2f s (messages wait in the journal)",
                self._relay.sink.name,
                self._relay.unavailable,
                self._pause,
            )
            self._later(self._pause)
            self._pause = min(self._pause * 2, self._max_pause)
            return None
        self._pause = self._poll
        if delivered:
            self.actor_ref.tell(_Tick())
        else:
            self._later(self._poll)
        return None

    def _later(self, seconds: float) -> None:
        if self._timer is not None:  # one chain of looks, never two
            self._timer.cancel()
        self._generation += 1
        tick = _Tick(self._generation)
        self._timer = threading.Timer(seconds, _tell_quietly, (self.actor_ref, tick))
        self._timer.daemon = True
        self._timer.start()


def _tell_quietly(ref: pykka.ActorRef[Any], message: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile
        ref.tell(message)
