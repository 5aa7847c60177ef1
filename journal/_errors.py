"""Errors of the journal, and chronik's root error.

``ChronikError`` lives here because ``journal`` is the bottom layer: every other
chronik package may import it, and it imports none of them.

Each error is built from its data (its ``__init__`` arguments are exactly what
``args`` holds), so it pickles and travels between actors and processes; the message
is derived from that data and says what to do.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    TranscodingNotRegisteredError,
)

__all__ = [
    "ChronikError",
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


class ChronikError(Exception):
    """Root of every error chronik raises on purpose."""


class JournalError(ChronikError):
    """Something about the LMDB journal itself."""


class JournalPathError(JournalError, ValueError):
    """The journal path cannot hold a chronik journal."""

    def __init__(self, path: str, problem: str, remedy: str) -> None:
        super().__init__(path, problem, remedy)
        self.path = path
        self.problem = problem
        self.remedy = remedy

    def __str__(self) -> str:
        return f"journal path {self.path!r}: {self.problem}. {self.remedy}"


class JournalConfigError(JournalError, ValueError):
    """A journal setting is missing or has a bad value."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(setting, value, problem)
        self.setting = setting
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return f"journal setting {self.setting}={self.value!r}: {self.problem}"


class JournalClosedError(JournalError, RuntimeError):
    """The journal was used after it was closed."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return (
            f"journal {self.path!r} is closed; open it again "
            "(journal.Journal.open or a new InfrastructureFactory) to use it"
        )


class JournalFullError(JournalError, OperationalError):
    """The map reached its hard cap; the transaction was rolled back whole."""

    def __init__(self, path: str, map_size: int, max_map_size: int) -> None:
        super().__init__(path, map_size, max_map_size)
        self.path = path
        self.map_size = map_size
        self.max_map_size = max_map_size

    def __str__(self) -> str:
        return (
            f"journal {self.path!r} is full: the map is {self.map_size} bytes and "
            f"may not grow past LMDB_MAX_MAP_SIZE={self.max_map_size}; nothing of "
            "this write was stored. Raise LMDB_MAX_MAP_SIZE (or unset it to let "
            "the map grow freely) and retry"
        )


class EventConflictError(JournalError, IntegrityError):
    """Another writer already stored this (originator id, version).

    The writer that gets this error was a stale owner of the stream: reload the
    aggregate and decide again. Nothing of its batch was stored.
    """

    def __init__(
        self, originator_id: UUID | str, originator_version: int, reason: str
    ) -> None:
        super().__init__(originator_id, originator_version, reason)
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"cannot append version {self.originator_version} of stream "
            f"{self.originator_id!s}: {self.reason}; nothing of this batch was "
            "stored (the writer was a stale owner: reload the stream and retry)"
        )


class TrackingConflictError(JournalError, IntegrityError):
    """A tracking position is not past the one already recorded."""

    def __init__(self, application_name: str, notification_id: int, current: int):
        super().__init__(application_name, notification_id, current)
        self.application_name = application_name
        self.notification_id = notification_id
        self.current = current

    def __str__(self) -> str:
        return (
            f"tracking position {self.notification_id} of {self.application_name!r} "
            f"is not greater than the recorded position {self.current}; this "
            "notification was already processed, nothing of this batch was stored"
        )


class TrackingValueError(JournalError, ValueError):
    """A tracking position the journal cannot store."""

    def __init__(self, application_name: str, notification_id: int, problem: str):
        super().__init__(application_name, notification_id, problem)
        self.application_name = application_name
        self.notification_id = notification_id
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"tracking ({self.application_name!r}, {self.notification_id}): "
            f"{self.problem}; nothing of this batch was stored"
        )


class StreamIdError(JournalError, ValueError):
    """An originator id the journal cannot use as a stream key."""

    def __init__(self, originator_id: object, problem: str) -> None:
        super().__init__(originator_id, problem)
        self.originator_id = originator_id
        self.problem = problem

    def __str__(self) -> str:
        return f"originator id {self.originator_id!r}: {self.problem}"


class UnencodableValueError(ChronikError, TranscodingNotRegisteredError):
    """A value msgpack cannot encode; nothing was written."""

    def __init__(self, type_name: str, location: str) -> None:
        super().__init__(type_name, location)
        self.type_name = type_name
        self.location = location

    def __str__(self) -> str:
        return (
            f"cannot encode a value of type {self.type_name} at {self.location}: "
            "pass plain data (str, int, float, bool, None, bytes, list, tuple, dict, "
            "set, frozenset, UUID, Decimal, datetime) or register its class: "
            f"ActorSystem.open(..., converters=[{self.type_name}]) for a dataclass, "
            "attrs class, pydantic model or enum, a journal.Converter subclass for "
            "any other class"
        )


class ConverterEncodeError(UnencodableValueError):
    """A converter's ``encode`` raised, or returned data msgpack cannot store;
    nothing was written."""

    def __init__(
        self, converter_name: str, type_name: str, location: str, problem: str
    ) -> None:
        ChronikError.__init__(self, converter_name, type_name, location, problem)
        self.converter_name = converter_name
        self.type_name = type_name
        self.location = location
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"cannot encode the value at {self.location}: the converter "
            f"{self.converter_name!r} {self.problem}; fix its encode so that it "
            "returns plain data (or values of registered types)"
        )


class UnknownTypeNameError(ChronikError, TranscodingNotRegisteredError):
    """Stored data names a type no converter of this transcoder is registered
    under."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"cannot decode a stored value of type name {self.name!r}: no converter "
            "is registered under that name; pass the converter that wrote it, e.g. "
            f"ActorSystem.open(..., converters=[TheClass]) (or Audit, Replayer and "
            f"export_history with converters=...), naming it {self.name!r} if the "
            "class has moved"
        )


class ConverterDecodeError(ChronikError, ValueError):
    """A converter's ``decode`` raised on data the journal holds."""

    def __init__(self, name: str, data: str, problem: str) -> None:
        super().__init__(name, data, problem)
        self.name = name
        self.data = data
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"the converter {self.name!r} cannot decode the stored data {self.data}: "
            f"{self.problem}; fix its decode (or the class) so it reads what was "
            "stored"
        )


class UnsupportedTypeError(ChronikError, TypeError):
    """Something passed as a converter that is neither a supported class nor a
    converter."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(what, problem)
        self.what = what
        self.problem = problem

    def __str__(self) -> str:
        return f"converters=[...]: {self.what} {self.problem}"


class DuplicateConverterError(ChronikError, ValueError):
    """Two converters under one name (or for one type): the journal could not
    tell their values apart."""

    def __init__(self, name: str, first: str, second: str, problem: str) -> None:
        super().__init__(name, first, second, problem)
        self.name = name
        self.first = first
        self.second = second
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"converters=[...]: {self.first} and {self.second} {self.problem}; "
            "pass one converter per type, each under a name of its own (a class "
            "that moved keeps its old name with converter_for(cls, name=...))"
        )
