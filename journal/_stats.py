"""Published statistics: documents that running systems leave in their journal.

A process hosting an actor system writes a small document of its counters
under a key of its own (host, pid, start time), so that a reader in another
process (``chronik stats``) sees every system that uses the journal. The
documents live in their own database, ``chronik:stats``, outside the event
and notification tables: they are not events, and overwriting one is fine.

The database is opened inside the transaction that uses it, never on its own:
py-lmdb's ``open_db`` without a transaction begins a write transaction and
waits for LMDB's write lock holding the GIL, so while another thread of this
process held a write transaction (and needed the GIL to finish it) both would
wait forever.

A PostgreSQL journal keeps them in a table of its schema instead
(``journal._pg_stats.PostgresStats``, a ``StatsStore``); the functions below
take either, and encode and check the documents the same way for both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs
import msgpack

from journal._store import (
    AGGREGATE_DB_PREFIX,
    EVENTS_DB,
    NOTIFICATIONS_DB,
    Journal,
    WriteContext,
)

__all__ = [
    "STATS_DB",
    "JournalFigures",
    "StatsStore",
    "journal_figures",
    "publish_stats",
    "read_stats",
    "remove_stats",
]

STATS_DB: Final = b"chronik:stats"
_MAX_KEY_BYTES: Final = 500  # LMDB's key limit is 511 bytes


class StatsStore(Protocol):
    """Where the stats documents of a journal that is not an LMDB ``Journal``
    live, as encoded bytes by source key (checked by the functions below)."""

    def publish(self, source_key: str, value: bytes) -> None:
        """Store ``value`` under ``source_key``, replacing what was there."""

    def remove(self, source_key: str) -> bool:
        """Delete what ``source_key`` published; whether there was anything."""

    def read(self) -> dict[str, bytes]:
        """Every document by source key, writing nothing (empty if the
        journal has none, or no place for them yet)."""


def publish_stats(
    journal: Journal | StatsStore, source_key: str, document: Mapping[str, Any]
) -> None:
    """Store ``document`` (plain msgpack data) as the stats of ``source_key``,
    replacing what that source published before, in one commit (a group
    commit on LMDB)."""
    key = _key(source_key)
    try:
        value = msgpack.packb(dict(document))
    except (TypeError, ValueError, OverflowError) as error:
        msg = f"a stats document holds plain msgpack data only: {error}"
        raise TypeError(msg) from error
    if not isinstance(journal, Journal):
        journal.publish(source_key, value)
        return
    store = journal.store

    def put(context: WriteContext) -> None:
        db = store.env.open_db(STATS_DB, txn=context.txn)
        context.txn.put(key, value, db=db)

    store.write(put)


def remove_stats(journal: Journal | StatsStore, source_key: str) -> bool:
    """Delete what ``source_key`` published; whether there was anything."""
    key = _key(source_key)
    if not isinstance(journal, Journal):
        return journal.remove(source_key)
    store = journal.store

    def delete(context: WriteContext) -> bool:
        db = store.env.open_db(STATS_DB, txn=context.txn)
        return bool(context.txn.delete(key, db=db))

    return bool(store.write(delete))


def read_stats(journal: Journal | StatsStore) -> dict[str, dict[str, Any]]:
    """Every published document by source key; works on a read-only journal
    (empty if no system has published to it yet)."""
    if not isinstance(journal, Journal):
        return {key: _document(value) for key, value in journal.read().items()}
    store = journal.store
    with store.reading() as txn:
        db = _existing(store, txn, STATS_DB)
        if db is None:
            return {}
        return {
            key.decode("utf-8"): _document(value) for key, value in txn.cursor(db=db)
        }


def _document(value: bytes) -> dict[str, Any]:
    document: dict[str, Any] = msgpack.unpackb(value, strict_map_key=False)
    return document


@attrs.frozen
class JournalFigures:
    """How big a journal is: entries of its tables and its file on disk.

    ``events`` counts the event table (one entry per stored event),
    ``notifications`` the log (equal to it in a sound journal), ``snapshots``
    the snapshot table; ``disk_bytes`` is what ``data.mdb`` occupies on disk,
    ``file_bytes`` its apparent size (LMDB grows the file with its map).
    """

    path: str
    events: int
    notifications: int
    snapshots: int
    disk_bytes: int
    file_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def journal_figures(journal: Journal) -> JournalFigures:
    """Count the journal's entries (O(1): LMDB keeps the counts) and measure
    its file; works on a read-only journal."""
    store = journal.store
    names = (EVENTS_DB, NOTIFICATIONS_DB, AGGREGATE_DB_PREFIX + b"snapshots")
    with store.reading() as txn:
        dbs = [_existing(store, txn, name) for name in names]
        counts = [0 if db is None else txn.stat(db)["entries"] for db in dbs]
    data = os.stat(os.path.join(journal.path, "data.mdb"))
    disk = getattr(data, "st_blocks", 0) * 512 or data.st_size
    events, notifications, snapshots = counts
    return JournalFigures(
        journal.path, events, notifications, snapshots, disk, data.st_size
    )


def _existing(store: Any, txn: Any, name: bytes) -> Any:
    """The named database, opened in the read transaction ``txn`` (see the
    module's docstring); ``None`` if the journal does not have it."""
    if txn.get(name) is None:  # named databases are keys of the main database
        return None
    return store.env.open_db(name, txn=txn, create=False)


def _key(source_key: str) -> bytes:
    key = source_key.encode("utf-8")
    if not key or len(key) > _MAX_KEY_BYTES:
        msg = f"a stats source key is 1 to {_MAX_KEY_BYTES} bytes, not {source_key!r}"
        raise ValueError(msg)
    return key
