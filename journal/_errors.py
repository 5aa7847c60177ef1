"""Errors of the journal.

Each error declares its data as fields on chronik's error base (``chronik_errors``,
below every package, which also holds the root ``ChronikError``): its constructor
takes exactly those fields and ``args`` holds them, so it pickles and travels between
actors and processes; the message is derived from that data and says what to do.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    TranscodingNotRegisteredError,
)

from chronik_errors import ChronikError

__all__ = [
    "ConverterDecodeError",
    "ConverterEncodeError",
    "DuplicateConverterError",
    "EventConflictError",
    "JournalClosedError",
    "JournalConfigError",
    "JournalError",
    "JournalFullError",
    "JournalPathError",
    "StreamIdError",
    "TrackingConflictError",
    "TrackingValueError",
    "UnencodableValueError",
    "UnknownTypeNameError",
    "UnsupportedTypeError",
]


class JournalError(ChronikError):
    """Something about the LMDB journal itself."""


class JournalPathError(JournalError, ValueError):
    """The journal path cannot hold a chronik journal."""

    path: str
    problem: str
    remedy: str
    template = "journal path {path!r}: {problem}. {remedy}"


class JournalConfigError(JournalError, ValueError):
    """A journal setting is missing or has a bad value."""

    setting: str
    value: object
    problem: str
    template = "journal setting {setting}={value!r}: {problem}"


class JournalClosedError(JournalError, RuntimeError):
    """The journal was used after it was closed."""

    path: str
    template = (
        "journal {path!r} is closed; open it again "
        "(journal.Journal.open or a new InfrastructureFactory) to use it"
    )


class JournalFullError(JournalError, OperationalError):
    """The map reached its hard cap; the transaction was rolled back whole."""

    path: str
    map_size: int
    max_map_size: int
    template = (
        "journal {path!r} is full: the map is {map_size} bytes and "
        "may not grow past LMDB_MAX_MAP_SIZE={max_map_size}; nothing of "
        "this write was stored. Raise LMDB_MAX_MAP_SIZE (or unset it to let "
        "the map grow freely) and retry"
    )


class EventConflictError(JournalError, IntegrityError):
    """Another writer already stored this (originator id, version).

    The writer that gets this error was a stale owner of the stream: reload the
    aggregate and decide again. Nothing of its batch was stored.
    """

    originator_id: UUID | str
    originator_version: int
    reason: str
    template = (
        "cannot append version {originator_version} of stream "
        "{originator_id!s}: {reason}; nothing of this batch was "
        "stored (the writer was a stale owner: reload the stream and retry)"
    )


class FencedOutError(JournalError, IntegrityError):
    """A write carried the fencing token of a partition another host has taken
    since: the writer is a stale owner. Nothing of its batch was stored."""

    stream_id: UUID | str
    partition: int
    held_token: int
    current_token: int
    current_owner: str | None
    template = (
        "cannot append to stream {stream_id!s}: its partition {partition} was "
        "taken over (this writer held fencing token {held_token}, the partition's "
        "token is now {current_token}, owner {current_owner!r}); nothing of this "
        "batch was stored: the writer must stop driving the partition's runs"
    )


class LeaseSettingError(JournalError, ValueError):
    """A lease was asked for with a bad partition, owner, TTL or time."""

    setting: str
    value: object
    problem: str
    template = "lease {setting}={value!r} {problem}; nothing was written"


class TrackingConflictError(JournalError, IntegrityError):
    """A tracking position is not past the one already recorded."""

    application_name: str
    notification_id: int
    current: int
    template = (
        "tracking position {notification_id} of {application_name!r} "
        "is not greater than the recorded position {current}; this "
        "notification was already processed, nothing of this batch was stored"
    )


class TrackingValueError(JournalError, ValueError):
    """A tracking position the journal cannot store."""

    application_name: str
    notification_id: int
    problem: str
    template = (
        "tracking ({application_name!r}, {notification_id}): "
        "{problem}; nothing of this batch was stored"
    )


class StreamIdError(JournalError, ValueError):
    """An originator id the journal cannot use as a stream key."""

    originator_id: object
    problem: str
    template = "originator id {originator_id!r}: {problem}"


class UnencodableValueError(ChronikError, TranscodingNotRegisteredError):
    """A value msgpack cannot encode; nothing was written."""

    type_name: str
    location: str
    template = (
        "cannot encode a value of type {type_name} at {location}: "
        "pass plain data (str, int, float, bool, None, bytes, list, tuple, dict, "
        "set, frozenset, UUID, Decimal, datetime) or register its class: "
        "ActorSystem.open(..., converters=[{type_name}]) for a dataclass, "
        "attrs class, pydantic model or enum, a journal.Converter subclass for "
        "any other class"
    )


class ConverterEncodeError(UnencodableValueError):
    """A converter's ``encode`` raised, or returned data msgpack cannot store;
    nothing was written."""

    converter_name: str
    problem: str
    template = (
        "cannot encode the value at {location}: the converter "
        "{converter_name!r} {problem}; fix its encode so that it "
        "returns plain data (or values of registered types)"
    )


class UnknownTypeNameError(ChronikError, TranscodingNotRegisteredError):
    """Stored data names a type no converter of this transcoder is registered
    under."""

    name: str
    template = (
        "cannot decode a stored value of type name {name!r}: no converter "
        "is registered under that name; pass the converter that wrote it, e.g. "
        "ActorSystem.open(..., converters=[TheClass]) (or Audit, Replayer and "
        "export_history with converters=...), naming it {name!r} if the "
        "class has moved"
    )


class ConverterDecodeError(ChronikError, ValueError):
    """A converter's ``decode`` raised on data the journal holds."""

    name: str
    data: str
    problem: str
    template = (
        "the converter {name!r} cannot decode the stored data {data}: "
        "{problem}; fix its decode (or the class) so it reads what was stored"
    )


class UnsupportedTypeError(ChronikError, TypeError):
    """Something passed as a converter that is neither a supported class nor a
    converter."""

    what: str
    problem: str
    template = "converters=[...]: {what} {problem}"


class DuplicateConverterError(ChronikError, ValueError):
    """Two converters under one name (or for one type): the journal could not
    tell their values apart."""

    name: str
    first: str
    second: str
    problem: str
    template = (
        "converters=[...]: {first} and {second} {problem}; "
        "pass one converter per type, each under a name of its own (a class "
        "that moved keeps its old name with converter_for(cls, name=...))"
    )
