"""Tampering with a copy of a journal, the way someone with the files could.

Each function opens the copy's LMDB environment directly (not through chronik),
changes it, and returns the position a verification must name first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lmdb
import msgpack

from journal._keys import decode_notification_id, notification_key
from journal._store import EVENTS_DB, HEAD_KEY, META_DB, NOTIFICATIONS_DB

__all__ = [
    "copy_journal",
    "delete_event",
    "flip_byte",
    "insert_event",
    "log_entry",
    "swap_positions",
]

HASH_SIZE = 32


def copy_journal(source: str, target: str) -> str:
    """A file copy of a closed (or quiet) journal."""
    shutil.copytree(source, target)
    return target


@contextmanager
def _tampering(path: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    env = lmdb.open(path, max_dbs=64, subdir=True)
    try:
        events = env.open_db(EVENTS_DB, create=False)
        log = env.open_db(NOTIFICATIONS_DB, create=False)
        meta = env.open_db(META_DB, create=False)
        with env.begin(write=True) as txn:
            yield txn, events, log, meta
    finally:
        env.close()


def log_entry(txn: Any, log: Any, position: int) -> tuple[bytes, bytes]:
    """(event key, log hash) at ``position``."""
    entry = txn.get(notification_key(position), db=log)
    return entry[:-HASH_SIZE], entry[-HASH_SIZE:]


def flip_byte(path: str, position: int, offset: int = -1) -> int:
    """Flip one byte of the event at ``position`` (default: its state's last)."""
    with _tampering(path) as (txn, events, log, _):
        key, _ = log_entry(txn, log, position)
        value = bytearray(txn.get(key, db=events))
        if offset == -1:
            state = msgpack.unpackb(bytes(value))[2]
            offset = bytes(value).index(state) + len(state) - 1 if state else 3
        value[offset] ^= 0x01
        txn.put(key, bytes(value), db=events)
    return position


def delete_event(path: str, position: int) -> int:
    """Remove the event at ``position`` and its log entry."""
    with _tampering(path) as (txn, events, log, _):
        key, _ = log_entry(txn, log, position)
        txn.delete(key, db=events)
        txn.delete(notification_key(position), db=log)
    return position


def swap_positions(path: str, first: int, second: int) -> int:
    """Swap two log entries, and the positions their events claim, so the log
    reads as if the two events had been committed in the other order."""
    with _tampering(path) as (txn, events, log, _):
        entries = {p: txn.get(notification_key(p), db=log) for p in (first, second)}
        for here, there in ((first, second), (second, first)):
            txn.put(notification_key(here), entries[there], db=log)
            key = entries[there][:-HASH_SIZE]
            fields = msgpack.unpackb(txn.get(key, db=events))
            fields[0] = here
            txn.put(key, msgpack.packb(fields, use_bin_type=True), db=events)
    return min(first, second)


def insert_event(path: str, position: int, *, update_head: bool = True) -> int:
    """Insert a copy of the event at ``position``, as the next version of its
    stream, at ``position``: every later log entry moves up one (the end of the
    log and, with ``update_head``, the head too)."""
    with _tampering(path) as (txn, events, log, meta):
        key, _ = log_entry(txn, log, position)
        cursor = txn.cursor(db=log)
        cursor.last()
        last = decode_notification_id(cursor.key())
        for moved in range(last, position - 1, -1):
            entry = txn.get(notification_key(moved), db=log)
            txn.put(notification_key(moved + 1), entry, db=log)
            moved_key = entry[:-HASH_SIZE]
            fields = msgpack.unpackb(txn.get(moved_key, db=events))
            fields[0] = moved + 1
            txn.put(moved_key, msgpack.packb(fields, use_bin_type=True), db=events)
        cursor = txn.cursor(db=events)
        if cursor.set_range(key[:-8] + b"\xff" * 8):
            cursor.prev()
        else:
            cursor.last()
        last_key = cursor.key()
        version = int.from_bytes(last_key[-8:], "big") + 1
        new_key = key[:-8] + version.to_bytes(8, "big")
        fields = msgpack.unpackb(txn.get(key, db=events))
        fields[0] = position
        txn.put(new_key, msgpack.packb(fields, use_bin_type=True), db=events)
        txn.put(notification_key(position), new_key + bytes(HASH_SIZE), db=log)
        if update_head:
            head = txn.get(HEAD_KEY, db=meta)
            txn.put(HEAD_KEY, notification_key(last + 1) + head[8:], db=meta)
    return position
