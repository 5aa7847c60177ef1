"""Reading a PostgreSQL journal for audit (issue 14): ``JournalReader``'s reads.

The same pages of one stream's events and of the notification log as the LMDB
reader gives, from the runtime's tables (``chronikruns_events``,
``chronikruns_snapshots``) in the journal's schema, on a small pool of its own.
What needs the hash chains (``verify``) and live following (``follow``) is not
there yet on PostgreSQL: they raise ``JournalConfigError`` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NoReturn

from eventsourcing.postgres import PostgresAggregateRecorder

from journal._audit import PagedReads
from journal._errors import JournalConfigError
from journal._location import PostgresLocation
from journal._pg_format import check_format
from journal._postgres import PostgresJournalRecorder

__all__ = ["EVENTS_TABLE", "SNAPSHOTS_TABLE", "PostgresJournalReader"]

EVENTS_TABLE: Final = "chronikruns_events"  # actors' RunsApp.name, lower-cased
SNAPSHOTS_TABLE: Final = "chronikruns_snapshots"
PAGE_SIZE: Final = 1000


class PostgresJournalReader(PagedReads):
    """Reads a PostgreSQL journal (which must exist: nothing is created)."""

    def __init__(self, location: PostgresLocation) -> None:
        self._location = location
        self._datastore = location.datastore(
            originator_id_type="text", pool_size=2, max_overflow=0
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

    def _snapshots_of(self, purpose: str) -> PostgresAggregateRecorder:
        return self._snapshots

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
