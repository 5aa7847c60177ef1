"""History documents: every value the journal holds comes back exactly, the same
history writes the same bytes, and a bad document says what is wrong with it."""

from __future__ import annotations

import json
import math
import pickle
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    History,
    HistoryFormatError,
    ManualClock,
    UnknownRunError,
    export_histories,
    export_history,
    load_history,
    write_history,
)
from aggregates import WorkflowRun
from tests.replay import _workflows as flows
from tests.replay._support import history_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)

ODD_VALUES: list[Any] = [
    b"\x00\xff raw bytes",
    ("a", 1, ("nested", [b"x"])),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
    Decimal("1.10"),
    {1: "an int key", (2, 3): "a tuple key", "plain": "str keys too"},
    {"$bytes": "a str, not a tag"},
    {"$dollar": 1, "two": 2},
    2**100,
    -(2**70),
    math.inf,
    -math.inf,
    "ünïcödé ☃",
    [None, True, 0.5, {}],
]


@pytest.fixture(scope="module")
def odd_journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("history") / "journal")
    with ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system:
        system.spawn(flows.echoes, ODD_VALUES, id="odd").result(timeout=5)
    return path


def test_a_history_file_gives_back_every_value_the_journal_holds(
    odd_journal: str, tmp_path: Path
) -> None:
    exported = export_history(odd_journal, "odd")
    write_history(tmp_path / "odd.json", exported)
    loaded = load_history(tmp_path / "odd.json")
    assert loaded.workflow_id == "odd"
    assert loaded.workflow == "tests.replay.echoes"
    assert [type(e) for e in loaded.events] == [type(e) for e in exported.events]
    assert [vars(e) for e in loaded.events] == [vars(e) for e in exported.events]
    result = loaded.events[-1].result  # type: ignore[attr-defined]
    assert result == ODD_VALUES
    assert [type(value) for value in result] == [type(v) for v in ODD_VALUES]
    assert str(result[4]) == "1.10"
    assert result[3].utcoffset() == timedelta(hours=2)
    text = (tmp_path / "odd.json").read_text(encoding="utf-8")
    for tag in ("$bytes", "$tuple", "$uuid", "$datetime", "$decimal", "$dict"):
        assert f'"{tag}"' in text


def test_a_history_writes_the_same_bytes_every_time(
    odd_journal: str, tmp_path: Path
) -> None:
    write_history(tmp_path / "a.json", export_history(odd_journal, "odd"))
    write_history(tmp_path / "b.json", load_history(tmp_path / "a.json"))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_not_a_number_survives_a_history_document() -> None:
    run = WorkflowRun.start("nan", "tests.replay.echoes", [math.nan], at=T0)
    run.schedule_step(1, "keep", [math.nan], at=T0)
    run.complete_step(1, math.nan, at=T0)
    history = history_of(run)
    document = json.loads(json.dumps(history.to_document(), allow_nan=False))
    (loaded,) = History.from_document(document).events[-1:]
    assert math.isnan(loaded.result)  # type: ignore[attr-defined]


def test_exporting_a_run_the_journal_does_not_hold_raises_unknown_run_error(
    odd_journal: str,
) -> None:
    with pytest.raises(UnknownRunError, match="'ghost'"):
        export_history(odd_journal, "ghost")
    assert [h.workflow_id for h in export_histories(odd_journal)] == ["odd"]


def _document(**changes: Any) -> dict[str, Any]:
    run = WorkflowRun.start("doc", "tests.replay.echoes", [1], at=T0)
    run.schedule_step(1, "keep", [1], at=T0)
    run.complete_step(1, {"ok": True}, at=T0)
    document = history_of(run).to_document()
    for path, value in changes.items():
        target: Any = document
        *steps, last = path.split("__")
        for step in steps:
            target = target[int(step) if step.isdigit() else step]
        target[int(last) if last.isdigit() else last] = value
    return document


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"format": "chronik-history/2"}, "its format is 'chronik-history/2'"),
        ({"workflow_id": 7}, "workflow_id 7 is not a str"),
        ({"events": []}, "'events' is not a non-empty list"),
        ({"events__1__version": 3}, "events[1] has version 3, not 2"),
        ({"events__1__state": [1]}, "events[1].state is not a JSON object"),
        (
            {"events__1__type": "journal:MsgpackTranscoder"},
            "events[1] has type 'journal:MsgpackTranscoder', not an event of a "
            "workflow run",
        ),
        (
            {"events__2__state__result": {"$uuid": "not-a-uuid"}},
            "events[2].state['result'] has {'$uuid': 'not-a-uuid'}, which does "
            "not decode (ValueError('badly formed hexadecimal UUID string'))",
        ),
        (
            {"events__0__type": "aggregates:StepCompleted", "events__0__state": {}},
            "its first event is not a Started",
        ),
    ],
    ids=[
        "format",
        "workflow id",
        "no events",
        "version gap",
        "state",
        "type",
        "tag",
        "first event",
    ],
)
def test_a_bad_history_document_is_refused_saying_what_is_wrong(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(HistoryFormatError) as raised:
        History.from_document(_document(**changes), source="the test document")
    assert raised.value.problem == problem
    assert str(raised.value) == (
        f"the test document is not a chronik history: {problem}; export one with "
        "export_history() and write_history() (format 'chronik-history/1')"
    )


def test_a_file_that_is_not_json_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(HistoryFormatError, match=r"history file '.*notes\.json'"):
        load_history(path)


def test_a_history_format_error_pickles_with_its_data() -> None:
    error = HistoryFormatError("history file 'x.json'", "its format is None")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.problem, str(copy)) == (
        error.source,
        error.problem,
        str(error),
    )
