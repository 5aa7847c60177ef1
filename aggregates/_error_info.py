"""``ErrorInfo``: an error as plain data, the only form an error takes in history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from aggregates._errors import ErrorInfoFormatError

__all__ = ["ErrorInfo"]

_FIELDS = {"type": str, "message": str, "module": str, "retryable": bool}


@attrs.frozen
class ErrorInfo:
    """What failed, without the exception object (which may not pickle or encode).

    ``type`` is the exception class's qualified name and ``module`` its module, so
    ``payments.CardDeclined`` is ``ErrorInfo("CardDeclined", "...", "payments")``.
    ``retryable=False`` says retrying cannot help (a non-retryable step failure).
    """

    type: str
    message: str
    module: str = "builtins"
    retryable: bool = True

    @classmethod
    def from_exception(
        cls, error: BaseException, *, retryable: bool = True
    ) -> ErrorInfo:
        kind = type(error)
        return cls(kind.__qualname__, str(error), kind.__module__, retryable)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """The inverse of ``to_dict``; raises ``ErrorInfoFormatError`` on bad data."""
        if not isinstance(data, Mapping):
            raise ErrorInfoFormatError(data, "is not a mapping")
        for name, kind in _FIELDS.items():
            if name not in data:
                raise ErrorInfoFormatError(dict(data), f"has no {name!r} key")
            if not isinstance(data[name], kind):
                raise ErrorInfoFormatError(
                    dict(data), f"{name!r} is not a {kind.__name__}"
                )
        return cls(data["type"], data["message"], data["module"], data["retryable"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "module": self.module,
            "retryable": self.retryable,
        }

    @property
    def qualified_type(self) -> str:
        """``module.type``, or just ``type`` for built-in exceptions."""
        if self.module == "builtins":
            return self.type
        return f"{self.module}.{self.type}"

    def __str__(self) -> str:
        return f"{self.qualified_type}: {self.message}"
