"""A run's history out of its journal, as a stable JSON document, and back.

``export_history(path_or_system, workflow_id)`` reads the run's events (read-only:
the journal may be open in this process or written by another one);
``write_history`` and ``load_history`` store a ``History`` as JSON::

    {"format": "chronik-history/1", "workflow_id": "order-o-1",
     "workflow": "shop.orders:process_order",
     "events": [{"type": "aggregates:Started", "version": 1,
                 "timestamp": "2026-01-01T00:00:00+00:00", "state": {...}}, ...]}

``state`` is the event's data as the journal stores it, less the run id, version
and timestamp given beside it. Values JSON lacks are one-key objects with a tag,
so they come back exactly: ``{"$bytes": base64}``, ``{"$datetime": iso}``,
``{"$uuid": str}``, ``{"$decimal": str}``, ``{"$tuple": [...]}``, ``{"$float":
"nan"}`` (and infinities), ``{"$set": [...]}``, ``{"$frozenset": [...]}``,
``{"$dict": [[key, value], ...]}`` for a dict whose keys are not all strings, or
include one starting with ``$``, and ``{"$type": [name, data]}`` for a value of a
user type: its converter's name and encoded data. Key order is kept: workflow
code may depend on it. Reading or writing user types takes their converters
(``converters=``, as ``ActorSystem.open`` takes them; an open system's own).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import attrs
from eventsourcing.persistence import Mapper, StoredEvent, Transcoding
from eventsourcing.utils import resolve_topic

from actors._errors import ActorError, UnknownRunError
from actors._system import ActorSystem
from aggregates import RunEvent, Started
from journal import (
    AnyJournalReader,
    ConverterLike,
    MsgpackTranscoder,
    UnknownTypeNameError,
    open_reader,
)

__all__ = [
    "FORMAT",
    "History",
    "HistoryFormatError",
    "export_histories",
    "export_history",
    "load_history",
    "read_histories",
    "write_history",
]

FORMAT: Final = "chronik-history/1"
_BESIDE_STATE: Final = frozenset({"originator_id", "originator_version", "timestamp"})

JournalSource = ActorSystem | str | os.PathLike[str]
_Types = Mapping[type, Transcoding]
_Names = Mapping[str, Transcoding]


class HistoryFormatError(ActorError, ValueError):
    """A history document (or file) that is not one ``write_history`` makes."""

    source: str
    problem: str

    def __str__(self) -> str:
        return (
            f"{self.source} is not a chronik history: {self.problem}; export one "
            f"with export_history() and write_history() (format {FORMAT!r})"
        )


@attrs.frozen
class History:
    """One run's events, oldest first, as its journal holds them."""

    workflow_id: str
    events: tuple[RunEvent, ...]
    # The converters of the user types its events hold, to write them as JSON.
    converters: tuple[Transcoding, ...] = attrs.field(default=(), eq=False, repr=False)

    @property
    def workflow(self) -> str:
        """The name of the run's workflow, as its ``Started`` event records it."""
        first = self.events[0] if self.events else None
        return first.name if isinstance(first, Started) else "?"

    def to_document(self) -> dict[str, Any]:
        """The history as plain JSON data (see the module's docstring)."""
        types = {converter.type: converter for converter in self.converters}
        return {
            "format": FORMAT,
            "workflow_id": self.workflow_id,
            "workflow": self.workflow,
            "events": [
                _event_document(event, i, types) for i, event in enumerate(self.events)
            ],
        }

    @classmethod
    def from_document(
        cls,
        document: Any,
        *,
        source: str = "the history document",
        converters: Iterable[ConverterLike] = (),
    ) -> History:
        """The inverse of ``to_document``; ``HistoryFormatError`` says what is wrong."""
        if not isinstance(document, Mapping):
            raise HistoryFormatError(source, "it is not a JSON object")
        if document.get("format") != FORMAT:
            found = document.get("format")
            raise HistoryFormatError(source, f"its format is {found!r}")
        workflow_id = document.get("workflow_id")
        if not isinstance(workflow_id, str) or not workflow_id:
            raise HistoryFormatError(
                source, f"workflow_id {workflow_id!r} is not a str"
            )
        events = document.get("events")
        if not isinstance(events, list) or not events:
            raise HistoryFormatError(source, "'events' is not a non-empty list")
        transcoder = MsgpackTranscoder(converters)
        mapper = Mapper[str](transcoder=transcoder)
        loaded = tuple(
            _load_event(mapper, workflow_id, item, index, source)
            for index, item in enumerate(events)
        )
        if not isinstance(loaded[0], Started):
            raise HistoryFormatError(source, "its first event is not a Started")
        return cls(workflow_id, loaded, transcoder.converters)


def write_history(path: str | os.PathLike[str], history: History) -> None:
    """Write ``history`` to ``path`` as indented JSON (the same bytes every time)."""
    text = json.dumps(history.to_document(), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_history(
    path: str | os.PathLike[str], *, converters: Iterable[ConverterLike] = ()
) -> History:
    """Read a history that ``write_history`` wrote."""
    source = f"history file {os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HistoryFormatError(source, f"it is not JSON ({error})") from None
    return History.from_document(document, source=source, converters=converters)


def export_history(
    source: JournalSource,
    workflow_id: str,
    *,
    converters: Iterable[ConverterLike] = (),
) -> History:
    """Run ``workflow_id``'s history from a journal (a path, or an open system).

    Reads without writing or locking: the journal may be in use meanwhile.
    Raises ``UnknownRunError`` if the journal holds no such run.
    """
    (history,) = export_histories(source, [workflow_id], converters=converters)
    return history


def export_histories(
    source: JournalSource,
    workflow_ids: Iterable[str] | None = None,
    *,
    converters: Iterable[ConverterLike] = (),
) -> list[History]:
    """The histories of ``workflow_ids``, default every run in start order."""
    histories: list[History] = []
    for _, history in read_histories(source, workflow_ids, converters):
        if not isinstance(history, History):
            raise history
        histories.append(history)
    return histories


def read_histories(
    source: JournalSource,
    workflow_ids: Iterable[str] | None = None,
    converters: Iterable[ConverterLike] = (),
) -> Iterator[tuple[str, History | Exception]]:
    """Each run id with its history, or why it has none (``UnknownRunError`` if
    the journal holds no such run), one at a time; the journal stays open
    (read-only) until the last."""
    path = source.path if isinstance(source, ActorSystem) else os.fspath(source)
    transcoder = MsgpackTranscoder(converters_of(source, converters))
    mapper = Mapper[str](transcoder=transcoder)
    with open_reader(path) as reader:
        ids = _run_ids(reader) if workflow_ids is None else list(workflow_ids)
        for workflow_id in ids:
            try:
                stored = list(reader.stream(workflow_id))
                events = [mapper.to_domain_event(s) for s in stored]
            except Exception as error:  # one unreadable run; the others may read
                yield workflow_id, error
                continue
            runs = [e for e in events if isinstance(e, RunEvent)]
            if runs and len(runs) == len(events) and isinstance(runs[0], Started):
                yield (
                    workflow_id,
                    History(workflow_id, tuple(runs), transcoder.converters),
                )
            else:
                yield workflow_id, UnknownRunError(workflow_id)


def converters_of(
    source: JournalSource, converters: Iterable[ConverterLike]
) -> list[ConverterLike]:
    """``converters``, and an open system's own if ``source`` is one."""
    own = source.converters if isinstance(source, ActorSystem) else ()
    return [*own, *converters]


def _run_ids(reader: AnyJournalReader) -> list[str]:
    """Every run's id, in the order the runs started."""
    started = reader.notifications(topics=[Started.TOPIC])
    return [str(notification.originator_id) for notification in started]


# -- events ----------------------------------------------------------------------


def _event_document(event: RunEvent, index: int, types: _Types) -> dict[str, Any]:
    state = {k: v for k, v in vars(event).items() if k not in _BESIDE_STATE}
    return {
        "type": event.TOPIC,
        "version": event.originator_version,
        "timestamp": event.timestamp.isoformat(),
        "state": _to_json(state, f"events[{index}].state", types),
    }


def _load_event(
    mapper: Mapper[str], workflow_id: str, item: Any, index: int, source: str
) -> RunEvent:
    where = f"events[{index}]"
    if not isinstance(item, Mapping):
        raise HistoryFormatError(source, f"{where} is not a JSON object")
    topic, version, state = item.get("type"), item.get("version"), item.get("state")
    if not isinstance(topic, str):
        raise HistoryFormatError(source, f"{where} has no 'type'")
    if version != index + 1 or isinstance(version, bool):
        problem = f"{where} has version {version!r}, not {index + 1}"
        raise HistoryFormatError(source, problem)
    if not isinstance(state, Mapping):
        raise HistoryFormatError(source, f"{where}.state is not a JSON object")
    try:
        event_class = resolve_topic(topic)
        timestamp = datetime.fromisoformat(item.get("timestamp"))  # type: ignore[arg-type]
    except Exception as error:  # a bad topic or time: say which event
        problem = f"{where} cannot be read ({type(error).__name__}: {error})"
        raise HistoryFormatError(source, problem) from None
    if not (isinstance(event_class, type) and issubclass(event_class, RunEvent)):
        problem = f"{where} has type {topic!r}, not an event of a workflow run"
        raise HistoryFormatError(source, problem)
    assert isinstance(mapper.transcoder, MsgpackTranscoder)
    names = mapper.transcoder.names
    values = _from_json(dict(state), f"{where}.state", source, names)
    values["timestamp"] = timestamp
    # Rebuilt as the journal rebuilds its events, through eventsourcing's mapper.
    stored = StoredEvent(workflow_id, version, topic, mapper.transcoder.encode(values))
    event = mapper.to_domain_event(stored)
    assert isinstance(event, RunEvent)
    return event


# -- values ------------------------------------------------------------------------

_SPECIAL_FLOATS: Final = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _to_json(value: Any, where: str, types: _Types | None = None) -> Any:
    """``value`` as JSON data; the tags of the module's docstring mark the rest.
    ``types``: the converters of user types, by type."""
    if value is None or type(value) in (bool, str, int):
        return value
    converter = types.get(type(value)) if types else None
    if converter is not None:
        data = _to_json(converter.encode(value), where, types)
        return {"$type": [converter.name, data]}
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return _items_to_json(value, where, types)
    if isinstance(value, dict):
        return _dict_to_json(value, where, types)
    return _scalar_to_json(value, where)


def _items_to_json(value: Any, where: str, types: _Types | None) -> Any:
    if isinstance(value, set | frozenset):
        items = [_to_json(x, f"{where} (an item)", types) for x in _ordered(value)]
        return {"$frozenset" if isinstance(value, frozenset) else "$set": items}
    items = [_to_json(x, f"{where}[{i}]", types) for i, x in enumerate(value)]
    return {"$tuple": items} if isinstance(value, tuple) else items


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # items of types that do not compare
        return list(items)


def _dict_to_json(value: dict[Any, Any], where: str, types: _Types | None) -> Any:
    if all(isinstance(k, str) and not k.startswith("$") for k in value):
        return {k: _to_json(v, f"{where}[{k!r}]", types) for k, v in value.items()}
    return {
        "$dict": [
            [
                _to_json(k, f"{where} (key {k!r})", types),
                _to_json(v, f"{where}[{k!r}]", types),
            ]
            for k, v in value.items()
        ]
    }


def _scalar_to_json(value: Any, where: str) -> Any:
    if isinstance(value, str):  # subclasses (a StrEnum) go as their base type
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    problem = (
        f"{where} holds a {type(value).__qualname__}, which a history document "
        "cannot hold (plain data, bytes, datetime, UUID, Decimal, tuples, sets and "
        "the user types of the converters given, only)"
    )
    raise HistoryFormatError("the history", problem)


def _from_json(value: Any, where: str, source: str, names: _Names) -> Any:
    if isinstance(value, list):
        return [
            _from_json(item, f"{where}[{i}]", source, names)
            for i, item in enumerate(value)
        ]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, payload),) = value.items()
        if key.startswith("$"):
            return _from_tag(key, payload, where, source, names)
    return {
        k: _from_json(v, f"{where}[{k!r}]", source, names) for k, v in value.items()
    }


def _from_tag(tag: str, payload: Any, where: str, source: str, names: _Names) -> Any:
    def items() -> Any:
        return _from_json(_as_list(payload), where, source, names)

    try:
        if tag in _CONTAINER_TAGS:
            return _CONTAINER_TAGS[tag](items())
        if tag == "$dict":
            return {
                _from_json(k, where, source, names): _from_json(v, where, source, names)
                for k, v in _as_list(payload)
            }
        if tag == "$type":
            name, data = _as_list(payload)
            if name not in names:
                raise UnknownTypeNameError(name)
            return names[name].decode(_from_json(data, where, source, names))
        return _SCALAR_TAGS[tag](payload)
    except (HistoryFormatError, UnknownTypeNameError):
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation, binascii.Error) as error:
        problem = f"{where} has {{{tag!r}: {payload!r}}}, which does not decode"
        raise HistoryFormatError(source, f"{problem} ({error!r})") from None


def _as_list(payload: Any) -> list[Any]:
    if not isinstance(payload, list):
        raise TypeError(f"{payload!r} is not a list")
    return payload


def _bytes(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _special_float(name: str) -> float:
    return _SPECIAL_FLOATS[name]


_CONTAINER_TAGS: Final[dict[str, Callable[[Any], Any]]] = {
    "$tuple": tuple,
    "$set": set,
    "$frozenset": frozenset,
}
_SCALAR_TAGS: Final[dict[str, Callable[[Any], Any]]] = {
    "$bytes": _bytes,
    "$datetime": datetime.fromisoformat,
    "$uuid": UUID,
    "$decimal": Decimal,
    "$float": _special_float,
}
