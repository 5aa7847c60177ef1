"""User types through the msgpack transcoder: converters derived from a class or
written by hand, sets built in, and clear errors for what cannot be stored."""

from __future__ import annotations

import dataclasses
import enum
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs
import pydantic
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from journal import (
    Converter,
    ConverterDecodeError,
    ConverterEncodeError,
    DuplicateConverterError,
    MsgpackTranscoder,
    UnencodableValueError,
    UnknownTypeNameError,
    UnsupportedTypeError,
    converter_for,
)
from tests.journal.test_transcoder import assert_exactly_equal

# -- user types -------------------------------------------------------------------


class Status(enum.Enum):
    OPEN = "open"
    SHIPPED = "shipped"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


@dataclasses.dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclasses.dataclass
class Order:
    id: str
    lines: list[Line]
    status: Status
    tags: set[str] = dataclasses.field(default_factory=set)
    total: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        self.total = sum(line.quantity for line in self.lines)


@attrs.frozen
class Shipment:
    order: Order
    carrier: str
    _secret: str = "x"  # an attrs private attribute: keyword "secret"


class Customer(pydantic.BaseModel):
    name: str
    priority: Priority
    orders: tuple[Order, ...] = ()
    notes: dict[str, Any] = {}


class Money:
    """A class of no supported kind: it needs a converter of its own."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (
            other.cents,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.cents, self.currency))


class MoneyConverter(Converter[Money]):
    type = Money
    name = "shop.Money"

    def encode(self, value: Money) -> Any:
        return [value.cents, value.currency]

    def decode(self, data: Any) -> Money:
        return Money(*data)


ALL = [Status, Priority, Perm, Line, Order, Shipment, Customer, MoneyConverter()]


def round_trip(value: Any, transcoder: MsgpackTranscoder) -> Any:
    return transcoder.decode(transcoder.encode(value))


def an_order() -> Order:
    return Order("o-1", [Line("a", 2), Line("b", 3)], Status.OPEN, {"gift", "rush"})


# -- round trips ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        set(),
        {1, 2, 3},
        {"b", "a"},
        frozenset({(1, "a"), (2, "b")}),
        {1, "mixed", None, (2,)},
        {frozenset({1}): {2}},
        [{1}, (frozenset(),)],
    ],
)
def test_sets_and_frozensets_round_trip_without_registration(value: Any) -> None:
    assert_exactly_equal_sets(round_trip(value, MsgpackTranscoder()), value)


def assert_exactly_equal_sets(decoded: Any, original: Any) -> None:
    assert type(decoded) is type(original)
    assert decoded == original
    if isinstance(original, list | tuple):
        for left, right in zip(decoded, original, strict=True):
            assert_exactly_equal_sets(left, right)


def test_equal_sets_are_stored_as_the_same_bytes() -> None:
    transcoder = MsgpackTranscoder()
    assert transcoder.encode({"b", "a", "c"}) == transcoder.encode({"c", "a", "b"})


@pytest.mark.parametrize(
    "value",
    [Status.SHIPPED, Priority.HIGH, Perm.READ | Perm.WRITE, Perm(0)],
)
def test_an_enum_member_round_trips_as_the_same_member(value: enum.Enum) -> None:
    assert round_trip(value, MsgpackTranscoder(ALL)) is value


def test_a_dataclass_with_nested_user_types_and_containers_round_trips() -> None:
    order = an_order()
    decoded = round_trip(
        {"order": order, "many": (order, [order])}, MsgpackTranscoder(ALL)
    )
    assert decoded == {"order": order, "many": (order, [order])}
    assert type(decoded["order"]) is Order
    assert type(decoded["order"].lines[0]) is Line
    assert decoded["order"].status is Status.OPEN
    assert type(decoded["order"].tags) is set
    assert decoded["order"].total == 5
    assert type(decoded["many"]) is tuple


def test_an_attrs_class_round_trips_with_its_private_attribute() -> None:
    shipment = Shipment(an_order(), "ups", "s3cret")
    decoded = round_trip(shipment, MsgpackTranscoder(ALL))
    assert decoded == shipment
    assert type(decoded) is Shipment
    assert type(decoded.order) is Order


def test_a_pydantic_model_round_trips_with_nested_dataclasses_and_enums() -> None:
    customer = Customer(
        name="Ada",
        priority=Priority.HIGH,
        orders=(an_order(),),
        notes={"since": Decimal("1.5"), "id": UUID(int=7)},
    )
    decoded = round_trip(customer, MsgpackTranscoder(ALL))
    assert decoded == customer
    assert type(decoded) is Customer
    assert decoded.priority is Priority.HIGH
    assert type(decoded.orders) is tuple
    assert type(decoded.orders[0]) is Order


def test_a_hand_written_converter_round_trips_its_type() -> None:
    value = {"price": Money(250, "EUR"), "set": {Money(1, "USD")}}
    decoded = round_trip(value, MsgpackTranscoder(ALL))
    assert decoded == value
    assert type(decoded["price"]) is Money


def test_plain_values_still_come_back_with_their_exact_types() -> None:
    value = {"t": (1, [2, (3,)]), "big": 2**80, "d": Decimal("-0.10"), "b": b"\x00"}
    assert_exactly_equal(round_trip(value, MsgpackTranscoder(ALL)), value)


def test_a_type_is_stored_under_its_module_and_qualname_by_default() -> None:
    assert converter_for(Order).name == f"{__name__}.Order"
    assert f"{__name__}.Order".encode() in MsgpackTranscoder(ALL).encode(an_order())


def test_a_moved_class_reads_data_stored_under_its_old_name() -> None:
    old = MsgpackTranscoder([converter_for(Status, name="old.module.Status")])
    data = old.encode([Status.SHIPPED])
    renamed = MsgpackTranscoder([converter_for(Status, name="old.module.Status")])
    assert renamed.decode(data) == [Status.SHIPPED]
    with pytest.raises(UnknownTypeNameError, match=r"'old\.module\.Status'"):
        MsgpackTranscoder([Status]).decode(data)


def test_a_field_the_class_gained_with_a_default_reads_old_data() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    old = MsgpackTranscoder([converter_for(Point, name="Point")]).encode(Point(1))

    @dataclasses.dataclass
    class Point2:
        x: int
        y: int = 0

    decoded = MsgpackTranscoder([converter_for(Point2, name="Point")]).decode(old)
    assert decoded == Point2(1, 0)


def test_passing_a_class_twice_counts_once() -> None:
    transcoder = MsgpackTranscoder([Order, Line, Status, Order])
    assert [c.name for c in transcoder.converters].count(f"{__name__}.Order") == 1


def test_converters_can_be_added_to_a_transcoder_later() -> None:
    transcoder = MsgpackTranscoder([Status])
    transcoder.add_converters([Line])
    assert round_trip([Status.OPEN, Line("a", 1)], transcoder) == [
        Status.OPEN,
        Line("a", 1),
    ]


# -- bad converters -----------------------------------------------------------------


class NotSupported:
    pass


def test_a_class_of_no_supported_kind_is_refused_with_the_fix() -> None:
    with pytest.raises(UnsupportedTypeError) as raised:
        MsgpackTranscoder([NotSupported])
    assert isinstance(raised.value, TypeError)
    message = str(raised.value)
    assert f"{__name__}.NotSupported" in message
    assert "dataclass" in message
    assert "journal.Converter" in message


@pytest.mark.parametrize("bad", [42, "shop.Order", Order("x", [], Status.OPEN)])
def test_something_that_is_neither_class_nor_converter_is_refused(bad: Any) -> None:
    with pytest.raises(UnsupportedTypeError, match="neither a class"):
        MsgpackTranscoder([bad])


def test_a_converter_without_a_name_is_refused() -> None:
    class Nameless(MoneyConverter):
        name = ""

    with pytest.raises(UnsupportedTypeError, match="stable, non-empty str"):
        MsgpackTranscoder([Nameless()])


def test_two_converters_with_one_name_are_refused_and_neither_registered() -> None:
    transcoder = MsgpackTranscoder([Status])
    with pytest.raises(DuplicateConverterError) as raised:
        transcoder.add_converters(
            [converter_for(Line, name="same"), converter_for(Order, name="same")]
        )
    assert isinstance(raised.value, ValueError)
    assert "share the name 'same'" in str(raised.value)
    assert Line not in transcoder.types
    assert [c.type for c in transcoder.converters] == [Status]


def test_a_converter_may_not_take_a_built_in_name() -> None:
    with pytest.raises(DuplicateConverterError, match="built-in"):
        MsgpackTranscoder([converter_for(Status, name="uuid_hex")])


def test_two_names_for_one_type_are_refused() -> None:
    with pytest.raises(DuplicateConverterError, match="both convert"):
        MsgpackTranscoder([Status, converter_for(Status, name="other")])


def test_a_bare_class_instead_of_a_list_is_refused() -> None:
    with pytest.raises(UnsupportedTypeError, match="not a list of converters"):
        MsgpackTranscoder(Status)  # type: ignore[arg-type]


# -- bad values ---------------------------------------------------------------------


def test_a_value_of_an_unregistered_class_says_how_to_register_it() -> None:
    with pytest.raises(UnencodableValueError) as raised:
        MsgpackTranscoder([Status]).encode({"o": [an_order()]})
    error = raised.value
    assert isinstance(error, TypeError)
    assert (error.type_name, error.location) == (f"{__name__}.Order", "value['o'][0]")
    assert f"ActorSystem.open(..., converters=[{__name__}.Order])" in str(error)


def test_an_unregistered_class_in_a_field_is_named_with_its_field() -> None:
    transcoder = MsgpackTranscoder([Order, Status])  # not Line
    with pytest.raises(UnencodableValueError) as raised:
        transcoder.encode([an_order()])
    assert not isinstance(raised.value, ConverterEncodeError)
    assert raised.value.type_name == f"{__name__}.Line"
    assert raised.value.location == "value[0].lines[0]"


class Raising(Converter[Money]):
    type = Money
    name = "raising"

    def encode(self, value: Money) -> Any:
        raise ValueError("no currency")

    def decode(self, data: Any) -> Money:
        raise AssertionError


class ReturnsObject(Converter[Money]):
    type = Money
    name = "returns-object"

    def encode(self, value: Money) -> Any:
        return {"cents": value.cents, "how": object()}

    def decode(self, data: Any) -> Money:
        raise AssertionError


def test_a_converter_whose_encode_raises_is_named_with_the_error() -> None:
    with pytest.raises(ConverterEncodeError) as raised:
        MsgpackTranscoder([Raising()]).encode({"price": Money(1, "X")})
    error = raised.value
    assert isinstance(error, UnencodableValueError)
    assert isinstance(error, TypeError)
    assert (error.converter_name, error.location) == ("raising", "value['price']")
    assert "'raising' raised ValueError('no currency')" in str(error)
    assert "fix its encode" in str(error)


def test_a_converter_returning_what_msgpack_cannot_store_is_named() -> None:
    with pytest.raises(ConverterEncodeError) as raised:
        MsgpackTranscoder([ReturnsObject()]).encode([Money(1, "X")])
    error = raised.value
    assert (error.converter_name, error.type_name) == ("returns-object", "object")
    assert error.location == "value[0]['how']"
    assert "'returns-object' returned data holding a object" in str(error)


def test_decoding_an_unregistered_name_names_it_and_says_to_pass_the_converter() -> (
    None
):
    data = MsgpackTranscoder(ALL).encode({"x": [Status.OPEN]})
    with pytest.raises(UnknownTypeNameError) as raised:
        MsgpackTranscoder().decode(data)
    error = raised.value
    assert isinstance(error, TranscodingNotRegisteredError)
    assert isinstance(error, TypeError)
    assert error.name == f"{__name__}.Status"
    assert f"{__name__}.Status" in str(error)
    assert "converters=" in str(error)


def test_a_converter_whose_decode_fails_is_named() -> None:
    data = MsgpackTranscoder([converter_for(Status, name="s")]).encode(Status.OPEN)

    class Renumbered(enum.Enum):
        ONE = 1

    with pytest.raises(ConverterDecodeError, match="'s' cannot decode"):
        MsgpackTranscoder([converter_for(Renumbered, name="s")]).decode(data)


@pytest.mark.parametrize(
    "error",
    [
        UnencodableValueError("t", "value"),
        ConverterEncodeError("t", "value", converter_name="n", problem="raised X"),
        UnknownTypeNameError("n"),
        ConverterDecodeError("n", "[1]", "ValueError()"),
        UnsupportedTypeError("x", "is not a class"),
        DuplicateConverterError("n", "a", "b", "share the name 'n'"),
    ],
)
def test_the_errors_pickle_with_their_message(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


# -- through an application -----------------------------------------------------------


class Cart(Aggregate):
    @event("Created")
    def __init__(self, content: Any) -> None:
        self.content = content


class ShopApplication(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        assert isinstance(transcoder, MsgpackTranscoder)
        transcoder.add_converters(ALL)


@pytest.fixture
def lmdb_path() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="chronik-converters-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def journal_env(path: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path, "LMDB_SYNC": "no"}


def test_an_application_reloads_user_types_it_registered(lmdb_path: str) -> None:
    content = {"order": an_order(), "price": Money(5, "EUR"), "seen": frozenset({1})}
    app = ShopApplication(env=journal_env(lmdb_path))
    try:
        cart = Cart(content)
        app.save(cart)
    finally:
        app.close()
    reopened = ShopApplication(env=journal_env(lmdb_path))
    try:
        assert reopened.repository.get(cart.id).content == content
    finally:
        reopened.close()


def test_saving_a_value_of_an_unregistered_class_writes_nothing(
    lmdb_path: str,
) -> None:
    app: Application[UUID] = Application(env=journal_env(lmdb_path))
    try:
        with pytest.raises(UnencodableValueError, match="converters="):
            app.save(Cart([an_order()]))
        assert app.recorder.max_notification_id() is None
    finally:
        app.close()
