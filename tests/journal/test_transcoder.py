"""The msgpack transcoder: every plain value comes back equal and of the same types."""

from __future__ import annotations

import enum
import math
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import msgpack
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from eventsourcing.tests.persistence import (
    CustomType1,
    CustomType1AsDict,
    CustomType2,
    CustomType2AsDict,
    Mydict,
    MyInt,
    MyList,
    MyStr,
)
from hypothesis import given
from hypothesis import strategies as st

from journal import MsgpackTranscoder, UnencodableValueError


def assert_exactly_equal(decoded: Any, original: Any, where: str = "value") -> None:
    """Equal, and of exactly the same type all the way down: ``==`` alone lets a
    list pass for a tuple, True for 1, 0.0 for -0.0 and two aware datetimes of
    different offsets for each other."""
    assert type(decoded) is type(original), (
        f"{where}: decoded a {type(decoded).__name__} {decoded!r}, "
        f"encoded a {type(original).__name__} {original!r}"
    )
    if isinstance(original, dict):
        assert len(decoded) == len(original), f"{where}: {decoded!r} != {original!r}"
        pairs = zip(decoded.items(), original.items(), strict=True)
        for (decoded_key, decoded_item), (key, item) in pairs:
            assert_exactly_equal(decoded_key, key, f"{where} (a key {key!r})")
            assert_exactly_equal(decoded_item, item, f"{where}[{key!r}]")
    elif isinstance(original, list | tuple):
        assert len(decoded) == len(original), f"{where}: {decoded!r} != {original!r}"
        for index, (decoded_item, item) in enumerate(
            zip(decoded, original, strict=True)
        ):
            assert_exactly_equal(decoded_item, item, f"{where}[{index}]")
    elif isinstance(original, float):
        assert decoded == original or (math.isnan(decoded) and math.isnan(original))
        assert math.copysign(1.0, decoded) == math.copysign(1.0, original), where
    elif isinstance(original, datetime):
        assert (decoded, decoded.utcoffset()) == (original, original.utcoffset()), where
    elif isinstance(original, Decimal):
        assert decoded.as_tuple() == original.as_tuple(), where
    else:
        assert decoded == original, f"{where}: {decoded!r} != {original!r}"


def round_trip(value: Any, transcoder: MsgpackTranscoder | None = None) -> Any:
    transcoder = transcoder or MsgpackTranscoder()
    return transcoder.decode(transcoder.encode(value))


# -- strategies -----------------------------------------------------------------------

# msgpack holds ints in [-2**63, 2**64) itself and the rest as big-int ext values of
# (bit_length + 8) // 8 bytes, so the interesting ints sit next to powers of two.
ints_near_powers_of_two = st.builds(
    lambda bits, sign, nudge: sign * 2**bits + nudge,
    st.integers(0, 300),
    st.sampled_from((1, -1)),
    st.integers(-2, 2),
)
ints = st.integers() | st.integers(-(2**600), 2**600) | ints_near_powers_of_two
fixed_offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59, seconds=59),
        max_value=timedelta(hours=23, minutes=59, seconds=59),
    ),
)
# Fixed offsets only: a ZoneInfo zone comes back as its offset at that instant (the
# ISO text has no zone name), and PEP 495 makes such datetimes unequal in a fold.
datetimes = st.datetimes(timezones=st.none() | st.just(UTC) | fixed_offsets)
scalars = (
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | datetimes
)
hashable_scalars = st.none() | st.booleans() | ints | st.text(max_size=8)
tuple_keys = st.recursive(
    st.lists(hashable_scalars, max_size=3).map(tuple),
    lambda inner: st.lists(hashable_scalars | inner, max_size=3).map(tuple),
    max_leaves=6,
)
keys = st.text() | ints | tuple_keys
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=20,
)


# -- the helper itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("decoded", "original"),
    [
        ([1, 2], (1, 2)),
        ((1, [2]), (1, (2,))),
        (True, 1),
        (0.0, -0.0),
        (b"a", "a"),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        (
            datetime(2024, 1, 1, 12, tzinfo=UTC),
            datetime(2024, 1, 1, 13, tzinfo=timezone(timedelta(hours=1))),
        ),
        (Decimal("1.0"), Decimal("1.00")),
    ],
)
def test_exact_equality_tells_apart_values_that_compare_equal(
    decoded: Any, original: Any
) -> None:
    with pytest.raises(AssertionError):
        assert_exactly_equal(decoded, original)


# -- round trips -----------------------------------------------------------------------


@given(values)
def test_any_plain_value_survives_a_round_trip_with_its_exact_types(value: Any) -> None:
    decoded = round_trip(value)
    assert decoded == value
    assert_exactly_equal(decoded, value)


@given(ints)
def test_an_int_of_any_size_survives_a_round_trip_as_an_int(value: int) -> None:
    assert_exactly_equal(round_trip(value), value)


@pytest.mark.parametrize(
    "value",
    [
        2**63 - 1,
        2**63,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        -(2**64),
        2**71 - 1,
        2**71,
        -(2**71),
        -(2**71) - 1,
        10**400,
        -(10**400),
    ],
)
def test_an_int_at_a_msgpack_boundary_survives_a_round_trip(value: int) -> None:
    assert_exactly_equal(round_trip(value), value)


def test_tuple_survives_a_round_trip_as_a_tuple() -> None:
    value = (1, (2, [3, (4,)]), ())
    assert_exactly_equal(round_trip(value), value)


def test_list_survives_a_round_trip_as_a_list() -> None:
    value = [1, [2, (3, [4])], []]
    assert_exactly_equal(round_trip(value), value)


def test_bytes_survive_a_round_trip_as_bytes_and_str_as_str() -> None:
    value = [b"", b"\x00\xff", "", "\x00 é \U0001f600"]
    assert_exactly_equal(round_trip(value), value)


def test_dict_keys_of_str_int_and_tuple_survive_a_round_trip() -> None:
    value = {
        "1": "str",
        1: "int",
        (1,): "tuple",
        (1, ("a", None)): "nested",
        2**70: "big",
    }
    assert_exactly_equal(round_trip(value), value)


def test_nan_survives_a_round_trip_as_nan() -> None:
    decoded = round_trip([math.nan, {"x": (-math.nan,)}])
    assert type(decoded[0]) is float
    assert math.isnan(decoded[0])
    assert math.isnan(decoded[1]["x"][0])


def test_naive_and_aware_datetimes_keep_their_offsets() -> None:
    value = [
        datetime(2024, 3, 31, 1, 30),
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-23, seconds=-1))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5))),
    ]
    assert_exactly_equal(round_trip(value), value)


def test_subclasses_of_plain_types_come_back_as_their_base_type() -> None:
    class Colour(enum.IntEnum):
        RED = 1

    value = [MyInt(3), MyStr("s"), MyList([1]), Mydict({"k": MyList([2])}), Colour.RED]
    assert_exactly_equal(round_trip(value), [3, "s", [1], {"k": [2]}, 1])


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**70, -(10**30)])
def test_an_int_subclass_beyond_64_bits_comes_back_as_a_big_int(value: int) -> None:
    # Regression: msgpack calls default once per value, so int(obj) of a big int
    # subclass was once refused instead of reaching the big-int ext type.
    assert_exactly_equal(round_trip(MyInt(value)), value)


# -- custom transcodings --------------------------------------------------------------


def custom_transcoder() -> MsgpackTranscoder:
    transcoder = MsgpackTranscoder()
    transcoder.register(CustomType1AsDict())
    transcoder.register(CustomType2AsDict())
    return transcoder


def test_a_registered_transcoding_nested_in_another_survives_a_round_trip() -> None:
    inner = CustomType1(uuid4())
    value = {
        "one": inner,
        "two": [CustomType2(inner), (CustomType2(CustomType1(uuid4())),)],
    }
    assert round_trip(value, custom_transcoder()) == value


def test_decoding_a_transcoding_that_is_not_registered_raises_type_error() -> None:
    data = custom_transcoder().encode({"x": [CustomType1(uuid4())]})
    with pytest.raises(TypeError, match="custom_type1_as_dict") as raised:
        MsgpackTranscoder().decode(data)
    assert isinstance(raised.value, TranscodingNotRegisteredError)


# -- unencodable values ---------------------------------------------------------------


class NotPlain:
    pass


@pytest.mark.parametrize(
    ("value", "type_name", "location"),
    [
        (object(), "object", "value"),
        ([{"a": object()}], "object", "value[0]['a']"),
        # Sets encode now (built in): complex and range stand for the unencodable.
        ([{"a": [1, complex(2, 3)]}], "complex", "value[0]['a'][1]"),
        ({"k": (1, range(0))}, "range", "value['k'][1]"),
        ([1, {"x": NotPlain()}], f"{__name__}.NotPlain", "value[1]['x']"),
        (
            [CustomType1(uuid4())],
            "eventsourcing.tests.persistence.CustomType1",
            "value[0]",
        ),
    ],
)
def test_an_unencodable_value_is_refused_with_its_type_and_where_it_is(
    value: Any, type_name: str, location: str
) -> None:
    with pytest.raises(UnencodableValueError) as raised:
        MsgpackTranscoder().encode(value)
    error = raised.value
    assert isinstance(error, TypeError)
    assert (error.type_name, error.location) == (type_name, location)
    assert f"type {type_name} at {location}" in str(error)


def test_an_unencodable_dict_key_is_named_as_a_key() -> None:
    with pytest.raises(UnencodableValueError) as raised:
        MsgpackTranscoder().encode({"ok": 1, "nested": {NotPlain(): 2}})
    assert raised.value.type_name == f"{__name__}.NotPlain"
    assert raised.value.location.startswith("value['nested'] (a key ")


# -- through an application -----------------------------------------------------------


class Basket(Aggregate):
    @event("Created")
    def __init__(self, items: Any) -> None:
        self.items = items


class CustomApplication(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(CustomType1AsDict())
        transcoder.register(CustomType2AsDict())


@pytest.fixture
def lmdb_path() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="chronik-transcoder-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def journal_env(path: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path, "LMDB_SYNC": "no"}


def test_saving_an_aggregate_with_an_unencodable_attribute_writes_nothing(
    lmdb_path: str,
) -> None:
    app: Application[UUID] = Application(env=journal_env(lmdb_path))
    try:
        with pytest.raises(UnencodableValueError) as raised:
            app.save(Basket(items=[complex(1, 2)]))
        assert (raised.value.type_name, raised.value.location) == (
            "complex",
            "value['items'][0]",
        )
        assert app.recorder.max_notification_id() is None
    finally:
        app.close()


def test_an_application_reloads_aggregates_holding_custom_and_plain_values(
    lmdb_path: str,
) -> None:
    items = {
        "custom": CustomType2(CustomType1(uuid4())),
        "plain": (2**80, Decimal("-0.10"), b"\x00", [None, (True,)]),
    }
    app = CustomApplication(env=journal_env(lmdb_path))
    try:
        basket = Basket(items=items)
        app.save(basket)
    finally:
        app.close()
    reopened = CustomApplication(env=journal_env(lmdb_path))
    try:
        reloaded: Basket = reopened.repository.get(basket.id)
        assert reloaded.items == items
        assert_exactly_equal(reloaded.items["plain"], items["plain"])
    finally:
        reopened.close()


@given(
    st.datetimes(timezones=st.none() | st.timezones()),
    st.datetimes(timezones=st.just(UTC)),
)
def test_datetimes_take_the_fast_path_to_the_same_bytes_as_their_transcoding(
    naive_or_zoned: datetime, utc: datetime
) -> None:
    """Every event's timestamp is a datetime, so the transcoder packs it without
    the generic transcoding's second pass; the bytes stay the stored format."""
    transcoder = MsgpackTranscoder()
    value = {"at": naive_or_zoned, "times": [utc, naive_or_zoned]}

    def generic(obj: Any) -> Any:
        transcoding = transcoder.types[type(obj)]
        payload = msgpack.packb([transcoding.name, transcoding.encode(obj)])
        return msgpack.ExtType(1, payload)

    expected = msgpack.packb(
        value, default=generic, use_bin_type=True, strict_types=True, datetime=False
    )
    assert transcoder.encode(value) == expected


def test_packers_kept_between_values_pack_each_value_as_a_fresh_one_would() -> None:
    """The transcoder keeps each thread's packers between values: after a value
    that failed half-way, a large one and nested ext types, from many threads at
    once, every value's bytes are those ``msgpack.packb`` gives alone."""
    import msgpack

    transcoder = MsgpackTranscoder()
    when = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    values = [
        {"timestamp": when, "seq": n, "result": {"i": n, "t": (n, {n})}}
        for n in range(50)
    ]
    values.append({"big": b"x" * 200_000, "when": when})  # not kept afterwards
    expected = [transcoder.encode(v) for v in values]

    def fresh(value: Any) -> bytes:
        packed: bytes = msgpack.packb(
            value,
            default=transcoder._default,
            use_bin_type=True,
            strict_types=True,
            datetime=False,
        )
        return packed

    assert expected == [fresh(v) for v in values]

    class NotStorable:
        pass

    def encode_all(_: int) -> list[bytes]:
        with pytest.raises(UnencodableValueError):
            transcoder.encode({"a": [1, 2, NotStorable()], "when": when})
        return [transcoder.encode(v) for v in values]

    with ThreadPoolExecutor(8) as pool:
        for got in pool.map(encode_all, range(32)):
            assert got == expected
    assert [transcoder.decode(b) for b in expected] == values
