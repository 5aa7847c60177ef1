"""A msgpack transcoder for eventsourcing's mapper: chronik's default.

It subclasses ``JSONTranscoder`` only so that ``Application.register_transcodings``
(which registers custom transcodings on JSON transcoders alone) keeps working for
applications that add their own; it never emits JSON.

msgpack has no tuple, no big int and no custom types, so those travel as ext types:

- ``1``: a registered transcoding: ``[name, encoded]`` (the encoded value may itself
  hold custom types, as with the JSON transcoder);
- ``2``: a tuple, its items packed as an array;
- ``3``: an int outside 64 bits, as signed big-endian bytes;
- ``4`` and ``5``: a set and a frozenset, their items packed as an array (sorted
  when they sort, so that equal sets are stored alike).

User types (dataclasses, attrs classes, pydantic models, enums, or anything with
a ``journal.Converter``) are registered transcodings: ``MsgpackTranscoder(
converters=[Order, Status, MoneyConverter()])``, see ``journal._converters``.

Subclasses of str, int, float, dict and list without a transcoding of their own are
stored as their base type, as the JSON transcoder stores them.

Each thread packs with packers of its own, kept between values: ``msgpack.packb``
makes a ``Packer`` per call, and the 256 KiB buffer each allocates made an
event's encoding cost 15 us instead of 1.5 (a timestamp's ext type packs a
second value inside the first, so two buffers live at once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, NamedTuple

import msgpack
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    UUIDAsHex,
)

from journal._converters import ConverterLike, resolve_converters
from journal._converters import _Derived as Derived
from journal._errors import (
    ConverterDecodeError,
    ConverterEncodeError,
    UnencodableValueError,
    UnknownTypeNameError,
)

__all__ = ["MsgpackTranscoder"]

_TRANSCODING = 1
_TUPLE = 2
_BIG_INT = 3
_SET = 4
_FROZENSET = 5
_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1
_PLAIN = (str, bytes, int, float, bool, type(None))
_BASES = (bool, int, float, str, bytes, dict, list)
_PACKER_BUFFER: Final = 4096  # bytes a kept packer starts with (it grows as needed)
_KEPT_AT_MOST: Final = 1 << 16  # a packer that packed more is not kept (its buffer)


class _Packers(threading.local):
    """A thread's idle packers (a value packed inside another takes a second)."""

    def __init__(self) -> None:
        self.idle: list[msgpack.Packer] = []


class MsgpackTranscoder(JSONTranscoder):
    """``converters``: the user types it stores (see ``add_converters``)."""

    def __init__(self, converters: Iterable[ConverterLike] = ()) -> None:
        super().__init__()
        self.register(UUIDAsHex())
        self.register(DecimalAsStr())
        self._datetime = DatetimeAsISO()
        self.register(self._datetime)
        # Every event has a timestamp: its ext payload, ``[name, isoformat]``,
        # is this prefix and the packed string (the bytes _transcode makes).
        self._datetime_prefix = b"\x92" + msgpack.packb(self._datetime.name)
        self._packers = _Packers()
        # Invariant: the user's converters, each registered under its name.
        self.converters: tuple[Transcoding, ...] = ()
        self.add_converters(converters)

    def add_converters(self, converters: Iterable[ConverterLike]) -> None:
        """Register user types: classes (a dataclass, attrs class, pydantic model
        or enum) or converters. Registers none of them if any is refused."""
        resolved = resolve_converters(converters, self.converters)
        for converter in resolved:
            self.register(converter)
        self.converters = resolved

    def encode(self, obj: Any) -> bytes:
        try:
            return self._pack(obj)
        except (TypeError, ValueError, OverflowError) as error:
            raise _find_unencodable(obj, self.types) from error

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(
            data, ext_hook=self._ext_hook, raw=False, strict_map_key=False
        )

    def _pack(self, obj: Any) -> bytes:
        idle = self._packers.idle
        packer = idle.pop() if idle else self._new_packer()
        # A packer that raised is dropped: its buffer may hold part of obj.
        packed: bytes = packer.pack(obj)
        if len(packed) <= _KEPT_AT_MOST:
            idle.append(packer)
        return packed

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(
            default=self._default,
            use_bin_type=True,
            strict_types=True,
            datetime=False,
            buf_size=_PACKER_BUFFER,
        )

    def _default(self, obj: Any) -> Any:
        transcoding = self.types.get(type(obj))
        if transcoding is not None:
            return self._transcode(transcoding, obj)
        if type(obj) is tuple:
            return msgpack.ExtType(_TUPLE, self._pack(list(obj)))
        if isinstance(obj, int) and not isinstance(obj, bool):
            return _int(obj)
        for base in _BASES:
            if isinstance(obj, base):
                convert: Callable[[Any], Any] = base
                return convert(obj)
        if isinstance(obj, tuple):
            return msgpack.ExtType(_TUPLE, self._pack(list(obj)))
        if isinstance(obj, set | frozenset):
            code = _FROZENSET if isinstance(obj, frozenset) else _SET
            return msgpack.ExtType(code, self._pack(_ordered(obj)))
        raise TypeError(type(obj))

    def _transcode(self, transcoding: Transcoding, obj: Any) -> msgpack.ExtType:
        if transcoding is self._datetime:
            payload = self._datetime_prefix + self._pack(obj.isoformat())
            return msgpack.ExtType(_TRANSCODING, payload)
        try:
            encoded = transcoding.encode(obj)
        except Exception as error:  # walked again in encode, to say where
            raise TypeError(error) from error
        payload = self._pack([transcoding.name, encoded])
        return msgpack.ExtType(_TRANSCODING, payload)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == _TRANSCODING:
            name, encoded = self.decode(data)
            transcoding = self.names.get(name)
            if transcoding is None:
                raise UnknownTypeNameError(name)
            try:
                return transcoding.decode(encoded)
            except Exception as error:
                raise ConverterDecodeError(
                    name, _short(encoded), repr(error)
                ) from error
        if code == _TUPLE:
            return tuple(self.decode(data))
        if code == _BIG_INT:
            return int.from_bytes(data, "big", signed=True)
        if code == _SET:
            return set(self.decode(data))
        if code == _FROZENSET:
            return frozenset(self.decode(data))
        return msgpack.ExtType(code, data)


def _int(obj: int) -> Any:
    value = int(obj)
    if _INT64_MIN <= value <= _UINT64_MAX:
        return value  # an int subclass of 64 bits
    size = (value.bit_length() + 8) // 8
    return msgpack.ExtType(_BIG_INT, value.to_bytes(size, "big", signed=True))


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # items of types that do not compare
        return list(items)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Found(NamedTuple):
    """The first value that would not encode, and where it is."""

    value: Any
    location: str
    converter: Transcoding | None = None  # the converter that made or met it
    failure: Exception | None = None  # what the converter's encode raised


def _find_unencodable(
    obj: Any, transcodings: dict[type, Transcoding]
) -> UnencodableValueError:
    """Walk ``obj`` (only after encoding failed) to name the first bad value.

    A converter that raised, or whose data holds a bad value, is to blame; the
    fields of a derived converter are the class's own fields, so a bad value
    there is the user's value (of a type to register), not the converter's."""
    for found in _walk(obj, "value", transcodings, None):
        type_name = _type_name(found.value)
        if isinstance(found.value, str):
            type_name = "str (not valid UTF-8: it holds a lone surrogate)"
        if found.converter is None:
            return UnencodableValueError(type_name, found.location)
        name = found.converter.name
        if found.failure is not None:
            problem = f"raised {found.failure!r} encoding a {type_name}"
        else:
            problem = (
                f"returned data holding a {type_name} at {found.location}, which "
                "msgpack cannot store"
            )
        return ConverterEncodeError(
            type_name, found.location, converter_name=name, problem=problem
        )
    return UnencodableValueError(_type_name(obj), "value")


def _is_plain(obj: Any) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return False  # a lone surrogate: msgpack cannot encode it
    return isinstance(obj, _PLAIN)


def _walk(
    obj: Any,
    location: str,
    transcodings: dict[type, Transcoding],
    converter: Transcoding | None,
) -> Iterator[_Found]:
    if _is_plain(obj):
        return
    transcoding = transcodings.get(type(obj))
    if transcoding is not None:
        try:
            encoded = transcoding.encode(obj)
        except Exception as error:
            yield _Found(obj, location, transcoding, error)
            return
        if not isinstance(transcoding, Derived):
            yield from _walk(encoded, location, transcodings, transcoding)
        elif isinstance(encoded, dict):  # fields by name
            for field, value in encoded.items():
                yield from _walk(value, f"{location}.{field}", transcodings, None)
        else:  # an enum's value
            yield from _walk(encoded, f"{location}.value", transcodings, None)
        return
    if isinstance(obj, dict | list | tuple | set | frozenset):
        yield from _walk_items(obj, location, transcodings, converter)
        return
    yield _Found(obj, location, converter)


def _walk_items(
    obj: Any,
    location: str,
    transcodings: dict[type, Transcoding],
    converter: Transcoding | None,
) -> Iterator[_Found]:
    if isinstance(obj, dict):
        for key, item in obj.items():
            yield from _walk(
                key, f"{location} (a key {key!r})", transcodings, converter
            )
            yield from _walk(item, f"{location}[{key!r}]", transcodings, converter)
        return
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield from _walk(item, f"{location}[{index}]", transcodings, converter)
        return
    if isinstance(obj, set | frozenset):
        for item in obj:
            where = f"{location} (an item {item!r})"
            yield from _walk(item, where, transcodings, converter)


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else (f"{kind.__module__}.{kind.__qualname__}")
    )
