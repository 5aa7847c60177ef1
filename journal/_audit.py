"""Read-only audit readers: one stream's history, the notification log, a check.

A reader never takes LMDB's write lock, and reads in pages of short read
transactions, so it neither blocks writers nor pins old pages while a caller
iterates slowly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

import attrs
import msgpack
from eventsourcing.persistence import Notification, StoredEvent

from journal._keys import decode_event_key, decode_notification_id
from journal._recorders import LMDBAggregateRecorder, LMDBApplicationRecorder
from journal._settings import JournalSettings
from journal._store import EVENTS_DB, NOTIFICATIONS_DB, Journal

__all__ = ["JournalReader", "VerifyReport"]

PAGE_SIZE = 1000


@attrs.frozen
class VerifyReport:
    """What ``JournalReader.verify`` found; ``ok`` when ``problems`` is empty."""

    events: int
    notifications: int
    max_notification_id: int | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class JournalReader:
    """Reads a journal for audit. Opens it read-only unless this process already
    has it open, in which case it shares that environment."""

    def __init__(self, path: str) -> None:
        self._journal = Journal.open(JournalSettings(path=path), readonly=True)
        self._events = LMDBApplicationRecorder(self._journal)

    @property
    def path(self) -> str:
        return self._journal.path

    def stream(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        purpose: str | None = None,
    ) -> Iterator[StoredEvent]:
        """Every stored event of one stream, oldest first (``purpose="snapshots"``
        reads the snapshots of an application that takes them)."""
        recorder = (
            self._events
            if purpose is None
            else LMDBAggregateRecorder(self._journal, purpose)
        )
        while True:
            page = recorder.select_events(originator_id, gt=gt, limit=PAGE_SIZE)
            yield from page
            if len(page) < PAGE_SIZE:
                return
            gt = page[-1].originator_version

    def notifications(
        self, start: int = 1, topics: Sequence[str] = ()
    ) -> Iterator[Notification]:
        """The application sequence from notification id ``start`` on."""
        while True:
            page = self._events.select_notifications(start, PAGE_SIZE, topics=topics)
            yield from page
            if len(page) < PAGE_SIZE:
                return
            start = page[-1].id + 1

    def max_notification_id(self) -> int | None:
        return self._events.max_notification_id()

    def verify(self) -> VerifyReport:
        """Check that notification ids are gapless from 1 and that the log and the
        event table point at each other exactly."""
        store = self._journal.store
        events_db, notes_db = store.db(EVENTS_DB), store.db(NOTIFICATIONS_DB)
        if events_db is None or notes_db is None:
            return VerifyReport(0, 0, None, ())
        problems: list[str] = []
        with store.reading() as txn:
            expected = 1
            notifications = 0
            for id_key, key in txn.cursor(db=notes_db):
                notification_id = decode_notification_id(id_key)
                notifications += 1
                if notification_id != expected:
                    gap = f"{expected - 1} to {notification_id}"
                    problems.append(f"notification ids jump from {gap}")
                expected = notification_id + 1
                value = txn.get(key, db=events_db)
                if value is None or msgpack.unpackb(value)[0] != notification_id:
                    problems.append(
                        f"notification {notification_id} points at a missing "
                        "or different event"
                    )
            events = 0
            for key, value in txn.cursor(db=events_db):
                events += 1
                if msgpack.unpackb(value)[0] is None:
                    originator_id, version = decode_event_key(key)
                    problems.append(
                        f"event {originator_id} v{version} has no notification id"
                    )
        last = expected - 1 if notifications else None
        if events != notifications:
            problems.append(f"{events} events but {notifications} notifications")
        return VerifyReport(events, notifications, last, tuple(problems))

    def close(self) -> None:
        self._journal.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
