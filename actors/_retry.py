"""``RetryPolicy``: how often and how patiently a failing step is retried."""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from actors._errors import DefinitionError

__all__ = ["RetryPolicy"]


def _as_tuple(
    kinds: Iterable[type[BaseException]],
) -> tuple[type[BaseException], ...]:
    return tuple(kinds)


@attrs.frozen
class RetryPolicy:
    """Retry attempt ``n`` waits ``initial_interval * backoff ** (n - 1)`` seconds,
    at most ``max_interval``; after ``max_attempts`` attempts (or at once, for an
    error of a ``non_retryable`` type) the step fails for good.

    Every problem of a policy is reported at once, when it is made.
    """

    max_attempts: int = 3
    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0
    non_retryable: tuple[type[BaseException], ...] = attrs.field(
        default=(), converter=_as_tuple
    )

    def __attrs_post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise DefinitionError(repr(self), problems)

    def problems(self) -> tuple[str, ...]:
        found: list[str] = []
        if isinstance(self.max_attempts, bool) or not isinstance(
            self.max_attempts, int
        ):
            found.append(f"max_attempts={self.max_attempts!r} must be an int >= 1")
        elif self.max_attempts < 1:
            found.append(f"max_attempts={self.max_attempts!r} must be >= 1")
        for name, low in (("initial_interval", 0.0), ("max_interval", 0.0)):
            if not _number_at_least(getattr(self, name), low):
                found.append(f"{name}={getattr(self, name)!r} must be seconds >= 0")
        if not _number_at_least(self.backoff, 1.0):
            found.append(f"backoff={self.backoff!r} must be a number >= 1")
        if not found and self.max_interval < self.initial_interval:
            found.append(
                f"max_interval={self.max_interval!r} is below "
                f"initial_interval={self.initial_interval!r}"
            )
        found.extend(
            f"non_retryable holds {kind!r}, which is not an exception class"
            for kind in self.non_retryable
            if not (isinstance(kind, type) and issubclass(kind, BaseException))
        )
        return tuple(found)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (counted from 1)."""
        interval = self.initial_interval * self.backoff ** (attempt - 1)
        return float(min(interval, self.max_interval))

    def retries(self, error: BaseException, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` with ``error`` is tried again."""
        return attempt < self.max_attempts and not isinstance(error, self.non_retryable)


def _number_at_least(value: object, low: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= low
    )
