"""Read-only audit readers: one stream's history, the notification log, a check.

A reader never takes LMDB's write lock, and reads in pages of short read
transactions, so it neither blocks writers nor pins old pages while a caller
iterates slowly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from journal._recorders import (
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
    LMDBSubscription,
)
from journal._settings import JournalSettings
from journal._store import Journal
from journal._verify import Checker, Problem, Progress, VerifyReport

__all__ = ["JournalReader", "PagedReads", "Problem", "VerifyReport"]

PAGE_SIZE = 1000


class PagedReads:
    """A reader's pages of one stream and of the notification log, from its
    ``_events`` recorder (and ``_snapshots_of(purpose)`` for snapshots)."""

    _events: Any

    def _snapshots_of(self, purpose: str) -> Any:
        raise NotImplementedError

    def stream(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        purpose: str | None = None,
    ) -> Iterator[StoredEvent]:
        """Every stored event of one stream, oldest first (``purpose="snapshots"``
        reads the snapshots of an application that takes them)."""
        recorder = self._events if purpose is None else self._snapshots_of(purpose)
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


class JournalReader(PagedReads):
    """Reads a journal for audit. Opens it read-only unless this process already
    has it open, in which case it shares that environment."""

    def __init__(self, path: str) -> None:
        self._journal = Journal.open(JournalSettings(path=path), readonly=True)
        self._events = LMDBApplicationRecorder(self._journal)

    @property
    def path(self) -> str:
        return self._journal.path

    def _snapshots_of(self, purpose: str) -> LMDBAggregateRecorder:
        return LMDBAggregateRecorder(self._journal, purpose)

    def follow(self, start: int = 1, topics: Sequence[str] = ()) -> LMDBSubscription:
        """The application sequence from ``start`` on, then each notification as
        it is committed (by this process at once, by others within 10 ms).
        Iterate it; ``stop()`` it (or use it as a context manager) to end."""
        return LMDBSubscription(
            self._events, gt=start - 1 if start > 1 else None, topics=topics
        )

    def max_notification_id(self) -> int | None:
        found: int | None = self._events.max_notification_id()
        return found

    def verify(
        self,
        originator_id: UUID | str | None = None,
        *,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Recompute the hash chains and name what does not match.

        The whole journal: every position of the log in order (``progress`` is
        called with the count checked so far, after each page), the head, events
        no position points at, and the snapshot tables. One stream: its events'
        chain and their log entries.
        """
        checker = Checker(self._journal.store)
        if originator_id is not None:
            checker.check_stream(originator_id)
        else:
            checker.check_log(progress)
            checker.check_end_and_orphans()
            checker.check_snapshots()
        return checker.report()

    def close(self) -> None:
        self._journal.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
