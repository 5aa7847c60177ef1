"""eventsourcing recorders on an LMDB journal.

Databases (all in one environment, so one transaction spans them):

- ``chronik:events``: event key (stream key + version) -> msgpack
  ``[notification id, topic, state, hash]``; the application sequence's events.
  The hash chains each event to the previous one of its stream (``_chain``), so a
  stream's versions are appended in ascending order only.
- ``chronik:notifications``: notification id -> event key + the log's chained hash.
  Ids are assigned inside the write transaction from the last id, so they are
  gapless and in commit order across threads and processes.
- ``chronik:tracking``: application name -> last processed notification id.
- ``chronik:agg:<purpose>``: aggregate recorders of other purposes (snapshots):
  event key -> msgpack ``[None, topic, state, hash]``, chained per stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from journal._chain import (
    HASH_SIZE,
    ZERO_HASH,
    event_hash,
    pack_event,
    stored_hash,
)
from journal._errors import (
    EventConflictError,
    TrackingConflictError,
    TrackingValueError,
)
from journal._keys import (
    MAX_VERSION,
    MIN_VERSION,
    decode_event_key,
    decode_notification_id,
    event_key,
    notification_key,
    stream_key,
    tracking_key,
    version_bytes,
)
from journal._leases import LEASES_DB, Fence, check_covered, check_fence
from journal._store import (
    AGGREGATE_DB_PREFIX,
    EVENTS_DB,
    NOTIFICATIONS_DB,
    TRACKING_DB,
    Journal,
    WriteContext,
)

__all__ = [
    "LMDBAggregateRecorder",
    "LMDBApplicationRecorder",
    "LMDBProcessRecorder",
    "LMDBSubscription",
    "LMDBTrackingRecorder",
]

# How often a subscription looks for commits made by other processes; commits made
# in this process wake it at once.
SUBSCRIPTION_POLL_INTERVAL = 0.01
_VERSION_BYTES = 8
_MAX_KEY_SUFFIX = b"\xff" * _VERSION_BYTES


class _LMDBRecorder:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._store = journal.store

    def close(self) -> None:
        self.journal.close()


class _EventTable(_LMDBRecorder):
    """Events of one database, keyed by stream and version."""

    def __init__(self, journal: Journal, db_name: bytes) -> None:
        super().__init__(journal)
        self._events_name = db_name
        self._store.db(db_name)  # create it now, so readers in other processes see it

    @property
    def _events(self) -> Any:
        return self._store.db(self._events_name)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        prefix = stream_key(originator_id)
        bounds = _version_range(gt, lte)
        events = self._events
        if bounds is None or (limit is not None and limit <= 0) or events is None:
            return []
        low, high = prefix + bounds[0], prefix + bounds[1]
        with self._store.reading() as txn:
            cursor = txn.cursor(db=events)
            keys = (
                _scan_desc(cursor, low, high) if desc else _scan_asc(cursor, low, high)
            )
            results = []
            for key, value in keys:
                results.append(_stored_row(originator_id, key, value))
                if len(results) == limit:
                    break
            return results

    def select_streams(
        self,
        originator_ids: Iterable[UUID | str],
        *,
        last_only: bool = False,
        gt: Mapping[UUID | str, int] | None = None,
    ) -> dict[UUID | str, list[StoredEvent]]:
        """Every event of each stream (after version ``gt[id]``, if given; or
        its last only), read in one transaction with one cursor, the streams in
        key order: loading many aggregates at once costs a seek each, not a
        transaction each. A stream with no events maps to an empty list."""
        wanted = sorted((stream_key(i), i) for i in originator_ids)
        found: dict[UUID | str, list[StoredEvent]] = {i: [] for _, i in wanted}
        events = self._events
        if events is None or not wanted:
            return found
        with self._store.reading() as txn:
            cursor = txn.cursor(db=events)
            for prefix, originator_id in wanted:
                after = None if gt is None else gt.get(originator_id)
                bounds = _version_range(after, None)
                if bounds is None:
                    continue
                low, high = prefix + bounds[0], prefix + bounds[1]
                if last_only:
                    rows = itertools.islice(_scan_desc(cursor, low, high), 1)
                else:
                    rows = _scan_asc(cursor, low, high)
                found[originator_id] = [
                    _stored_row(originator_id, key, value) for key, value in rows
                ]
        return found

    def _check_new(
        self, txn: Any, keyed: list[tuple[bytes, StoredEvent]]
    ) -> dict[bytes, bytes]:
        """Raise unless every event is new, unique and after its stream's last
        version; put nothing. Return each stream's last hash, by stream key."""
        if len(keyed) > 1 and len({key for key, _ in keyed}) < len(keyed):
            _refuse_twins(keyed)
        heads: dict[bytes, bytes] = {}
        last_in_batch: dict[bytes, bytes] = {}
        cursor = txn.cursor(db=self._events)
        for key, stored in keyed:
            stream = key[:-_VERSION_BYTES]
            before = last_in_batch.get(stream)
            last_in_batch[stream] = key
            if before is not None:
                if key < before:
                    raise EventConflictError(
                        stored.originator_id,
                        stored.originator_version,
                        "the batch's versions of this stream are not ascending",
                    )
                continue
            heads[stream] = _last_hash(cursor, key, stream, stored)
        return heads


def _stored_row(originator_id: UUID | str, key: bytes, value: bytes) -> StoredEvent:
    """The stored event of one row of the events table."""
    _, topic, state, _ = msgpack.unpackb(value)
    return StoredEvent(
        originator_id=originator_id,
        originator_version=decode_event_key(key)[1],
        topic=topic,
        state=state,
    )


def _refuse_twins(keyed: list[tuple[bytes, StoredEvent]]) -> None:
    seen: set[bytes] = set()
    for key, stored in keyed:
        if key in seen:
            raise EventConflictError(
                stored.originator_id,
                stored.originator_version,
                "the batch holds this version twice",
            )
        seen.add(key)


def _last_hash(cursor: Any, key: bytes, stream: bytes, stored: StoredEvent) -> bytes:
    """The hash of the last event of ``stream``, which must be before ``key``."""
    if cursor.set_range(key):
        found = cursor.key()
        if found == key:
            raise EventConflictError(
                stored.originator_id,
                stored.originator_version,
                "another writer already stored this version",
            )
        if found[:-_VERSION_BYTES] == stream:
            version = decode_event_key(found)[1]
            raise EventConflictError(
                stored.originator_id,
                stored.originator_version,
                f"the stream already has version {version}; a stream's versions "
                "are appended in ascending order",
            )
        has_previous = cursor.prev()
    else:
        has_previous = cursor.last()
    if has_previous and cursor.key()[:-_VERSION_BYTES] == stream:
        return stored_hash(cursor.value())
    return ZERO_HASH


def _chain(
    heads: dict[bytes, bytes], key: bytes, notification_id: int | None, s: StoredEvent
) -> tuple[bytes, bytes]:
    """The event's hash and packed row, advancing its stream's head."""
    stream = key[:-_VERSION_BYTES]
    digest = event_hash(heads[stream], key, notification_id, s.topic, s.state)
    heads[stream] = digest
    return digest, pack_event(notification_id, s.topic, s.state, digest)


def _version_range(gt: int | None, lte: int | None) -> tuple[bytes, bytes] | None:
    """Key suffixes bounding versions in (gt, lte], or None if none can match."""
    low = b"" if gt is None or gt < MIN_VERSION else None
    if low is None:
        if gt is None or gt >= MAX_VERSION:
            return None
        low = version_bytes(gt + 1)
    if lte is not None and lte < MIN_VERSION:
        return None
    high = version_bytes(min(lte, MAX_VERSION)) if lte is not None else _MAX_KEY_SUFFIX
    return (low, high) if low <= high else None


def _scan_asc(cursor: Any, low: bytes, high: bytes) -> Any:
    if not cursor.set_range(low):
        return
    for key, value in cursor:
        if key > high:
            return
        yield key, value


def _scan_desc(cursor: Any, low: bytes, high: bytes) -> Any:
    # Position on the last key <= high.
    if cursor.set_range(high):
        if cursor.key() != high and not cursor.prev():
            return
    elif not cursor.last():
        return
    for key, value in cursor.iterprev():
        if key < low:
            return
        yield key, value


class LMDBAggregateRecorder(_EventTable, AggregateRecorder):
    """Stores events of one purpose (e.g. snapshots) without notification ids."""

    def __init__(self, journal: Journal, purpose: str = "events") -> None:
        super().__init__(journal, AGGREGATE_DB_PREFIX + purpose.encode("utf-8"))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        keyed = _keyed(stored_events)
        if keyed:
            self._store.write(lambda context: self._put_rows(context, keyed))
        return None

    def _put_rows(
        self, context: WriteContext, keyed: list[tuple[bytes, StoredEvent]]
    ) -> None:
        txn = context.txn
        heads = self._check_new(txn, keyed)
        events = self._events
        for key, stored in keyed:
            txn.put(key, _chain(heads, key, None, stored)[1], db=events)


class LMDBApplicationRecorder(_EventTable, ApplicationRecorder):
    """Stores events in aggregate sequences and in the application sequence."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal, EVENTS_DB)
        self._store.db(NOTIFICATIONS_DB)
        self._store.db(LEASES_DB)  # now: a fenced write reads it inside its txn

    @property
    def _notifications(self) -> Any:
        return self._store.db(NOTIFICATIONS_DB)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """``fence=``: a ``journal.Fence``; the write is refused whole
        (``FencedOutError``) unless its partition's token is still the fence's."""
        keyed = _keyed(stored_events)
        # Only process recorders record tracking; others ignore it, as popo's do.
        tracking: Tracking | None = (
            kwargs.get("tracking") if isinstance(self, TrackingRecorder) else None
        )
        if tracking is not None:
            tracking_key(tracking.application_name, tracking.notification_id)
        if not keyed and tracking is None:
            return []
        fence: Fence | None = kwargs.get("fence")
        if fence is not None:  # a stream's first event (its creation) needs none
            check_covered(
                fence, (s.originator_id for _, s in keyed if s.originator_version > 1)
            )
        ids: list[int] = self._store.write(
            lambda context: self._append(context, keyed, tracking, fence)
        )
        return ids

    def _append(
        self,
        context: WriteContext,
        keyed: list[tuple[bytes, StoredEvent]],
        tracking: Tracking | None,
        fence: Fence | None = None,
    ) -> list[int]:
        txn = context.txn
        if fence is not None:
            stream = keyed[0][1].originator_id if keyed else None
            check_fence(txn, self._store, fence, stream)
        heads = self._check_new(txn, keyed)
        if tracking is not None:
            self._check_tracking(txn, tracking)
        ids = context.allocate_notification_ids(len(keyed))
        events = self._events
        for (key, stored), notification_id in zip(keyed, ids, strict=True):
            digest, row = _chain(heads, key, notification_id, stored)
            txn.put(key, row, db=events)
            context.log(notification_id, key, digest)
        if tracking is not None:
            self._put_tracking(txn, tracking)
        return list(ids)

    # Overridden by the tracking recorder in a process recorder's MRO.
    def _check_tracking(self, txn: Any, tracking: Tracking) -> None:
        pass

    def _put_tracking(self, txn: Any, tracking: Tracking) -> None:
        pass

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        first = max(first, 1)
        wanted = frozenset(topics)
        results: list[Notification] = []
        if limit <= 0 or (stop is not None and stop < first):
            return results
        notifications, events = self._notifications, self._events
        if notifications is None:  # a read-only journal nothing was written to yet
            return results
        with self._store.reading() as txn:
            cursor = txn.cursor(db=notifications)
            if not cursor.set_range(notification_key(first)):
                return results
            for id_key, entry in cursor:
                notification_id = decode_notification_id(id_key)
                if stop is not None and notification_id > stop:
                    break
                _, topic, state, _ = msgpack.unpackb(
                    txn.get(entry[:-HASH_SIZE], db=events)
                )
                if wanted and topic not in wanted:
                    continue
                originator_id, version = decode_event_key(entry[:-HASH_SIZE])
                results.append(
                    Notification(
                        id=notification_id,
                        originator_id=originator_id,
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
                if len(results) == limit:
                    break
        return results

    def max_notification_id(self) -> int | None:
        notifications = self._notifications
        if notifications is None:
            return None
        with self._store.reading() as txn:
            cursor = txn.cursor(db=notifications)
            return decode_notification_id(cursor.key()) if cursor.last() else None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return LMDBSubscription(recorder=self, gt=gt, topics=topics)


class LMDBSubscription(ListenNotifySubscription[LMDBApplicationRecorder]):
    """Yields notifications as they are committed: at once for commits of this
    process, within ``SUBSCRIPTION_POLL_INTERVAL`` for commits of other processes."""

    def __init__(
        self,
        recorder: LMDBApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._store = recorder._store
        self._poll_interval = SUBSCRIPTION_POLL_INTERVAL
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._store.listen(self._has_been_notified)

    def stop(self) -> None:
        super().stop()
        self._store.unlisten(self._has_been_notified)

    def _loop_on_pull(self) -> None:
        try:
            self._pull()
            while not self._has_been_stopped:
                self._has_been_notified.wait(timeout=self._poll_interval)
                if not self._has_been_stopped:
                    self._pull()
        except BaseException as error:
            if self._thread_error is None:
                self._thread_error = error
            self.stop()


class LMDBTrackingRecorder(_LMDBRecorder, TrackingRecorder):
    def __init__(self, journal: Journal) -> None:
        super().__init__(journal)
        self._store.db(TRACKING_DB)

    @property
    def _tracking(self) -> Any:
        return self._store.db(TRACKING_DB)

    def insert_tracking(self, tracking: Tracking) -> None:
        tracking_key(tracking.application_name, tracking.notification_id)
        self._store.write(lambda context: self._record_tracking(context, tracking))

    def _record_tracking(self, context: WriteContext, tracking: Tracking) -> None:
        self._check_tracking(context.txn, tracking)
        self._put_tracking(context.txn, tracking)

    def _check_tracking(self, txn: Any, tracking: Tracking) -> None:
        key = tracking_key(tracking.application_name, tracking.notification_id)
        current = txn.get(key, db=self._tracking)
        if current is not None:
            current_id = decode_notification_id(current)
            if current_id >= tracking.notification_id:
                raise TrackingConflictError(
                    tracking.application_name, tracking.notification_id, current_id
                )

    def _put_tracking(self, txn: Any, tracking: Tracking) -> None:
        txn.put(
            tracking_key(tracking.application_name, tracking.notification_id),
            notification_key(tracking.notification_id),
            db=self._tracking,
        )

    def max_tracking_id(self, application_name: str) -> int | None:
        try:
            key = tracking_key(application_name, 0)
        except TrackingValueError:
            return None  # a name that cannot be stored was never tracked
        with self._store.reading() as txn:
            found = txn.get(key, db=self._tracking)
        return None if found is None else decode_notification_id(found)


class LMDBProcessRecorder(
    LMDBTrackingRecorder, LMDBApplicationRecorder, ProcessRecorder
):
    """Events and the tracking position they were caused by, in one transaction."""

    # The MRO runs LMDBTrackingRecorder.__init__, then LMDBApplicationRecorder's.


def _keyed(stored_events: Sequence[StoredEvent]) -> list[tuple[bytes, StoredEvent]]:
    # Keys are built in the caller's thread: a bad id fails here, outside the group.
    return [
        (event_key(s.originator_id, s.originator_version), s) for s in stored_events
    ]
