"""Hash chains: what makes an altered, removed, reordered or inserted event evident.

Two chains, both BLAKE2b-256 in an LMDB journal (SHA-256 in a PostgreSQL one,
where the server computes them and has no BLAKE2b; the bytes hashed are the same):

- Each stored event's hash covers the hash of the previous event of its stream
  (zeros for the first), its key (stream and version), its notification id, its
  topic and its state. It is stored with the event.
- Each notification's hash covers the previous notification's hash (zeros for
  the first), its id, the event key it points at and that event's hash. It is
  stored with the notification, and the last one is the journal's head.

Changing anything means recomputing every later hash of the chain; the head
printed by a verification, written down elsewhere, pins everything before it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any, Final

import msgpack

__all__ = [
    "HASH_SIZE",
    "ZERO_HASH",
    "Digest",
    "blake2b_256",
    "event_hash",
    "log_hash",
    "pack_event",
    "sha256",
    "stored_hash",
    "unpack_event",
]

HASH_SIZE: Final = 32
ZERO_HASH: Final = bytes(HASH_SIZE)
_ID: Final = struct.Struct(">Q")
_TOPIC_LENGTH: Final = struct.Struct(">I")
_blake2b = hashlib.blake2b

Digest = Callable[[bytes], bytes]  # HASH_SIZE bytes of the bytes given


def blake2b_256(data: bytes) -> bytes:
    return _blake2b(data, digest_size=HASH_SIZE).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def event_hash(
    previous: bytes,
    key: bytes,
    notification_id: int | None,
    topic: str,
    state: bytes,
    *,
    digest: Digest = blake2b_256,
) -> bytes:
    """The hash of one stored event, chained to ``previous`` of its stream."""
    encoded_topic = topic.encode("utf-8")
    return digest(
        b"".join(
            (
                previous,
                key,
                _ID.pack(notification_id or 0),
                _TOPIC_LENGTH.pack(len(encoded_topic)),
                encoded_topic,
                state,
            )
        )
    )


def log_hash(
    previous: bytes,
    notification_id: int,
    key: bytes,
    event_digest: bytes,
    *,
    digest: Digest = blake2b_256,
) -> bytes:
    """The hash of one notification, chained to the previous notification."""
    return digest(b"".join((previous, _ID.pack(notification_id), key, event_digest)))


def stored_hash(value: bytes) -> bytes:
    """The hash of a stored event row, without decoding the rest: it is the last
    field, a msgpack bin of ``HASH_SIZE`` bytes, so the row's last bytes."""
    return value[-HASH_SIZE:]


def pack_event(
    notification_id: int | None, topic: str, state: bytes, digest: bytes
) -> bytes:
    packed: bytes = msgpack.packb(
        [notification_id, topic, state, digest], use_bin_type=True
    )
    return packed


def unpack_event(value: bytes) -> tuple[int | None, str, bytes, bytes]:
    """``(notification id, topic, state, hash)``; ``ValueError`` if the bytes are
    not a stored event."""
    try:
        fields: Any = msgpack.unpackb(value)
    except Exception as error:  # msgpack raises several unrelated types
        raise ValueError(f"not msgpack ({error})") from None
    if (
        not isinstance(fields, list)
        or len(fields) != 4
        or not (fields[0] is None or isinstance(fields[0], int))
        or not isinstance(fields[1], str)
        or not isinstance(fields[2], bytes)
        or not isinstance(fields[3], bytes)
        or len(fields[3]) != HASH_SIZE
    ):
        raise ValueError("not [notification id, topic, state, hash]")
    return fields[0], fields[1], fields[2], fields[3]
