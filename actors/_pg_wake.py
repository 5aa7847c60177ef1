"""Waking one host of a PostgreSQL journal: ``LISTEN``/``NOTIFY`` (issue 14).

The LMDB journal's hosts share a machine and listen on named pipes
(``actors._wake``); a PostgreSQL journal's hosts may be on different machines,
and share only the server. So each host listens on a channel of its own
(``chronik_wake_`` and a hash of its id, within PostgreSQL's 63-byte names), on a
connection of its own, and whoever queued work for a run it drives sends a
``NOTIFY`` on that channel. A notification is delivered after the sender's
commit, and only to listeners connected then: a host that is gone misses it,
and its successor's catch-up finds the request in the journal, as with pipes.

A listening connection that fails (the server restarted, a proxy reset it, a
partition outlived TCP) is made again, with a pause that doubles up to
``MAX_PAUSE`` while the server stays unreachable; a wait that made it again
reports a wake, so the host reads what it missed meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Final

import psycopg
from psycopg import sql

__all__ = ["PostgresWakeChannel", "channel_of", "wake_all_pg", "wake_host_pg"]

logger = logging.getLogger("chronik.actors")

_PREFIX: Final = "chronik_wake_"
FIRST_PAUSE: Final = 0.1  # seconds before listening again after a failure
MAX_PAUSE: Final = 5.0
EVERY_HOST: Final = "chronik_wake_all"  # every host listens here too


def channel_of(host_id: str) -> str:
    """The channel host ``host_id`` listens on: a valid identifier whatever
    the id holds (a hash of it)."""
    return _PREFIX + hashlib.sha256(host_id.encode("utf-8")).hexdigest()[:32]


class PostgresWakeChannel:
    """The listening end: one connection of its own, in autocommit."""

    def __init__(
        self,
        conn: psycopg.Connection[tuple[object, ...]] | None,
        channel: str,
        conninfo: str,
    ):
        self._conn = conn  # None while it is being made again
        self._channel = channel
        self._conninfo = conninfo  # with its password, which conn.info leaves out
        self._closed = threading.Event()
        self._pause = FIRST_PAUSE  # before the next attempt to listen again

    @classmethod
    def listen(cls, conninfo: str, host_id: str) -> PostgresWakeChannel:
        channel = channel_of(host_id)
        return cls(_listening(conninfo, channel), channel, conninfo)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake; whether one came. Every
        notification pending is consumed: many wakes make one round of work.
        A failed connection is made again (see the module); never returns at
        once unless woken or closed."""
        if self._closed.is_set():
            return False
        conn = self._conn
        if conn is None:
            return self._listen_again(timeout)
        woken = False
        try:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                woken = True
            while woken:  # drain what else is pending, without waiting
                more = list(conn.notifies(timeout=0.005, stop_after=64))
                if not more:
                    break
        except psycopg.Error as error:
            if self._closed.is_set():
                return False
            logger.warning(
                "the wake channel's connection failed (%s: %s); listening again",
                type(error).__name__,
                error,
            )
            with contextlib.suppress(psycopg.Error):
                conn.close()
            self._conn = None
            return self._listen_again(timeout)
        self._pause = FIRST_PAUSE
        return woken

    def _listen_again(self, timeout: float) -> bool:
        """After a pause (at most ``timeout``), listen on a new connection;
        True if listening again (the caller reads what it missed)."""
        if self._closed.wait(min(self._pause, timeout)):
            return False
        self._pause = min(self._pause * 2, MAX_PAUSE)
        try:
            conn = _listening(self._conninfo, self._channel)
        except psycopg.Error:
            return False  # the server is still unreachable: the next wait tries
        if self._closed.is_set():
            conn.close()
            return False
        self._conn = conn
        logger.info("the wake channel listens again")
        return True

    def wake(self) -> None:
        """Wake this channel's own waiter (to stop it promptly)."""
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self._conninfo, autocommit=True) as other,
        ):
            _notify(other, self._channel)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _listening(conninfo: str, channel: str) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommit connection listening on ``channel`` and every host's."""
    conn = psycopg.connect(conninfo, autocommit=True)
    try:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVERY_HOST)))
    except BaseException:
        conn.close()
        raise
    return conn


def wake_host_pg(conn: psycopg.Connection[tuple[object, ...]], host_id: str) -> None:
    """Send host ``host_id`` a wake on ``conn`` (delivered when its
    transaction commits; at once in autocommit)."""
    _notify(conn, channel_of(host_id))


def wake_all_pg(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Wake every host listening on the journal's server (a run whose
    partition nobody holds: one of them takes it over)."""
    _notify(conn, EVERY_HOST)


def _notify(conn: psycopg.Connection[tuple[object, ...]], channel: str) -> None:
    conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(channel)))
