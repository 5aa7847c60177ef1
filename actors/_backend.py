"""What a host needs of where its journal lives, besides the events.

The runtime reaches its journal's events through eventsourcing's application
API whatever the backend. The rest differs by where the journal lives: the
lease table, how a host shows it is alive (a presence lock on one machine;
nothing but its renewals past one), how it is woken (a named pipe, or
``LISTEN``/``NOTIFY``), and the lock ``chronik signal`` probes for a live host.
A ``Backend`` gathers those, so that ``ActorSystem``, the operator inbox and the
client are written once. ``LmdbBackend`` is the journal in a directory,
``PostgresBackend`` a database on a server (issue 14: its hosts may be on
different machines, so a host's only sign of life is its lease renewals).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Protocol

import psycopg
from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore

from actors._hostlock import (
    HostLock,
    HostPresence,
    host_is_live,
    host_is_present,
    sweep_dead_hosts,
)
from actors._pg_wake import PostgresWakeChannel, wake_all_pg, wake_host_pg
from actors._wake import SLOW_POLL, WakeChannel, wake_run_owner
from journal import (
    Journal,
    JournalPathError,
    JournalReader,
    Leases,
    LeaseStorage,
    LmdbLeaseStorage,
    LmdbLocation,
    PostgresLocation,
    parse_location,
    partition_of,
)
from journal._pg_format import check_format
from journal._pg_leases import PostgresLeaseStorage
from journal._pg_stats import PostgresStats
from journal._stats import StatsStore

__all__ = [
    "Backend",
    "Listener",
    "LmdbBackend",
    "PostgresBackend",
    "Presence",
    "backend_for",
]


class Presence(Protocol):
    """A host's sign of life other hosts can probe, held while it lives."""

    def ensure(self) -> bool: ...

    def release(self) -> None: ...


class Listener(Protocol):
    """Where a host sleeps until it is woken (or a timeout passes)."""

    def wait(self, timeout: float) -> bool: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """The non-event side of a journal's location.

    ``slow_poll``: seconds an idle host waits for a wake before it reads the
    operator inbox anyway; ``resume_every``: every how many lease rounds it
    looks for runs started elsewhere (wakes bring those at once; the rounds
    catch what a wake missed)."""

    slow_poll: float
    resume_every: int

    @property
    def where(self) -> str:
        """The journal, for messages (never with a password)."""

    def prepare(self) -> None:
        """Before a host opens the journal: check (or make) what the backend
        needs first (a PostgreSQL journal's format marker)."""

    def check_exists(self) -> None:
        """``JournalPathError`` unless a journal is there (for clients, which
        never make one)."""

    def env(self) -> dict[str, str]:
        """The eventsourcing settings of the journal's applications."""

    def lease_storage(self, app: Application[Any]) -> LeaseStorage: ...

    def stats_store(self, app: Application[Any]) -> Journal | StatsStore:
        """Where the host publishes its stats (``actors._publisher``)."""

    def hold_presence(self, host_id: str) -> Presence | None:
        """Show this host alive until ``release``; None: the backend has no
        such sign (hosts then wait for leases to expire)."""

    def present(self, host_id: str) -> bool:
        """Whether host ``host_id`` lives, as far as its sign tells."""

    def sweep(self) -> None:
        """Remove what dead hosts left behind."""

    def listen(self, host_id: str) -> Listener: ...

    def wake_run_owner(self, app: Application[Any], run_id: str) -> None:
        """Wake the host that drives run ``run_id`` (after a durable request)."""

    def host_lock(self) -> HostLock | None:
        """The lock ``chronik signal`` probes to tell a live host exists."""

    def any_host_live(self, app: Application[Any]) -> bool:
        """Whether some host has the journal open now."""


class LmdbBackend:
    """A journal in a directory on this machine: flock presence, pipes."""

    slow_poll = SLOW_POLL  # a read of one LMDB key: cheap
    resume_every = 1

    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def where(self) -> str:
        return self._path

    def prepare(self) -> None:
        return None  # the LMDB recorder checks its format marker on opening

    def check_exists(self) -> None:
        JournalReader(self._path).close()

    def env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": self._path}

    def lease_storage(self, app: Application[Any]) -> LeaseStorage:
        return LmdbLeaseStorage(_journal(app))

    def stats_store(self, app: Application[Any]) -> Journal | StatsStore:
        return _journal(app)

    def hold_presence(self, host_id: str) -> Presence | None:
        return HostPresence.hold(self._path, host_id)

    def present(self, host_id: str) -> bool:
        return host_is_present(self._path, host_id)

    def sweep(self) -> None:
        sweep_dead_hosts(self._path)

    def listen(self, host_id: str) -> Listener:
        return WakeChannel.listen(self._path, host_id)

    def wake_run_owner(self, app: Application[Any], run_id: str) -> None:
        wake_run_owner(_journal(app), run_id)

    def host_lock(self) -> HostLock | None:
        return HostLock.acquire(self._path)

    def any_host_live(self, app: Application[Any]) -> bool:
        return host_is_live(self._path)


def _journal(app: Application[Any]) -> Journal:
    journal = app.recorder.journal  # type: ignore[attr-defined]
    assert isinstance(journal, Journal)
    return journal


class PostgresBackend:
    """A journal in a PostgreSQL database: no presence (a host that stops
    renewing is dead once its leases expire), ``LISTEN``/``NOTIFY`` wakes.
    An idle host costs the server its lease renewals and little else: the
    inbox and the runs started elsewhere are looked at every 10 s or so."""

    slow_poll = 10.0
    resume_every = 6

    def __init__(self, location: PostgresLocation) -> None:
        self._location = location
        self._storage: LeaseStorage | None = None  # made with the first app
        self._stats: PostgresStats | None = None  # made with the lease tables

    @property
    def where(self) -> str:
        return self._location.display

    def prepare(self) -> None:
        self._check_reachable()
        with self._datastore() as datastore:
            check_format(datastore, self.where)

    def check_exists(self) -> None:
        self._check_reachable()
        with self._datastore() as datastore:
            check_format(datastore, self.where, create=False)

    def _check_reachable(self) -> None:
        """One connection first, so that a server that is down or refuses the
        login is named as such (the pool would only say it timed out)."""
        try:
            psycopg.connect(self._location.conninfo(), connect_timeout=5).close()
        except psycopg.Error as error:
            reason = " ".join(str(error).split())
            raise JournalPathError(
                self.where,
                f"cannot be reached ({reason or type(error).__name__})",
                "Check that the server is up, and the URL's host, port, database, "
                "user and password",
            ) from error

    @contextlib.contextmanager
    def _datastore(self) -> Iterator[PostgresDatastore]:
        datastore = self._location.datastore(pool_size=1, max_overflow=0)
        try:
            yield datastore
        finally:
            datastore.close()

    def env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "journal.postgres", **self._location.env()}

    def lease_storage(self, app: Application[Any]) -> LeaseStorage:
        if self._storage is None:
            datastore = app.recorder.datastore  # type: ignore[attr-defined]
            storage = PostgresLeaseStorage(datastore)
            storage.create_tables()
            stats = PostgresStats(datastore, self.where)
            stats.create_table()
            self._storage, self._stats = storage, stats
        return self._storage

    def stats_store(self, app: Application[Any]) -> Journal | StatsStore:
        self.lease_storage(app)  # the tables, made once
        assert self._stats is not None
        return self._stats

    def hold_presence(self, host_id: str) -> Presence | None:
        return None

    def present(self, host_id: str) -> bool:
        return True  # nothing tells a dead host but its leases running out

    def sweep(self) -> None:
        return None

    def listen(self, host_id: str) -> Listener:
        return PostgresWakeChannel.listen(self._location.conninfo(), host_id)

    def wake_run_owner(self, app: Application[Any], run_id: str) -> None:
        datastore = app.recorder.datastore  # type: ignore[attr-defined]
        owner = Leases(self.lease_storage(app)).owner_of(
            partition_of(run_id), time.time()
        )
        with datastore.get_connection() as conn:
            if owner is None:
                wake_all_pg(conn)
            else:
                wake_host_pg(conn, owner)
            conn.commit()

    def host_lock(self) -> HostLock | None:
        return None

    def any_host_live(self, app: Application[Any]) -> bool:
        """A host renewed its membership within its TTL."""
        return bool(Leases(self.lease_storage(app)).members(time.time()))


def backend_for(source: str) -> Backend:
    """The backend of the journal ``source`` names (a directory or a URL)."""
    location = parse_location(source)
    if isinstance(location, LmdbLocation):
        return LmdbBackend(location.path)
    return PostgresBackend(location)
