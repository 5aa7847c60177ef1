"""Reading a PostgreSQL journal for audit (issue 14): ``JournalReader``'s reads.

The same pages of one stream's events and of the notification log as the LMDB
reader gives, from the runtime's tables (``chronikruns_events``,
``chronikruns_snapshots``) in the journal's schema, on a small pool of its own.
``verify`` checks both hash chains (``journal._pg_verify``).
``follow`` is woken by the recorder's ``NOTIFY`` (``journal._pg_follow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NoReturn
from uuid import UUID

from eventsourcing.postgres import PostgresAggregateRecorder

from journal._audit import PagedReads
from journal._errors import JournalConfigError
from journal._location import PostgresLocation
from journal._pg_follow import PostgresFollow
from journal._pg_format import check_format
from journal._pg_verify import PostgresChecker
from journal._postgres import PostgresJournalRecorder
from journal._verify import Progress, VerifyReport

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

    def follow(self, start: int = 1, topics: Sequence[str] = ()) -> PostgresFollow:
        """The application sequence from ``start`` on, then each notification as
        it is committed (woken by the recorder's ``NOTIFY``: ``journal._pg_follow``).
        Iterate it; ``stop()`` it (or use it as a context manager) to end."""
        return PostgresFollow(
            self._events,
            self._location,
            gt=start - 1 if start > 1 else None,
            topics=topics,
        )

    def verify(
        self,
        originator_id: UUID | str | None = None,
        *,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Recompute the hash chains and name what does not match
        (``journal._pg_verify``): the whole events table in position order, its
        head and the snapshots' chains; or one stream's chain and its events'
        log hashes."""
        checker = PostgresChecker(self._datastore, EVENTS_TABLE)
        if originator_id is not None:
            checker.check_stream(originator_id)
        else:
            checker.check_log(progress)
            checker.check_end()
            checker.check_snapshots(SNAPSHOTS_TABLE)
        return checker.report()

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
