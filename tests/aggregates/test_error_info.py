"""ErrorInfo: an error as plain data, to and from the dict stored in events."""

from __future__ import annotations

import pytest

from aggregates import ErrorInfo, ErrorInfoFormatError


class CardDeclinedError(Exception):
    pass


def test_error_info_from_an_exception_names_its_type_module_and_message() -> None:
    info = ErrorInfo.from_exception(CardDeclinedError("insufficient funds"))
    assert info == ErrorInfo(
        "CardDeclinedError", "insufficient funds", __name__, retryable=True
    )
    assert str(info) == f"{__name__}.CardDeclinedError: insufficient funds"


def test_a_built_in_error_is_named_without_its_module() -> None:
    info = ErrorInfo.from_exception(ValueError("bad"), retryable=False)
    assert (info.module, info.qualified_type, info.retryable) == (
        "builtins",
        "ValueError",
        False,
    )
    assert str(info) == "ValueError: bad"


def test_error_info_round_trips_through_a_plain_dict() -> None:
    info = ErrorInfo("CardDeclined", "no", "payments", retryable=False)
    data = info.to_dict()
    assert data == {
        "type": "CardDeclined",
        "message": "no",
        "module": "payments",
        "retryable": False,
    }
    assert ErrorInfo.from_dict(data) == info


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("ValueError: bad", "is not a mapping"),
        ({"message": "m", "module": "b", "retryable": True}, "has no 'type' key"),
        (
            {"type": "T", "message": 3, "module": "b", "retryable": True},
            "'message' is not a str",
        ),
        (
            {"type": "T", "message": "m", "module": "b", "retryable": "yes"},
            "'retryable' is not a bool",
        ),
    ],
)
def test_error_info_from_bad_data_names_the_problem(data: object, problem: str) -> None:
    with pytest.raises(ErrorInfoFormatError) as raised:
        ErrorInfo.from_dict(data)  # type: ignore[arg-type]
    assert raised.value.problem == problem
    assert problem in str(raised.value)
    assert "ErrorInfo.to_dict()" in str(raised.value)
