"""A msgpack transcoder for eventsourcing's mapper: chronik's default.

It subclasses ``JSONTranscoder`` only so that ``Application.register_transcodings``
(which registers custom transcodings on JSON transcoders alone) keeps working for
applications that add their own; it never emits JSON.

msgpack has no tuple, no big int and no custom types, so those travel as ext types:

- ``1``: a registered transcoding: ``[name, encoded]`` (the encoded value may itself
  hold custom types, as with the JSON transcoder);
- ``2``: a tuple, its items packed as an array;
- ``3``: an int outside 64 bits, as signed big-endian bytes.

Subclasses of str, int, float, dict and list without a transcoding of their own are
stored as their base type, as the JSON transcoder stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgpack
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from journal._errors import UnencodableValueError

__all__ = ["MsgpackTranscoder"]

_TRANSCODING = 1
_TUPLE = 2
_BIG_INT = 3
_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1
_PLAIN = (str, bytes, int, float, bool, type(None))
_BASES = (bool, int, float, str, bytes, dict, list)


class MsgpackTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self.register(UUIDAsHex())
        self.register(DecimalAsStr())
        self.register(DatetimeAsISO())

    def encode(self, obj: Any) -> bytes:
        try:
            return self._pack(obj)
        except UnencodableValueError:
            raise
        except (TypeError, ValueError, OverflowError) as error:
            type_name, location = _find_unencodable(obj, self.types)
            raise UnencodableValueError(type_name, location) from error

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(
            data, ext_hook=self._ext_hook, raw=False, strict_map_key=False
        )

    def _pack(self, obj: Any) -> bytes:
        packed: bytes = msgpack.packb(
            obj,
            default=self._default,
            use_bin_type=True,
            strict_types=True,
            datetime=False,
        )
        return packed

    def _default(self, obj: Any) -> Any:
        transcoding = self.types.get(type(obj))
        if transcoding is not None:
            payload = self._pack([transcoding.name, transcoding.encode(obj)])
            return msgpack.ExtType(_TRANSCODING, payload)
        if type(obj) is tuple:
            return msgpack.ExtType(_TUPLE, self._pack(list(obj)))
        if isinstance(obj, int) and not isinstance(obj, bool):
            value = int(obj)
            if _INT64_MIN <= value <= _UINT64_MAX:
                return value  # an int subclass of 64 bits
            size = (value.bit_length() + 8) // 8
            return msgpack.ExtType(_BIG_INT, value.to_bytes(size, "big", signed=True))
        for base in _BASES:
            if isinstance(obj, base):
                convert: Callable[[Any], Any] = base
                return convert(obj)
        if isinstance(obj, tuple):
            return msgpack.ExtType(_TUPLE, self._pack(list(obj)))
        raise TypeError(type(obj))

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == _TRANSCODING:
            name, encoded = self.decode(data)
            try:
                transcoding = self.names[name]
            except KeyError:
                msg = (
                    f"Data serialized with name '{name}' is not deserializable. "
                    "Please register a custom transcoding for this type."
                )
                raise TranscodingNotRegisteredError(msg) from None
            return transcoding.decode(encoded)
        if code == _TUPLE:
            return tuple(self.decode(data))
        if code == _BIG_INT:
            return int.from_bytes(data, "big", signed=True)
        return msgpack.ExtType(code, data)


def _find_unencodable(obj: Any, transcodings: dict[type, Any]) -> tuple[str, str]:
    """Walk ``obj`` (only after encoding failed) to name the first bad value."""
    for value, location in _walk(obj, "value", transcodings):
        if isinstance(value, str):
            return "str (not valid UTF-8: it holds a lone surrogate)", location
        return _type_name(value), location
    return _type_name(obj), "value"


def _is_plain(obj: Any) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return False  # a lone surrogate: msgpack cannot encode it
    return isinstance(obj, _PLAIN)


def _walk(
    obj: Any, location: str, transcodings: dict[type, Any]
) -> Iterator[tuple[Any, str]]:
    if _is_plain(obj):
        return
    if type(obj) in transcodings:
        yield from _walk(transcodings[type(obj)].encode(obj), location, transcodings)
        return
    if isinstance(obj, dict):
        for key, item in obj.items():
            yield from _walk(key, f"{location} (a key {key!r})", transcodings)
            yield from _walk(item, f"{location}[{key!r}]", transcodings)
        return
    if isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield from _walk(item, f"{location}[{index}]", transcodings)
        return
    yield obj, location


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else (f"{kind.__module__}.{kind.__qualname__}")
    )
