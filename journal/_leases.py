"""Leases with fencing tokens: which host drives which partition of runs.

The streams of a journal are split into ``PARTITIONS`` partitions by a stable hash
of their id (``partition_of``). A lease says who owns a partition (a host id), until
when (``expires_at``, seconds on the hosts' shared wall clock), and with which
fencing token. Tokens come from one counter in the journal: each time a partition
changes owner, the new owner gets a token larger than any handed out before, in
any partition. A renewal by the owner keeps its token.

A writer that owns a partition passes its ``Fence`` (partition, token) with each
write of that partition's events; the recorder checks it in the same write
transaction and refuses the write whole (``FencedOutError``) if the partition's
token is no longer the writer's. So a stale owner (frozen past its lease, cut off,
its partition taken by another host) cannot write, whatever its clock says; expiry
only decides when another host may take a partition, never whether a write is
accepted.

Leases live in their own LMDB database, written through the journal's group
committer (durable as events are). They are not events: renewals would flood the
audited log with housekeeping.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, TypeVar

import attrs
import msgpack

from journal._errors import FencedOutError, LeaseSettingError
from journal._store import Journal

__all__ = [
    "LEASES_DB",
    "PARTITIONS",
    "Fence",
    "Lease",
    "LeaseStorage",
    "LeaseTable",
    "Leases",
    "LmdbLeaseStorage",
    "check_covered",
    "check_fence",
    "partition_of",
]

_T = TypeVar("_T")

PARTITIONS: Final = 64
LEASES_DB: Final = b"chronik:leases"
_COUNTER: Final = b"counter"  # the last fencing token handed out
_PARTITION: Final = b"p:"  # + the partition, 4 bytes big-endian
_MEMBER: Final = b"m:"  # + a host id: until when that host said it is alive


def partition_of(stream_id: str) -> int:
    """The partition of a run (or any stream) id: stable across processes and
    Python versions (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(stream_id.encode("utf-8")) % PARTITIONS


@attrs.frozen
class Lease:
    """Who owns ``partition`` until ``expires_at``, with fencing token ``token``."""

    partition: int
    owner: str
    token: int
    expires_at: float  # seconds since the epoch, on the hosts' shared clock

    def held(self, now: float) -> bool:
        return now < self.expires_at


@attrs.frozen
class Fence:
    """What a write of a partition's events carries: the writer's token for it."""

    partition: int
    token: int


class LeaseTable(Protocol):
    """The lease records of one journal inside one transaction (a backend's)."""

    def get(self, partition: int) -> Lease | None: ...

    def put(self, lease: Lease) -> None: ...

    def put_all(self, leases: Iterable[Lease]) -> None:
        """``put`` each (a backend may do it in one statement)."""

    def all(self) -> dict[int, Lease]: ...

    def counter(self) -> int: ...

    def set_counter(self, token: int) -> None: ...

    def put_member(self, host: str, until: float) -> None: ...

    def delete_member(self, host: str) -> None: ...

    def members(self) -> dict[str, float]: ...


class LeaseStorage(Protocol):
    """Runs a function on the lease table in one durable write transaction, or
    in one read transaction."""

    def write(self, fn: Callable[[LeaseTable], _T]) -> _T: ...

    def read(self, fn: Callable[[LeaseTable], _T]) -> _T: ...


class LmdbLeaseStorage:
    """The lease table in the LMDB journal's ``LEASES_DB``, written through its
    group committer (durable as events are)."""

    def __init__(self, journal: Journal) -> None:
        self._store = journal.store
        self._db = self._store.db(LEASES_DB)

    def write(self, fn: Callable[[LeaseTable], _T]) -> _T:
        result: _T = self._store.write(
            lambda context: fn(_LmdbTable(context.txn, self._db))
        )
        return result

    def read(self, fn: Callable[[LeaseTable], _T]) -> _T:
        with self._store.reading() as txn:
            return fn(_LmdbTable(txn, self._db))


class _LmdbTable:
    def __init__(self, txn: Any, db: Any) -> None:
        self._txn, self._db = txn, db

    def get(self, partition: int) -> Lease | None:
        return _get(self._txn, self._db, partition)

    def put(self, lease: Lease) -> None:
        _put(self._txn, self._db, lease)

    def put_all(self, leases: Iterable[Lease]) -> None:
        for lease in leases:
            _put(self._txn, self._db, lease)

    def all(self) -> dict[int, Lease]:
        return _all(self._txn, self._db)

    def counter(self) -> int:
        return _counter(self._txn, self._db)

    def set_counter(self, token: int) -> None:
        self._txn.put(_COUNTER, msgpack.packb(token), db=self._db)

    def put_member(self, host: str, until: float) -> None:
        _put_member(self._txn, self._db, host, until)

    def delete_member(self, host: str) -> None:
        self._txn.delete(_MEMBER + host.encode("utf-8"), db=self._db)

    def members(self) -> dict[str, float]:
        found: dict[str, float] = {}
        cursor = self._txn.cursor(db=self._db)
        if cursor.set_range(_MEMBER):
            for key, value in cursor:
                if not key.startswith(_MEMBER):
                    break
                found[key[len(_MEMBER) :].decode("utf-8")] = msgpack.unpackb(value)
        return found


class Leases:
    """The lease table of one journal. Every method is one durable write (or one
    read) and safe from any thread or process. ``storage``: an LMDB ``Journal``,
    or any ``LeaseStorage`` (PostgreSQL's: ``journal._pg_leases``)."""

    def __init__(self, storage: Journal | LeaseStorage) -> None:
        self._storage: LeaseStorage = (
            LmdbLeaseStorage(storage) if isinstance(storage, Journal) else storage
        )
        self.writes = 0  # write transactions through this object: housekeeping

    def _write(self, write: Callable[[LeaseTable], _T]) -> _T:
        result = self._storage.write(write)
        self.writes += 1
        return result

    def read(self) -> dict[int, Lease]:
        """Every partition that ever had an owner, as the journal holds it now."""
        return self._storage.read(lambda table: table.all())

    def owner_of(self, partition: int, now: float) -> str | None:
        """Who holds ``partition`` at ``now`` (None: nobody, or expired)."""
        _check_partition(partition)
        lease = self._storage.read(lambda table: table.get(partition))
        return lease.owner if lease is not None and lease.held(now) else None

    def last_token(self) -> int:
        """The largest fencing token handed out so far (0 if none)."""
        return self._storage.read(lambda table: table.counter())

    def acquire(
        self,
        partitions: Iterable[int],
        owner: str,
        ttl: float,
        now: float,
        *,
        dead: frozenset[str] = frozenset(),
    ) -> dict[int, Lease]:
        """Take each of ``partitions`` that is free, expired, held by one of the
        ``dead`` hosts (known gone, its lease not run out yet) or ``owner``'s
        already (then it is renewed, its token kept); the others are left to
        their owners. Returns the leases ``owner`` holds of them afterwards."""
        wanted = sorted(set(partitions))
        for partition in wanted:
            _check_partition(partition)
        _check_lease_terms(owner, ttl, now)

        def write(table: LeaseTable) -> dict[int, Lease]:
            counter = table.counter()
            held: dict[int, Lease] = {}
            for partition in wanted:
                lease = table.get(partition)
                if (
                    lease is not None
                    and lease.owner != owner
                    and lease.held(now)
                    and lease.owner not in dead
                ):
                    continue
                token = lease.token if lease is not None and lease.owner == owner else 0
                if not token:
                    counter += 1
                    token = counter
                held[partition] = Lease(partition, owner, token, now + ttl)
            table.put_all(held.values())
            table.set_counter(counter)
            table.put_member(owner, now + ttl)
            return held

        return self._write(write)

    def renew(self, owner: str, ttl: float, now: float) -> dict[int, Lease]:
        """Extend every lease ``owner`` still holds (expired or not, as long as
        no other host took it), tokens kept. Returns them: a partition missing
        from the result is lost."""
        return self.renew_round(owner, ttl, now)[0]

    def renew_round(
        self, owner: str, ttl: float, now: float
    ) -> tuple[dict[int, Lease], list[str]]:
        """``renew``, and the hosts alive at ``now`` (``members``), in one
        transaction: a host's whole round of housekeeping costs one."""
        _check_lease_terms(owner, ttl, now)

        def write(table: LeaseTable) -> tuple[dict[int, Lease], list[str]]:
            renewed = {
                p: attrs.evolve(lease, expires_at=now + ttl)
                for p, lease in table.all().items()
                if lease.owner == owner
            }
            table.put_all(renewed.values())
            table.put_member(owner, now + ttl)
            alive = [h for h, until in table.members().items() if now < until]
            return renewed, alive

        return self._write(write)

    def members(self, now: float) -> list[str]:
        """The hosts alive at ``now``: each ``acquire`` or ``renew`` says a host
        is alive for its TTL; ``leave`` says it is gone."""
        found = self._storage.read(lambda table: table.members())
        return [host for host, until in found.items() if now < until]

    def leave(self, owner: str, now: float) -> None:
        """``owner`` stops: its leases expire now and it is no member any more."""
        _check_lease_terms(owner, 1.0, now)

        def write(table: LeaseTable) -> None:
            table.put_all(
                attrs.evolve(lease, expires_at=min(now, lease.expires_at))
                for lease in table.all().values()
                if lease.owner == owner
            )
            table.delete_member(owner)

        self._write(write)

    def release(self, partitions: Iterable[int], owner: str, now: float) -> None:
        """Let go of those of ``partitions`` ``owner`` holds: they expire now
        (their tokens stay; the next owner gets a larger one)."""
        wanted = sorted(set(partitions))
        for partition in wanted:
            _check_partition(partition)

        def write(table: LeaseTable) -> None:
            for partition in wanted:
                lease = table.get(partition)
                if lease is not None and lease.owner == owner:
                    table.put(
                        attrs.evolve(lease, expires_at=min(now, lease.expires_at))
                    )

        self._write(write)


def _put_member(txn: Any, db: Any, host: str, until: float) -> None:
    txn.put(_MEMBER + host.encode("utf-8"), msgpack.packb(until), db=db)


def check_covered(fence: Fence, stream_ids: Iterable[Any]) -> None:
    """Raise ``LeaseSettingError`` if a stream is not of the fence's partition
    (call before the write: a writer holds a partition, not a stream). A new
    stream's first event needs no fence (creating it conflicts by itself, and a
    run starts its children in theirs): leave those out."""
    for stream_id in stream_ids:
        partition = partition_of(str(stream_id))
        if partition != fence.partition:
            problem = (
                f"does not cover stream {stream_id!s}, which is in partition "
                f"{partition}"
            )
            raise LeaseSettingError("fence", fence, problem)


def check_fence(txn: Any, store: Any, fence: Fence, stream_id: Any) -> None:
    """Raise ``FencedOutError`` unless ``fence`` still holds its partition: call
    inside the write transaction, before putting anything."""
    db = store.db(LEASES_DB)  # created with the recorder: no txn opened here
    lease = None if db is None else _get(txn, db, fence.partition)
    if lease is None or lease.token != fence.token:
        current = 0 if lease is None else lease.token
        holder = None if lease is None else lease.owner
        raise FencedOutError(stream_id, fence.partition, fence.token, current, holder)


# -- storage -------------------------------------------------------------------------


def _key(partition: int) -> bytes:
    return _PARTITION + partition.to_bytes(4, "big")


def _get(txn: Any, db: Any, partition: int) -> Lease | None:
    value = txn.get(_key(partition), db=db)
    return None if value is None else _decode(partition, value)


def _put(txn: Any, db: Any, lease: Lease) -> None:
    value = msgpack.packb([lease.owner, lease.token, lease.expires_at])
    txn.put(_key(lease.partition), value, db=db)


def _decode(partition: int, value: bytes) -> Lease:
    owner, token, expires_at = msgpack.unpackb(value)
    return Lease(partition, owner, token, expires_at)


def _all(txn: Any, db: Any) -> dict[int, Lease]:
    found: dict[int, Lease] = {}
    cursor = txn.cursor(db=db)
    if cursor.set_range(_PARTITION):
        for key, value in cursor:
            if not key.startswith(_PARTITION):
                break
            partition = int.from_bytes(key[len(_PARTITION) :], "big")
            found[partition] = _decode(partition, value)
    return found


def _counter(txn: Any, db: Any) -> int:
    value = txn.get(_COUNTER, db=db)
    return 0 if value is None else int(msgpack.unpackb(value))


def _check_partition(partition: int) -> None:
    if not isinstance(partition, int) or not 0 <= partition < PARTITIONS:
        raise LeaseSettingError(
            "partition", partition, f"is not in 0..{PARTITIONS - 1}"
        )


def _check_lease_terms(owner: str, ttl: float, now: float) -> None:
    if not isinstance(owner, str) or not owner:
        raise LeaseSettingError("owner", owner, "is not a non-empty host id")
    if not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise LeaseSettingError("ttl", ttl, "is not a number of seconds > 0")
    if not isinstance(now, int | float) or not math.isfinite(now):
        raise LeaseSettingError("now", now, "is not a time in seconds")
