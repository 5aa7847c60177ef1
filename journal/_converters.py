"""User types for the msgpack transcoder: converters, written or derived.

A converter says how values of one class are stored: its ``type``, a stable
``name`` (what the journal holds beside the data, so a class may move to another
module as long as its converter keeps the name), ``encode`` (the value as data
msgpack can store, which may hold other registered types) and ``decode``.

``converter_for(cls)`` derives one for a dataclass, an attrs class, a pydantic
(v2) model or an enum: fields by name, through the class's own constructor, so a
field added later with a default reads old data; an enum by its member's value.
``resolve_converters`` turns what a user passes (classes and converters) into
converters, refusing duplicates and classes of no supported kind.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Final, Generic, TypeVar

import attrs
from eventsourcing.persistence import Transcoding

from journal._errors import DuplicateConverterError, UnsupportedTypeError

__all__ = [
    "BUILT_IN_NAMES",
    "Converter",
    "ConverterLike",
    "converter_for",
    "default_name",
    "resolve_converters",
]

T = TypeVar("T")

# The names of the transcodings every MsgpackTranscoder holds.
BUILT_IN_NAMES: Final = frozenset({"uuid_hex", "decimal_str", "datetime_iso"})
_KINDS: Final = "a dataclass, an attrs class, a pydantic model or an enum"


class Converter(Transcoding, Generic[T]):
    """How one user type is stored. Subclass it for a type chronik cannot derive
    a converter for (``converter_for``)::

        class MoneyConverter(Converter[Money]):
            type = Money
            name = "shop.Money"  # stable: the journal stores it

            def encode(self, value: Money) -> Any:
                return [value.amount, value.currency]  # msgpack-able data

            def decode(self, data: Any) -> Money:
                return Money(*data)

    ``decode(encode(value))`` must equal ``value``: the runtime hands a live run
    the decoded value, so that it sees what a replay sees.
    """

    type: type[T]
    name: str

    @abstractmethod
    def encode(self, value: T) -> Any:
        """``value`` as data msgpack can store (it may hold registered types)."""

    @abstractmethod
    def decode(self, data: Any) -> T:
        """The value ``encode`` turned into ``data``."""


ConverterLike = type | Transcoding
"""What ``converters=`` takes: a class to derive a converter for, or a converter
(any eventsourcing ``Transcoding``, such as a ``Converter``)."""


def default_name(cls: type) -> str:
    """``module.qualname``: the name a derived converter stores ``cls`` under."""
    return f"{cls.__module__}.{cls.__qualname__}"


def converter_for(cls: type, name: str | None = None) -> Converter[Any]:
    """The converter of a dataclass, attrs class, pydantic model or enum, under
    ``name`` (default ``module.qualname``: pass the old name after moving it)."""
    if not isinstance(cls, type):
        raise UnsupportedTypeError(repr(cls), "is not a class")
    stored_as = default_name(cls) if name is None else name
    if issubclass(cls, enum.Enum):
        return _EnumConverter(cls, stored_as)
    if dataclasses.is_dataclass(cls):
        fields = [(f.name, f.name) for f in dataclasses.fields(cls) if f.init]
        return _FieldsConverter(cls, stored_as, tuple(fields))
    if attrs.has(cls):
        fields = [(a.name, a.alias or a.name) for a in attrs.fields(cls) if a.init]
        return _FieldsConverter(cls, stored_as, tuple(fields))
    if _is_pydantic_model(cls):
        return _PydanticConverter(cls, stored_as)
    raise UnsupportedTypeError(
        default_name(cls),
        f"is not {_KINDS}, so chronik cannot derive its converter; pass a "
        "journal.Converter subclass for it instead (type, name, encode, decode)",
    )


def resolve_converters(
    items: Iterable[ConverterLike], existing: Iterable[Transcoding] = ()
) -> tuple[Transcoding, ...]:
    """``existing`` and converters for ``items`` (classes are derived), each name
    and type once.

    The same class or converter given twice counts once; two converters with
    one name, or two names for one type, raise ``DuplicateConverterError``.
    """
    if isinstance(items, type | Transcoding | str):
        raise UnsupportedTypeError(repr(items), "is not a list of converters")
    by_name: dict[str, Transcoding] = {}
    by_type: dict[type, Transcoding] = {}
    for item in [*existing, *items]:
        converter = converter_for(item) if isinstance(item, type) else item
        _check_converter(converter)
        same_name = by_name.get(converter.name)
        if same_name is not None and same_name != converter:
            raise DuplicateConverterError(
                converter.name,
                _describe(same_name),
                _describe(converter),
                f"share the name {converter.name!r}",
            )
        if converter.name in BUILT_IN_NAMES:
            raise DuplicateConverterError(
                converter.name,
                "chronik's built-in transcoding",
                _describe(converter),
                f"share the name {converter.name!r}",
            )
        same_type = by_type.get(converter.type)
        if same_type is not None and same_type != converter:
            raise DuplicateConverterError(
                converter.name,
                _describe(same_type),
                _describe(converter),
                f"both convert {default_name(converter.type)}",
            )
        by_name[converter.name] = by_type[converter.type] = converter
    return tuple(by_name.values())


def _check_converter(converter: object) -> None:
    if not isinstance(converter, Transcoding):
        raise UnsupportedTypeError(
            repr(converter),
            f"is neither a class ({_KINDS}) nor a journal.Converter",
        )
    kind = getattr(converter, "type", None)
    name = getattr(converter, "name", None)
    if not isinstance(kind, type):
        raise UnsupportedTypeError(
            repr(converter), f"has type = {kind!r}; set it to the class it converts"
        )
    if not isinstance(name, str) or not name:
        raise UnsupportedTypeError(
            repr(converter),
            f"has name = {name!r}; set it to a stable, non-empty str "
            f"(such as {default_name(kind)!r})",
        )


def _describe(converter: Transcoding) -> str:
    return f"{converter!r} (for {default_name(converter.type)})"


def _is_pydantic_model(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")  # a model's class imported it
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


class _Derived(Converter[Any]):
    """A converter chronik derived; equal to another derived for the same class
    and name, so passing a class twice is harmless."""

    def __init__(self, cls: type, name: str) -> None:
        self.type = cls
        self.name = name

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, _Derived)
            and (other.type, other.name) == (self.type, self.name)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.type, self.name))

    def __repr__(self) -> str:
        return f"converter_for({default_name(self.type)}, name={self.name!r})"


class _EnumConverter(_Derived):
    """A member as its value: ``cls(value)`` finds it again (flags included)."""

    def encode(self, value: Any) -> Any:
        return value.value

    def decode(self, data: Any) -> Any:
        return self.type(data)


class _FieldsConverter(_Derived):
    """A dataclass or attrs instance as ``{field: value}``, rebuilt by calling
    the class with each ``__init__`` field under its keyword. Stored fields the
    class no longer has are left out; fields it gained take their defaults."""

    def __init__(self, cls: type, name: str, fields: tuple[tuple[str, str], ...]):
        super().__init__(cls, name)
        self._fields = fields  # (attribute, keyword of __init__)

    def encode(self, value: Any) -> Any:
        return {attribute: getattr(value, attribute) for attribute, _ in self._fields}

    def decode(self, data: Any) -> Any:
        build: Callable[..., Any] = self.type
        return build(
            **{
                keyword: data[attribute]
                for attribute, keyword in self._fields
                if attribute in data
            }
        )


class _PydanticConverter(_Derived):
    """A pydantic model as ``{field: value}``, rebuilt without validating again
    (``model_construct``): the values were valid, and a validator that changes
    values would otherwise change them twice."""

    def encode(self, value: Any) -> Any:
        return {name: getattr(value, name) for name in self.type.model_fields}

    def decode(self, data: Any) -> Any:
        known = {k: v for k, v in data.items() if k in self.type.model_fields}
        return self.type.model_construct(**known)
