"""Waking one host of a PostgreSQL journal: ``LISTEN``/``NOTIFY`` (issue 14).

The LMDB journal's hosts share a machine and listen on named pipes
(``actors._wake``); a PostgreSQL journal's hosts may be on different machines,
and share only the server. So each host listens on a channel of its own
(``chronik_wake_`` and a hash of its id, within PostgreSQL's 63-byte names), on a
connection of its own, and whoever queued work for a run it drives sends a
``NOTIFY`` on that channel. A notification is delivered after the sender's
commit, and only to listeners connected then: a host that is gone misses it,
and its successor's catch-up finds the request in the journal, as with pipes.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Final

import psycopg
from psycopg import sql

__all__ = ["PostgresWakeChannel", "channel_of", "wake_all_pg", "wake_host_pg"]

_PREFIX: Final = "chronik_wake_"
EVERY_HOST: Final = "chronik_wake_all"  # every host listens here too


def channel_of(host_id: str) -> str:
    """The channel host ``host_id`` listens on: a valid identifier whatever
    the id holds (a hash of it)."""
    return _PREFIX + hashlib.sha256(host_id.encode("utf-8")).hexdigest()[:32]


class PostgresWakeChannel:
    """The listening end: one connection of its own, in autocommit."""

    def __init__(
        self, conn: psycopg.Connection[tuple[object, ...]], channel: str, conninfo: str
    ):
        self._conn = conn
        self._channel = channel
        self._conninfo = conninfo  # with its password, which conn.info leaves out
        self._closed = False

    @classmethod
    def listen(cls, conninfo: str, host_id: str) -> PostgresWakeChannel:
        conn = psycopg.connect(conninfo, autocommit=True)
        channel = channel_of(host_id)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVERY_HOST)))
        return cls(conn, channel, conninfo)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake; whether one came. Every
        notification pending is consumed: many wakes make one round of work."""
        if self._closed:
            return False
        woken = False
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                woken = True
            while woken:  # drain what else is pending, without waiting
                more = list(self._conn.notifies(timeout=0.005, stop_after=64))
                if not more:
                    break
        except psycopg.Error:
            return False  # closed meanwhile, or the server went away
        return woken

    def wake(self) -> None:
        """Wake this channel's own waiter (to stop it promptly)."""
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self._conninfo, autocommit=True) as other,
        ):
            _notify(other, self._channel)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


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
