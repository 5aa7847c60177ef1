"""Reading a PostgreSQL journal for audit (issue 14): ``JournalReader``'s reads.

The same pages of one stream's events and of the notification log as the LMDB
reader gives, from the runtime's tables (``chronikruns_events``,
``chronikruns_snapshots``) in the journal's schema, on a small pool of its own.
What needs the hash chains (``verify``) and live following (``follow``) is not
there yet on PostgreSQL: they raise ``JournalConfigError`` saying so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final, NoReturn
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore

from journal._errors import JournalConfigError
from journal._location import PostgresLocation
from journal._pg_format import check_format
from journal._postgres import PostgresJournalRecorder

__all__ = ["EVENTS_TABLE", "SNAPSHOTS_TABLE", "PostgresJournalReader"]

EVENTS_TABLE: Final = "chronikruns_events"  # actors' RunsApp.name, lower-cased
SNAPSHOTS_TABLE: Final = "chronikruns_snapshots"
PAGE_SIZE: Final = 1000


class PostgresJournalReader:
    """Reads a PostgreSQL journal (which must exist: nothing is created)."""

    def __init__(self, location: PostgresLocation) -> None:
        self._location = location
        settings = location.env()
        self._datastore = PostgresDatastore(
            dbname=settings["POSTGRES_DBNAME"],
            host=settings["POSTGRES_HOST"],
            port=settings["POSTGRES_PORT"],
            user=settings["POSTGRES_USER"],
            password=settings["POSTGRES_PASSWORD"],
            schema=settings["POSTGRES_SCHEMA"],
            originator_id_type="text",
            pool_size=2,
            max_overflow=0,
        )
        try:
            check_format(self._datastore, location.display, create=False)
        except BaseException:
            self._datastore.close()
            raise
        self._events = PostgresJournalRecorder(
            self._datastore, events_table_name=EVENTS_TABLE
        )
        self._snapshots = PostgresAggregateRecorder(
            self._datastore, events_table_name=SNAPSHOTS_TABLE
        )

    @property
    def path(self) -> str:
        return self._location.display

    def stream(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        purpose: str | None = None,
    ) -> Iterator[StoredEvent]:
        """Every stored event of one stream, oldest first (``purpose="snapshots"``
        reads its snapshots)."""
        recorder = self._events if purpose is None else self._snapshots
        while True:
            page = recorder.select_events(str(originator_id), gt=gt, limit=PAGE_SIZE)
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
        found: int | None = self._events.max_notification_id()
        return found

    def follow(self, start: int = 1, topics: Sequence[str] = ()) -> NoReturn:
        self._not_yet("following the log live")

    def verify(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._not_yet("verifying hash chains")

    def _not_yet(self, what: str) -> NoReturn:
        raise JournalConfigError(
            "journal", self.path, f"is a PostgreSQL journal: {what} is not built yet"
        )

    def close(self) -> None:
        self._datastore.close()

    def __enter__(self) -> PostgresJournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
