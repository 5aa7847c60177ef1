"""Byte layout of journal keys.

A stream key identifies one originator: a tag byte (UUID or str), then the id. For
str ids the length comes first, so no stream key is a prefix of another and a
range scan over one stream never strays into the next. An event key is the stream
key followed by the version, big-endian with the sign bit flipped, so LMDB's
bytewise order is version order.
"""

from __future__ import annotations

import struct
from uuid import UUID

from journal._errors import StreamIdError, TrackingValueError

__all__ = [
    "MAX_STR_ID_BYTES",
    "MAX_VERSION",
    "MIN_VERSION",
    "decode_event_key",
    "decode_notification_id",
    "event_key",
    "notification_key",
    "stream_key",
    "text_event_key",
    "tracking_key",
    "version_bytes",
]

_UUID_TAG = 1
_STR_TAG = 2
_VERSION_OFFSET = 1 << 63
MIN_VERSION = -_VERSION_OFFSET
MAX_VERSION = _VERSION_OFFSET - 1
_VERSION = struct.Struct(">Q")
_LENGTH = struct.Struct(">H")
_TEXT_LENGTH = struct.Struct(">I")
_MAX_KEY_BYTES = 511  # LMDB's default maximum key size
_MAX_NOTIFICATION_ID = (1 << 64) - 1
# Keep room for tag, length and version.
MAX_STR_ID_BYTES = _MAX_KEY_BYTES - 1 - _LENGTH.size - _VERSION.size


def stream_key(originator_id: UUID | str) -> bytes:
    if isinstance(originator_id, UUID):
        return bytes((_UUID_TAG,)) + originator_id.bytes
    if isinstance(originator_id, str):
        encoded = originator_id.encode("utf-8")
        if len(encoded) > MAX_STR_ID_BYTES:
            raise StreamIdError(
                originator_id,
                f"is {len(encoded)} bytes in UTF-8, the journal allows at most "
                f"{MAX_STR_ID_BYTES}; use a shorter id or a UUID",
            )
        return bytes((_STR_TAG,)) + _LENGTH.pack(len(encoded)) + encoded
    raise StreamIdError(
        originator_id, f"is a {type(originator_id).__name__}; use a UUID or a str"
    )


def version_bytes(version: int) -> bytes:
    try:
        return _VERSION.pack(version + _VERSION_OFFSET)
    except struct.error:
        raise StreamIdError(
            version, "is not a version the journal can store (a 64-bit integer)"
        ) from None


def event_key(originator_id: UUID | str, version: int) -> bytes:
    return stream_key(originator_id) + version_bytes(version)


def text_event_key(originator_id: str, version: int) -> bytes:
    """The key a PostgreSQL journal's hash chains cover: ``event_key``'s layout
    with a four-byte length, as a text id there has no LMDB key-size limit."""
    encoded = originator_id.encode("utf-8")
    return (
        bytes((_STR_TAG,))
        + _TEXT_LENGTH.pack(len(encoded))
        + encoded
        + version_bytes(version)
    )


def decode_event_key(key: bytes) -> tuple[UUID | str, int]:
    version = _VERSION.unpack_from(key, len(key) - _VERSION.size)[0] - _VERSION_OFFSET
    if key[0] == _UUID_TAG:
        return UUID(bytes=key[1:17]), version
    length = _LENGTH.unpack_from(key, 1)[0]
    start = 1 + _LENGTH.size
    return key[start : start + length].decode("utf-8"), version


def tracking_key(application_name: str, notification_id: int) -> bytes:
    """The key of a tracking position, checked before any transaction begins."""
    encoded = application_name.encode("utf-8", errors="surrogatepass")
    if not 0 < len(encoded) <= _MAX_KEY_BYTES:
        raise TrackingValueError(
            application_name,
            notification_id,
            f"the application name must be 1 to {_MAX_KEY_BYTES} bytes in UTF-8",
        )
    if not 0 <= notification_id <= _MAX_NOTIFICATION_ID:
        raise TrackingValueError(
            application_name,
            notification_id,
            f"the notification id must be in 0..{_MAX_NOTIFICATION_ID}",
        )
    return encoded


def notification_key(notification_id: int) -> bytes:
    return _VERSION.pack(notification_id)


def decode_notification_id(key: bytes) -> int:
    return int(_VERSION.unpack(key)[0])
