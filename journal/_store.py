"""One LMDB environment per journal path per process, shared by every recorder.

LMDB forbids opening one environment twice in a process (its POSIX locks are per
process), so ``Journal.open`` keeps a registry keyed by the real path and hands out
counted handles; the environment closes when the last handle does.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lmdb

from journal._chain import HASH_SIZE, ZERO_HASH, log_hash
from journal._errors import (
    JournalClosedError,
    JournalConfigError,
    JournalFullError,
    JournalPathError,
)
from journal._gate import Gate
from journal._groupcommit import CommitStats, GroupCommitter, Write, run_checked
from journal._keys import decode_notification_id, notification_key
from journal._settings import JournalSettings

__all__ = [
    "AGGREGATE_DB_PREFIX",
    "EVENTS_DB",
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "HEAD_KEY",
    "META_DB",
    "NOTIFICATIONS_DB",
    "Journal",
    "WriteContext",
]

FORMAT_MARKER = b"chronik-journal"
# 2: events and notifications carry hash chains (journal._chain).
FORMAT_VERSION = 2
_LMDB_FILES = frozenset({"data.mdb", "lock.mdb"})
_MAX_DBS = 64
META_DB = b"chronik:meta"
HEAD_KEY = b"head"  # in the meta database: last notification id + its chained hash
EVENTS_DB = b"chronik:events"
NOTIFICATIONS_DB = b"chronik:notifications"
TRACKING_DB = b"chronik:tracking"
AGGREGATE_DB_PREFIX = b"chronik:agg:"  # + purpose: other event tables (snapshots)

_registry: dict[str, _Store] = {}
_registry_lock = threading.Lock()


class _Store:
    """The process-wide state of one open journal."""

    def __init__(self, settings: JournalSettings, *, readonly: bool) -> None:
        self.settings = settings
        self.path = settings.real_path
        self.readonly = readonly
        self.refs = 0
        self.closed = False
        self.env = _open_env(settings, readonly=readonly)
        self.gate = Gate()
        self.committer = GroupCommitter(self._run_group)
        self.listeners: set[threading.Event] = set()
        self._listeners_lock = threading.Lock()
        self._dbs: dict[bytes, Any] = {}
        self._dbs_lock = threading.Lock()
        try:
            self._check_format()
        except BaseException:
            self.env.close()
            raise

    # -- databases ---------------------------------------------------------

    def db(self, name: bytes) -> Any:
        """The named database, created on first use; ``None`` for a read-only
        journal that does not have it yet (asked again next time: another process
        may create it)."""
        found = self._dbs.get(name)
        if found is not None:
            return found
        with self._dbs_lock:
            if name not in self._dbs:
                opened = self._open_db(name)
                if opened is None:
                    return None
                self._dbs[name] = opened
            return self._dbs[name]

    def _open_db(self, name: bytes) -> Any:
        if not self.readonly:
            return self._with_txn_retry(lambda: self._create_db(name))
        with self.reading() as txn:
            if txn.get(name) is None:
                return None  # a read-only reader sees an absent database as empty
        return self._with_txn_retry(lambda: self.env.open_db(name, create=False))

    def _create_db(self, name: bytes) -> Any:
        # In a transaction of our own: py-lmdb's open_db without one waits for
        # LMDB's write lock holding the GIL, so a thread of this process that
        # holds the write lock and needs the GIL to finish would never get it.
        txn = self.env.begin(write=True)  # waits for the lock without the GIL
        try:
            db = self.env.open_db(name, txn=txn)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return db

    def _with_txn_retry(self, action: Callable[[], Any]) -> Any:
        """Run an action that opens its own transaction, adopting a map that
        another process grew, or growing a full one."""
        while True:
            try:
                with self.gate.shared():
                    return action()
            except lmdb.MapResizedError:
                self._adopt_map_size()
            except lmdb.MapFullError:
                self._grow()

    def _check_format(self) -> None:
        # Named databases are keys of LMDB's main database: look before creating
        # anything, so a foreign database is never written to.
        with self.reading() as txn:
            has_meta = txn.get(META_DB) is not None
            names = list(txn.cursor().iternext(values=False))
        empty = not names
        if empty and not self.readonly:
            meta = self.db(META_DB)
            self.write(lambda txn: _write_marker(txn, meta))
            return
        marker = version = None
        if has_meta:
            meta = self.db(META_DB)
            with self.reading() as txn:
                marker = txn.get(b"format", db=meta)
                version = txn.get(b"version", db=meta)
                meta_empty = txn.cursor(db=meta).first() is False
            if names == [META_DB] and meta_empty and not self.readonly:
                # Creation cut short (the meta database is committed on its own,
                # the marker after it): finish it, nothing else was ever written.
                self.write(lambda txn: _write_marker(txn, meta))
                return
        if marker != FORMAT_MARKER:
            raise JournalPathError(
                self.path,
                "holds an LMDB database that chronik did not make (no chronik "
                "format marker)",
                "Point LMDB_PATH at an empty or new directory",
            )
        if version != str(FORMAT_VERSION).encode():
            found = version.decode() if version else "none"
            raise JournalPathError(
                self.path,
                f"holds a chronik journal of format version {found}; this chronik "
                f"reads version {FORMAT_VERSION}",
                "Open it with the chronik release that wrote it",
            )

    # -- transactions -------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A read transaction (no write lock; sees the last committed state)."""
        while True:
            with self.gate.shared():
                self._check_open()  # under the gate: close() cannot slip in between
                try:
                    txn = self.env.begin()
                except lmdb.MapResizedError:
                    pass
                else:
                    try:
                        yield txn
                    finally:
                        txn.abort()
                    return
            self._adopt_map_size()

    def write(self, write: Write) -> Any:
        """Run ``write`` in a group-committed write transaction; return its result."""
        self._check_open()
        if self.readonly:
            raise JournalPathError(
                self.path,
                "is open read-only in this process (an audit reader)",
                "Close the audit reader before writing",
            )
        result = self.committer.submit(write)
        self._notify()
        return result

    def _run_group(self, writes: list[Write]) -> list[tuple[Any, BaseException | None]]:
        gate = self.gate
        while True:
            try:
                gate.enter_shared()
                try:
                    self._check_open()
                    return self._run_group_once(writes)
                finally:
                    gate.exit_shared()
            except lmdb.MapFullError:
                self._grow()
            except lmdb.MapResizedError:
                self._adopt_map_size()

    def _run_group_once(
        self, writes: list[Write]
    ) -> list[tuple[Any, BaseException | None]]:
        txn = self.env.begin(write=True)
        try:
            context = WriteContext(txn, self)
            outcomes = [run_checked(w, context) for w in writes]
            context.finish()
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return outcomes

    def _grow(self) -> None:
        with self.gate.exclusive():
            current = self.env.info()["map_size"]
            cap = self.settings.max_map_size
            if cap is not None and current >= cap:
                raise JournalFullError(self.path, current, cap)
            wanted = current * 2 if cap is None else min(current * 2, cap)
            self.env.set_mapsize(wanted)

    def _adopt_map_size(self) -> None:
        """Another process grew the map: take its size (needs no txn open here)."""
        with self.gate.exclusive():
            self.env.set_mapsize(0)

    # -- listeners -----------------------------------------------------------

    def listen(self, event: threading.Event) -> None:
        with self._listeners_lock:
            self.listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        with self._listeners_lock:
            self.listeners.discard(event)

    def _notify(self) -> None:
        if self.listeners:
            with self._listeners_lock:
                for event in self.listeners:
                    event.set()

    def _check_open(self) -> None:
        if self.closed:
            raise JournalClosedError(self.path)


class WriteContext:
    """One write transaction, shared by the writes of one committed group."""

    __slots__ = ("_last_hash", "_last_notification_id", "_store", "txn")

    def __init__(self, txn: Any, store: _Store) -> None:
        self.txn = txn
        self._store = store
        # Invariant: once read, the last notification id put in this transaction
        # and its chained hash (the head the next notification chains to).
        self._last_notification_id: int | None = None
        self._last_hash = ZERO_HASH

    def allocate_notification_ids(self, count: int) -> range:
        """The next ``count`` ids; call only once the write can no longer fail."""
        last = self._last_notification_id
        if last is None:
            cursor = self.txn.cursor(db=self._store.db(NOTIFICATIONS_DB))
            last = 0
            if cursor.last():
                last = decode_notification_id(cursor.key())
                self._last_hash = cursor.value()[-HASH_SIZE:]
        self._last_notification_id = last + count
        return range(last + 1, last + 1 + count)

    def log(self, notification_id: int, key: bytes, event_digest: bytes) -> None:
        """Put an allocated notification, chained to the one before it."""
        digest = log_hash(self._last_hash, notification_id, key, event_digest)
        appended = self.txn.put(
            notification_key(notification_id),
            key + digest,
            db=self._store.db(NOTIFICATIONS_DB),
            append=True,
        )
        if not appended:  # ids come from the last id in this txn: cannot happen
            raise AssertionError(f"notification id {notification_id} out of order")
        self._last_hash = digest

    def finish(self) -> None:
        """Record the head of the log, if this transaction moved it."""
        if self._last_notification_id is not None:
            head = notification_key(self._last_notification_id) + self._last_hash
            self.txn.put(HEAD_KEY, head, db=self._store.db(META_DB))


def _write_marker(context: WriteContext, meta: Any) -> None:
    context.txn.put(b"format", FORMAT_MARKER, db=meta)
    context.txn.put(b"version", str(FORMAT_VERSION).encode(), db=meta)


class Journal:
    """A counted handle on a shared journal environment.

    ``Journal.open(path)`` twice in one process gives two handles on one environment;
    each handle is closed once, and the environment closes with the last one.
    """

    def __init__(self, store: _Store) -> None:
        self._store: _Store | None = store

    @classmethod
    def open(
        cls, settings: JournalSettings | str, *, readonly: bool = False
    ) -> Journal:
        if isinstance(settings, str):
            settings = JournalSettings(path=settings)
        real = settings.real_path
        with _registry_lock:
            store = _registry.get(real)
            if store is None:
                store = _Store(settings, readonly=readonly)
                _registry[real] = store
            else:
                _check_compatible(store, settings, readonly=readonly)
            store.refs += 1
        return cls(store)

    @property
    def store(self) -> _Store:
        if self._store is None:
            raise JournalClosedError("<closed handle>")
        return self._store

    @property
    def path(self) -> str:
        return self.store.path

    @property
    def closed(self) -> bool:
        return self._store is None or self._store.closed

    def commit_stats(self) -> CommitStats:
        """How this process's writes to the journal were grouped into commits."""
        return self.store.committer.stats()

    def close(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        with _registry_lock:
            store.refs -= 1
            if store.refs == 0:
                store.closed = True
                del _registry[store.path]
                with store.gate.exclusive():
                    store.env.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_compatible(
    store: _Store, settings: JournalSettings, *, readonly: bool
) -> None:
    if store.readonly and not readonly:
        raise JournalPathError(
            store.path,
            "is open read-only in this process (an audit reader)",
            "Close the audit reader before opening the journal for writing",
        )
    if not readonly and store.settings.sync != settings.sync:
        raise JournalConfigError(
            "LMDB_SYNC",
            settings.sync,
            f"differs from the journal already open at {store.path!r} in this "
            f"process (LMDB_SYNC={store.settings.sync}); one environment per path "
            "per process has one durability setting",
        )


def _open_env(settings: JournalSettings, *, readonly: bool) -> Any:
    path = settings.real_path
    _check_path(path, readonly=readonly)
    try:
        return lmdb.open(
            path,
            map_size=settings.map_size,
            max_dbs=_MAX_DBS,
            max_readers=settings.max_readers,
            subdir=True,
            readonly=readonly,
            create=not readonly,
            sync=settings.sync,
            metasync=settings.sync,
            lock=True,
        )
    except lmdb.Error as error:
        raise _path_error(path, error) from error


def _check_path(path: str, *, readonly: bool) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise JournalPathError(
            path, "is a file, not a directory", "Point LMDB_PATH at a directory"
        )
    if readonly:
        if not os.path.exists(os.path.join(path, "data.mdb")):
            raise JournalPathError(
                path,
                "holds no journal",
                "Check the path; an audit reader opens an existing journal",
            )
        return
    if os.path.isdir(path):
        entries = set(os.listdir(path))
        if entries and not entries & _LMDB_FILES:
            shown = ", ".join(sorted(entries)[:3]) + (
                ", ..." if len(entries) > 3 else ""
            )
            raise JournalPathError(
                path,
                f"is a directory with other files in it ({shown}) and no journal",
                "Point LMDB_PATH at an empty or new directory",
            )
        return
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _path_error(path, error) from error
        raise JournalPathError(
            path,
            f"cannot be created ({error.strerror})",
            "Choose a directory on a writable file system",
        ) from error


def _path_error(path: str, error: BaseException) -> JournalPathError:
    code = getattr(error, "errno", None)
    text = str(error)
    if (
        code in (errno.EACCES, errno.EPERM, errno.EROFS)
        or "Permission denied" in text
        or "Read-only" in text
    ):
        return JournalPathError(
            path,
            f"cannot be written ({text})",
            "Choose a location this process may write, or fix its permissions",
        )
    return JournalPathError(
        path, f"cannot be opened as a journal ({text})", "Check the path"
    )
