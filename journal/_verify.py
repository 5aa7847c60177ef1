"""Verification: recompute both hash chains and name the first bad position.

One pass over the notification log in id order checks, for each position: the ids
are gapless, the entry points at an event that says it is at this position, the
event's hash matches its content chained to the previous event of its stream,
and the entry's hash chains to the previous entry. Then the log must end at the
head the journal recorded, and every event must be in the log. Snapshot tables
(no positions) are checked stream by stream.

Each read transaction is short (a page of positions), so verifying a large
journal neither blocks writers nor pins old pages; a writer appending meanwhile
only extends what the next page sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final
from uuid import UUID

import attrs

from journal._chain import (
    HASH_SIZE,
    ZERO_HASH,
    event_hash,
    log_hash,
    stored_hash,
    unpack_event,
)
from journal._keys import (
    decode_event_key,
    decode_notification_id,
    notification_key,
    stream_key,
)
from journal._store import (
    AGGREGATE_DB_PREFIX,
    EVENTS_DB,
    HEAD_KEY,
    META_DB,
    NOTIFICATIONS_DB,
    _Store,
)

__all__ = ["Checker", "Problem", "Progress", "VerifyReport", "make_report"]

PAGE: Final = 2000
_VERSION_BYTES: Final = 8

Progress = Callable[[int], None]
"""Called with the number of events checked so far."""


@attrs.frozen
class Problem:
    """One thing a verification found wrong, at a position of the journal.

    ``position`` is the notification id (the global log position) the problem
    is at, when it is known; ``originator_id`` and ``version`` name the stream
    event, when there is one.
    """

    position: int | None
    message: str
    originator_id: UUID | str | None = None
    version: int | None = None

    def __str__(self) -> str:
        where = [] if self.position is None else [f"position {self.position}"]
        if self.originator_id is not None:
            where.append(f"{self.originator_id} v{self.version}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@attrs.frozen
class VerifyReport:
    """What a verification found; ``ok`` when ``problems`` is empty.

    ``problems`` are ordered by position (unknown positions last); ``first_bad``
    is the first bad position. ``head`` is the hex hash of the last position:
    written down elsewhere, a later verification printing the same head proves
    that nothing up to that position has changed since.
    """

    events: int
    notifications: int
    max_notification_id: int | None
    problems: tuple[Problem, ...]
    head: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        positions = [p.position for p in self.problems if p.position is not None]
        return min(positions) if positions else None


class Checker:
    """Collects problems while walking a journal's chains."""

    def __init__(self, store: _Store) -> None:
        self._store = store
        self.problems: list[Problem] = []
        self.events = 0
        self.notifications = 0
        self.last_id: int | None = None
        self.last_hash: bytes | None = None

    # -- the whole journal ------------------------------------------------------

    def check_log(self, progress: Progress | None) -> None:
        """Walk the log up to the head recorded when the walk began: positions
        committed meanwhile are newer than this verification."""
        events_db = self._store.db(EVENTS_DB)
        log_db = self._store.db(NOTIFICATIONS_DB)
        if events_db is None or log_db is None:
            return
        with self._store.reading() as txn:
            head = txn.get(HEAD_KEY, db=self._store.db(META_DB))
        # No head: nothing was committed when the walk began (an entry without a
        # head is reported by check_end_and_orphans, in one transaction).
        stop = 0 if head is None else decode_notification_id(head[:8])
        previous, expected = ZERO_HASH, 1
        while True:
            with self._store.reading() as txn:
                page = _page(txn, log_db, expected, stop)
                events = txn.cursor(db=events_db)  # one per page, reused
                for notification_id, entry in page:
                    if notification_id != expected:
                        self._add(
                            expected,
                            f"the log jumps from position {expected - 1} to "
                            f"{notification_id}: notifications were removed "
                            "or renumbered",
                        )
                    previous = self._check_entry(
                        events, notification_id, entry, previous
                    )
                    expected = notification_id + 1
                    self.notifications += 1
                    self.last_id, self.last_hash = notification_id, previous
            if progress is not None and page:
                progress(self.notifications)
            if len(page) < PAGE:
                break
        self._check_head(head)

    def check_end_and_orphans(self) -> None:
        """In one transaction: the log ends at the head, and every event is in
        the log (an event count that differs from the log's is looked into)."""
        events_db = self._store.db(EVENTS_DB)
        log_db = self._store.db(NOTIFICATIONS_DB)
        if events_db is None or log_db is None:
            return
        with self._store.reading() as txn:
            head = txn.get(HEAD_KEY, db=self._store.db(META_DB))
            cursor = txn.cursor(db=log_db)
            last = decode_notification_id(cursor.key()) if cursor.last() else 0
            head_id = 0 if head is None else decode_notification_id(head[:8])
            if last > head_id:
                self._add(
                    head_id + 1,
                    f"the log goes on to position {last} past the journal's head "
                    f"at {head_id}: notifications were inserted at the end",
                )
            elif (
                last == head_id
                and head is not None
                and cursor.value()[-HASH_SIZE:] != head[8:]
            ):
                self._add(head_id, "the log's last hash differs from the head")
            if txn.stat(events_db)["entries"] != txn.stat(log_db)["entries"]:
                self._find_orphans(txn, events_db, log_db)

    def check_snapshots(self) -> None:
        """Check the chains of every other event table (snapshots)."""
        with self._store.reading() as txn:
            names = [
                name
                for name in txn.cursor().iternext(values=False)
                if name.startswith(AGGREGATE_DB_PREFIX)
            ]
        for name in names:
            db = self._store.db(name)
            if db is not None:
                table = name[len(AGGREGATE_DB_PREFIX) :].decode()
                with self._store.reading() as txn:
                    for _ in self._walk(txn, db, b"", table=table):
                        pass

    # -- one stream --------------------------------------------------------------

    def check_stream(self, originator_id: UUID | str) -> None:
        events_db = self._store.db(EVENTS_DB)
        log_db = self._store.db(NOTIFICATIONS_DB)
        if events_db is None or log_db is None:
            return
        prefix = stream_key(originator_id)
        with self._store.reading() as txn:
            for key, digest, notification_id in self._walk(txn, events_db, prefix):
                self.events += 1
                if notification_id is None:
                    self._add(None, "is in no position of the log", key)
                    continue
                self._check_log_entry(txn, log_db, notification_id, key, digest)

    # -- checks ------------------------------------------------------------------

    def _check_entry(
        self, events: Any, notification_id: int, entry: bytes, previous: bytes
    ) -> bytes:
        """Check one log entry and its event (``events``: a cursor on the event
        table); return the entry's stored hash."""
        if len(entry) <= HASH_SIZE:
            self._add(notification_id, "the log entry is truncated")
            return previous
        key, stored = entry[:-HASH_SIZE], entry[-HASH_SIZE:]
        value = events.value() if events.set_key(key) else None
        if value is None:
            self._add(notification_id, "the log points at an event that is missing")
            return stored
        self.events += 1
        try:
            claimed, topic, state, digest = unpack_event(value)
        except ValueError as error:
            self._add(notification_id, f"the event cannot be read ({error})", key)
            return stored
        if claimed != notification_id:
            self._add(
                notification_id,
                f"the log points at an event that says it is at position {claimed}: "
                "events were moved or reordered",
                key,
            )
        expected = event_hash(
            _previous_in_stream(events, key), key, claimed, topic, state
        )
        if digest != expected:
            self._add(
                notification_id,
                "the event's hash does not match its content and the event before "
                "it in its stream: it was altered, or an event before it was "
                "removed, altered or inserted",
                key,
            )
        if stored != log_hash(previous, notification_id, key, digest):
            self._add(
                notification_id,
                "the log's hash does not chain from the previous position: entries "
                "were altered, reordered, inserted or removed here",
                key,
            )
        return stored

    def _check_log_entry(
        self, txn: Any, log_db: Any, notification_id: int, key: bytes, digest: bytes
    ) -> None:
        entry = txn.get(notification_key(notification_id), db=log_db)
        if entry is None or entry[:-HASH_SIZE] != key:
            self._add(notification_id, "the log does not point back at this event", key)
            return
        previous = ZERO_HASH
        if notification_id > 1:
            before = txn.get(notification_key(notification_id - 1), db=log_db)
            if before is None:
                self._add(notification_id - 1, "the log entry is missing")
                return
            previous = before[-HASH_SIZE:]
        if entry[-HASH_SIZE:] != log_hash(previous, notification_id, key, digest):
            self._add(
                notification_id,
                "the log's hash does not chain from the previous position",
                key,
            )

    def _check_head(self, head: bytes | None) -> None:
        """The walk reached the head recorded when it began, with its hash."""
        if head is None:
            return
        head_id = decode_notification_id(head[:8])
        last = self.last_id or 0
        if last < head_id:
            self._add(
                last + 1,
                f"the log ends at position {last} but the journal's head is at "
                f"{head_id}: notifications at the end were removed",
            )
        elif head[8:] != self.last_hash:
            self._add(head_id, "the log's hash at the head differs from the head")

    def _find_orphans(self, txn: Any, events_db: Any, log_db: Any) -> None:
        """Events no log entry points at (they were inserted, or their entry was
        removed: either way a problem at the position they claim)."""
        for key, value in txn.cursor(db=events_db):
            try:
                claimed = unpack_event(value)[0]
            except ValueError:
                claimed = None
            entry = (
                None
                if claimed is None
                else txn.get(notification_key(claimed), db=log_db)
            )
            if entry is None or entry[:-HASH_SIZE] != key:
                self._add(claimed, "no log entry points at this event", key)

    def _walk(
        self, txn: Any, db: Any, prefix: bytes, *, table: str = ""
    ) -> Iterator[tuple[bytes, bytes, int | None]]:
        """Each event under ``prefix`` in key order, its chain checked."""
        cursor = txn.cursor(db=db)
        if not cursor.set_range(prefix):
            return
        stream, previous = b"", ZERO_HASH
        for key, value in cursor:
            if not key.startswith(prefix):
                return
            if key[:-_VERSION_BYTES] != stream:
                stream, previous = key[:-_VERSION_BYTES], ZERO_HASH
            try:
                claimed, topic, state, digest = unpack_event(value)
            except ValueError as error:
                self._add(None, f"{table} event cannot be read ({error})", key)
                continue
            expected = event_hash(previous, key, claimed, topic, state)
            if digest != expected:
                where = f"the {table} event's" if table else "the event's"
                self._add(
                    claimed,
                    f"{where} hash does not match its content and the event "
                    "before it in its stream",
                    key,
                )
            previous = digest
            yield key, digest, claimed

    def _add(
        self, position: int | None, message: str, key: bytes | None = None
    ) -> None:
        originator_id: UUID | str | None = None
        version: int | None = None
        if key is not None:
            try:
                originator_id, version = decode_event_key(key)
            except (ValueError, UnicodeDecodeError, IndexError):
                message = f"{message} (at an unreadable key {key.hex()})"
        self.problems.append(Problem(position, message, originator_id, version))

    def report(self) -> VerifyReport:
        return make_report(
            self.problems, self.events, self.notifications, self.last_id, self.last_hash
        )


def make_report(
    problems: list[Problem],
    events: int,
    notifications: int,
    last_id: int | None,
    last_hash: bytes | None,
) -> VerifyReport:
    """A verification's report: its problems ordered by position (unknown
    positions last), the head as hex."""
    unknown = 1 << 64
    ordered = sorted(
        problems, key=lambda p: unknown if p.position is None else p.position
    )
    head = None if last_hash is None else last_hash.hex()
    return VerifyReport(events, notifications, last_id, tuple(ordered), head)


def _page(txn: Any, log_db: Any, start: int, stop: int) -> list[tuple[int, bytes]]:
    cursor = txn.cursor(db=log_db)
    page: list[tuple[int, bytes]] = []
    if not cursor.set_range(notification_key(start)):
        return page
    for id_key, entry in cursor:
        notification_id = decode_notification_id(id_key)
        if notification_id > stop:
            break
        page.append((notification_id, entry))
        if len(page) == PAGE:
            break
    return page


def _previous_in_stream(events: Any, key: bytes) -> bytes:
    """The stored hash of the event before ``key`` (where the cursor ``events``
    stands) in its stream, or zeros. A corrupt row's tail may be taken here: that
    row is reported at its own, earlier, position."""
    if not events.prev():
        return ZERO_HASH
    if events.key()[:-_VERSION_BYTES] != key[:-_VERSION_BYTES]:
        return ZERO_HASH
    return stored_hash(events.value())
