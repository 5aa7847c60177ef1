"""Following a PostgreSQL journal's log live (issue 14): ``LISTEN``/``NOTIFY``.

Every append the recorder commits sends a ``NOTIFY`` on the events table's
channel (``chronikruns_events``), delivered once it has committed. A follower
listens there on a connection of its own, opened before its first read, so
nothing committed after that read goes unnoticed; each notification makes it
read the log past the last position it has (as LMDB's follower does when this
process commits, or when its poll finds another process's commit).

Polling is the fallback: while listening it reads anyway every
``SAFETY_POLL`` seconds (a commit by a writer that sends no ``NOTIFY``), and
while its connection is lost it reads every ``LOST_POLL`` seconds and listens
again. A channel is per database, not per schema: journals in other schemas of
the same database wake it too, for a read that finds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    ListenNotifySubscription,
    OperationalError,
)
from psycopg import sql
from psycopg_pool import PoolClosed

from journal._errors import JournalClosedError, JournalPathError
from journal._location import PostgresLocation
from journal._postgres import PostgresJournalRecorder

__all__ = ["LOST_POLL", "SAFETY_POLL", "PostgresFollow"]

SAFETY_POLL: Final = 10.0  # seconds between reads while listening
LOST_POLL: Final = 1.0  # seconds between reads (and tries to listen) meanwhile
_TICK: Final = 0.2  # how soon the listening thread sees that it is stopped
_REMEDY: Final = (
    "Check that the server is up, and the URL's host, port, database, user and password"
)


class PostgresFollow(ListenNotifySubscription[PostgresJournalRecorder]):
    """The log after ``gt`` (matching ``topics``), then each notification as
    it is committed. Iterate it; ``stop()`` it (or use it as a context manager)
    to end. A server lost for good ends the iteration with a
    ``JournalPathError``."""

    def __init__(
        self,
        recorder: PostgresJournalRecorder,
        location: PostgresLocation,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._location = location
        self._channel = recorder.channel_name
        self._stopping = threading.Event()
        # Invariant: _listening is whether _listener holds a LISTEN that
        # took effect; the reading thread polls slowly only while it is True.
        self._listener: psycopg.Connection[tuple[object, ...]] | None = self._listen()
        self._listening = True
        try:
            super().__init__(recorder=recorder, gt=gt, topics=topics)
        except BaseException:
            self._listener.close()
            raise
        self._listen_thread = threading.Thread(
            target=self._loop_on_listen, name="chronik-follow-listen", daemon=True
        )
        self._listen_thread.start()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def __exit__(self, *args: object, **kwargs: object) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._listen_thread.join()

    # -- the reading thread ------------------------------------------------------

    def _loop_on_pull(self) -> None:
        try:
            self._pull()  # what is committed already
            while not self._has_been_stopped:
                poll = SAFETY_POLL if self._listening else LOST_POLL
                self._has_been_notified.wait(timeout=poll)
                if not self._has_been_stopped:
                    self._pull()
        except BaseException as error:
            if self._thread_error is None:
                self._thread_error = self._explained(error)
            self.stop()

    def _explained(self, error: BaseException) -> BaseException:
        """A failed read as the journal's error: closed, or the server lost
        (after the recorder's own retries)."""
        where = self._location.display
        if isinstance(error.__cause__, PoolClosed):
            return JournalClosedError(where)
        if isinstance(error, OperationalError | InterfaceError):
            reason = " ".join(str(error).split()) or type(error).__name__
            return JournalPathError(
                where,
                f"was lost while following its log ({reason})",
                f"{_REMEDY}; then follow again from the position after the last "
                "one received",
            )
        return error

    # -- the listening thread ------------------------------------------------------

    def _listen(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection of its own, listening on the events table's channel."""
        try:
            conn = psycopg.connect(
                self._location.conninfo(),
                autocommit=True,
                connect_timeout=5,
                application_name="chronik-follow",
            )
        except psycopg.Error as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise JournalPathError(
                self._location.display, f"cannot be reached ({reason})", _REMEDY
            ) from error
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _loop_on_listen(self) -> None:
        """Wake the reading thread at each notification; when the connection
        is lost, listen again every ``LOST_POLL`` seconds (the reading thread
        polls meanwhile)."""
        try:
            while not self._stopping.is_set():
                if self._listener is None:
                    self._relisten()
                    continue
                try:
                    for _ in self._listener.notifies(timeout=_TICK, stop_after=1):
                        self._has_been_notified.set()
                except psycopg.Error:
                    self._lost()
        finally:
            if self._listener is not None:
                self._listener.close()

    def _lost(self) -> None:
        assert self._listener is not None
        self._listening = False
        self._listener.close()
        self._listener = None
        self._has_been_notified.set()  # the reader switches to polling

    def _relisten(self) -> None:
        if self._stopping.wait(LOST_POLL):
            return
        try:
            self._listener = self._listen()
        except (JournalPathError, psycopg.Error):
            return  # still lost: the reading thread goes on polling
        self._listening = True
        self._has_been_notified.set()  # what was committed while not listening
