"""User types in workflows: a dataclass argument, an attrs step result, a pydantic
signal payload, an enum and a set are the same values, of the same types, live,
after a reopen (replay) and to the Replayer, Audit and history files."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path
from typing import Any

import attrs
import pydantic
import pytest

from actors import (
    ActorSystem,
    Audit,
    Converter,
    ManualClock,
    Replayer,
    WorkflowContext,
    activity,
    converter_for,
    export_history,
    load_history,
    workflow,
    write_history,
)
from journal import (
    ConverterEncodeError,
    DuplicateConverterError,
    UnencodableValueError,
    UnknownTypeNameError,
    UnsupportedTypeError,
)
from tests.actors._contract_faults import wait_until


class Status(enum.Enum):
    PAID = "paid"
    SHIPPED = "shipped"


@dataclasses.dataclass(frozen=True)
class Order:
    id: str
    skus: tuple[str, ...]
    status: Status


@attrs.frozen
class Shipment:
    order_id: str
    parcels: frozenset[int]
    status: Status


class Approval(pydantic.BaseModel):
    by: str
    ok: bool
    reasons: list[str] = []


class Opaque:
    """No supported kind: it needs a converter of its own."""

    def __init__(self, token: str) -> None:
        self.token = token


class BrokenConverter(Converter[Opaque]):
    type = Opaque
    name = "tests.Opaque"

    def encode(self, value: Opaque) -> Any:
        raise RuntimeError("cannot encode tokens")

    def decode(self, data: Any) -> Opaque:
        return Opaque(data)


CONVERTERS = [Status, Order, Shipment, Approval]
seen: list[dict[str, Any]] = []  # what the workflow saw, in each of its lives
step_calls: list[str] = []


@activity
def ship(order: Order) -> Shipment:
    step_calls.append(order.id)
    return Shipment(order.id, frozenset({1, 2}), Status.SHIPPED)


@workflow(name="tests.user-types.fulfil")
async def fulfil(ctx: WorkflowContext, order: Order, labels: set[str]) -> Any:
    shipment = await ctx.call(ship, order)
    approval = await ctx.receive("approval")
    values = {
        "order": order,
        "labels": labels,
        "shipment": shipment,
        "approval": approval,
    }
    seen.append(values)
    await ctx.receive("finish")
    return {**values, "status": shipment.status}


@pytest.fixture(autouse=True)
def _reset() -> None:
    seen.clear()
    step_calls.clear()


def open_system(path: str, **kwargs: Any) -> ActorSystem:
    return ActorSystem.open(path, clock=ManualClock(), **kwargs)


def assert_same(replayed: dict[str, Any], live: dict[str, Any]) -> None:
    assert replayed == live
    for key, value in live.items():
        assert type(replayed[key]) is type(value), key
    assert type(replayed["order"].skus) is tuple
    assert replayed["order"].status is Status.PAID
    assert type(replayed["shipment"].parcels) is frozenset


ORDER = Order("o-1", ("a", "b"), Status.PAID)
APPROVAL = Approval(by="ada", ok=True, reasons=["fits"])


def start_and_close(path: str) -> None:
    with open_system(path, converters=CONVERTERS) as system:
        ref = system.spawn(fulfil, ORDER, {"fragile", "gift"}, id="fulfil-1")
        ref.send("approval", APPROVAL)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(seen) == 1, "the run did not reach its last receive"


def test_user_types_are_the_same_values_live_and_after_a_reopen(
    journal_location: str,
) -> None:
    start_and_close(journal_location)
    (live,) = seen
    assert live["order"] is not ORDER  # normalised: what a replay sees
    assert_same(live, {**live})
    with open_system(journal_location, converters=CONVERTERS) as system:
        ref = system.ref("fulfil-1")
        ref.send("finish", None)
        result = ref.result(timeout=10)
    assert step_calls == ["o-1"]  # the step ran once; the reopen replayed it
    assert len(seen) == 2
    assert_same(seen[1], live)
    assert result == {**live, "status": Status.SHIPPED}
    assert result["status"] is Status.SHIPPED
    assert type(result["labels"]) is set
    assert type(result["approval"]) is Approval


def test_the_replayer_audit_and_history_files_read_user_types(
    journal_location: str, tmp_path: Path
) -> None:
    start_and_close(journal_location)
    with open_system(journal_location, converters=CONVERTERS) as system:
        system.ref("fulfil-1").send("finish", None)
        result = system.ref("fulfil-1").result(timeout=10)
        assert Replayer(converters=CONVERTERS).replay_journal(system).ok
    report = Replayer(converters=CONVERTERS).replay_journal(journal_location)
    assert report.ok, report.summary()
    audit = Audit(journal_location, converters=CONVERTERS)
    assert audit.state("fulfil-1").result == result
    assert audit.verify().ok
    exported = list(audit.export())
    assert {"$type": ["tests.actors.test_user_types.Status", "shipped"]} in [
        document["state"].get("result", {}).get("status") for document in exported
    ]
    history = export_history(journal_location, "fulfil-1", converters=CONVERTERS)
    write_history(tmp_path / "h.json", history)
    loaded = load_history(tmp_path / "h.json", converters=CONVERTERS)
    assert loaded == history
    assert Replayer(converters=CONVERTERS).replay(loaded).ok
    started = loaded.events[0]
    assert type(started.args[0]) is Order  # type: ignore[attr-defined]
    assert type(started.args[1]) is set  # type: ignore[attr-defined]


def test_a_reader_without_the_converters_names_the_missing_type(
    journal_location: str,
) -> None:
    start_and_close(journal_location)
    report = Replayer().replay_journal(journal_location)
    assert not report.ok
    error = report.results[0].error
    assert error is not None
    cause = error if isinstance(error, UnknownTypeNameError) else error.__cause__
    assert isinstance(cause, UnknownTypeNameError)  # the mapper may wrap it
    assert "'tests.actors.test_user_types." in str(error)
    assert "converters=" in str(error)
    with pytest.raises(Exception, match="no converter is registered"):
        open_system(journal_location).close()  # resuming the run needs its types


def test_a_renamed_type_reads_under_its_old_name(
    journal_location: str,
) -> None:
    old = converter_for(Status, name="shop.models.Status")
    with open_system(journal_location, converters=[old]) as system:
        assert system.spawn(echo, Status.PAID, id="echo-1").result(timeout=5) is (
            Status.PAID
        )
    report = Replayer(converters=[old]).replay_journal(journal_location)
    assert report.ok, report.summary()


@workflow(name="tests.user-types.echo")
async def echo(ctx: WorkflowContext, value: Any) -> Any:
    return value


# -- bad input: a clear error and nothing written ----------------------------------


def stream(system: ActorSystem, workflow_id: str) -> list[Any]:
    """The stored events of one stream, read through ``system``'s recorder."""
    return list(system._app.recorder.select_events(workflow_id))


def test_an_unregistered_user_type_argument_says_how_and_writes_nothing(
    journal_location: str,
) -> None:
    with open_system(journal_location, converters=[Status]) as system:
        with pytest.raises(UnencodableValueError) as raised:
            system.spawn(echo, [ORDER], id="echo-order")
        message = str(raised.value)
        assert "tests.actors.test_user_types.Order at value[0][0]" in message
        assert (
            "ActorSystem.open(..., converters=[tests.actors.test_user_types.Order])"
            in message
        )
    with open_system(journal_location, converters=[Status]) as system:
        assert stream(system, "echo-order") == []


def test_a_converter_whose_encode_raises_is_named_and_nothing_is_written(
    journal_location: str,
) -> None:
    with open_system(journal_location, converters=[BrokenConverter()]) as system:
        ref = system.spawn(wait, id="wait-1")
        # Its actor records that it waits, in its own time: wait for that first.
        wait_until(lambda: len(stream(system, "wait-1")) == 2)
        with pytest.raises(ConverterEncodeError, match=r"'tests\.Opaque' raised"):
            ref.send("go", {"token": Opaque("t")})
        version = len(stream(system, "wait-1"))
        with pytest.raises(ConverterEncodeError):
            system.spawn(echo, Opaque("t"), id="echo-opaque")
        assert len(stream(system, "wait-1")) == version
        ref.send("go", "fine")
        assert ref.result(timeout=5) == "fine"
    with open_system(journal_location, converters=[BrokenConverter()]) as system:
        assert stream(system, "echo-opaque") == []


@workflow(name="tests.user-types.wait")
async def wait(ctx: WorkflowContext) -> Any:
    return await ctx.receive("go")


@pytest.mark.parametrize(
    ("converters", "error"),
    [
        ([Opaque], UnsupportedTypeError),
        (
            [converter_for(Status, name="x"), converter_for(Order, name="x")],
            DuplicateConverterError,
        ),
    ],
)
def test_bad_converters_refuse_to_open_and_create_no_journal(
    path: str, converters: list[Any], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        open_system(path, converters=converters)
    assert "converters=[...]" in str(raised.value)
    assert not Path(path).exists()
