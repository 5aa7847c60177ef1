"""The one base of chronik's errors derives them from their declared fields."""

from __future__ import annotations

import inspect
import pickle
import re
from typing import ClassVar

import pytest

from chronik_errors import ChronikError


class LeaseError(ChronikError, RuntimeError):
    workflow_id: str
    holder: str
    ttl: float = 30.0
    template = "run {workflow_id!r} is held by {holder} for {ttl:g} s"


class LeaseLostError(LeaseError):
    token: int | None = None


class WaitTimeoutError(ChronikError, TimeoutError):
    subject: str
    seconds: float
    waiting_on: str

    def __str__(self) -> str:
        return f"{self.subject} waited {self.seconds} s on {self.waiting_on}"

    @property
    def minutes(self) -> float:
        return self.seconds / 60


class MissingKeyError(ChronikError, KeyError):
    key: str
    template = "no key {key!r}"


def test_arguments_bind_to_fields_by_position_or_by_name() -> None:
    by_position = LeaseError("order-1", "host-a", 5.0)
    by_name = LeaseError(holder="host-a", workflow_id="order-1", ttl=5.0)

    for error in (by_position, by_name):
        assert (error.workflow_id, error.holder, error.ttl) == ("order-1", "host-a", 5)
        assert error.args == ("order-1", "host-a", 5.0)


def test_a_class_level_value_is_the_default_and_args_hold_it() -> None:
    error = LeaseError("order-1", "host-a")

    assert error.ttl == 30.0
    assert error.args == ("order-1", "host-a", 30.0)
    assert str(error) == "run 'order-1' is held by host-a for 30 s"


def test_the_template_is_formatted_with_the_fields() -> None:
    assert str(LeaseError("o", "h", 0.5)) == "run 'o' is held by h for 0.5 s"


def test_a_written_str_and_extra_behaviour_are_kept() -> None:
    error = WaitTimeoutError("the system", 90.0, "a signal")

    assert str(error) == "the system waited 90.0 s on a signal"
    assert error.minutes == 1.5


def test_the_repr_reads_as_the_construction_and_errors_compare_by_identity() -> None:
    error = LeaseError("o", "h")

    assert repr(error) == "LeaseError('o', 'h', 30.0)"
    assert error != LeaseError("o", "h")
    assert error == error  # noqa: PLR0124


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((), {}, "LeaseError(): missing a required argument: 'workflow_id'"),
        (("o", "h", 1.0, 2), {}, "LeaseError(): too many positional arguments"),
        (("o", "h"), {"owner": "x"}, "unexpected keyword argument 'owner'"),
        (("o",), {"workflow_id": "p"}, "multiple values for argument 'workflow_id'"),
    ],
)
def test_wrong_arguments_are_a_type_error_naming_the_error(
    args: tuple[object, ...], kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(problem)):
        LeaseError(*args, **kwargs)


def test_an_error_without_fields_takes_no_arguments() -> None:
    class PlainError(ChronikError):
        pass

    assert PlainError().args == ()
    with pytest.raises(TypeError, match="too many positional arguments"):
        PlainError("x")  # type: ignore[call-arg]


def test_a_subclass_takes_its_bases_fields_first_then_its_own() -> None:
    error = LeaseLostError("o", "h", 1.0, 7)

    assert list(inspect.signature(LeaseLostError).parameters) == [
        "workflow_id",
        "holder",
        "ttl",
        "token",
    ]
    assert error.token == 7
    assert error.args == ("o", "h", 1.0, 7)
    assert str(error) == "run 'o' is held by h for 1 s"  # the inherited template
    assert isinstance(error, LeaseError)
    assert isinstance(error, RuntimeError)


def test_class_vars_are_not_fields() -> None:
    class CountedError(ChronikError):
        raised: ClassVar[int] = 0
        what: str

    assert list(inspect.signature(CountedError).parameters) == ["what"]


@pytest.mark.parametrize(
    "error",
    [
        LeaseError("o", "h"),
        LeaseLostError("o", "h", 2.0, token=3),
        WaitTimeoutError("the system", 1.5, "a timer"),
        MissingKeyError("k"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_error_pickles_to_the_same_type_data_and_message(
    error: ChronikError,
) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
    assert repr(copy) == repr(error)


def test_an_error_keeps_the_built_in_a_caller_catches() -> None:
    with pytest.raises(TimeoutError):
        raise WaitTimeoutError("s", 1.0, "x")
    with pytest.raises(KeyError):
        raise MissingKeyError("k")
    assert str(MissingKeyError("k")) == "no key 'k'"  # not KeyError's repr of args


def test_a_timeout_error_keeps_all_its_data_in_args() -> None:
    # OSError, TimeoutError's base, would keep two of three values in args.
    error = WaitTimeoutError("s", 1.0, "x")

    assert error.args == ("s", 1.0, "x")
    assert error.errno is None


def test_a_template_naming_no_field_fails_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r"names \{holdr\}, which is not one of"):

        class TypoError(ChronikError):
            holder: str
            template = "held by {holdr}"


def test_a_field_without_default_after_one_with_fails_when_defined() -> None:
    with pytest.raises(TypeError, match="BadOrderError: non-default argument"):

        class BadOrderError(LeaseError):
            late: str
