"""What a supervisor is told: its children (``ChildSpec``) and how it treats their
failures (``SupervisorFlags``, ``Backoff``). All of them are frozen values."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pykka

from supervision._actor import supervised

__all__ = [
    "Backoff",
    "ChildSpec",
    "Restart",
    "Strategy",
    "SupervisorFlags",
    "check_children",
    "restarts",
]


class Restart(enum.Enum):
    """When a child that exited is started again (Erlang/OTP restart types)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after a failure; a normal exit leaves it stopped
    TEMPORARY = "temporary"  # never; it leaves the supervisor when it exits


def restarts(restart: Restart, reason: BaseException | None) -> bool:
    """Whether a child of type ``restart`` that exited for ``reason`` (None:
    normally) is started again."""
    if restart is Restart.TRANSIENT:
        return reason is not None
    return restart is Restart.PERMANENT


class Strategy(enum.Enum):
    """Which children restart when one of them fails (Erlang/OTP strategies)."""

    ONE_FOR_ONE = "one_for_one"  # only the one that failed
    ONE_FOR_ALL = "one_for_all"  # all of them
    REST_FOR_ONE = "rest_for_one"  # the one that failed and those started after it
    # As one_for_one, for many alike children all added at run time (one per
    # workflow run): a child that will not restart leaves the supervisor, and a
    # shutdown stops every child at once, in no particular order.
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        msg = f"{attribute.name} must be > 0 seconds, not {value!r}"
        raise ValueError(msg)


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        msg = f"{attribute.name} must be >= 0, not {value!r}"
        raise ValueError(msg)


@attrs.frozen
class Backoff:
    """Exponential pauses before restarts, with jitter (Akka's BackoffSupervisor).

    The n-th consecutive restart of a child (n = 0, 1, ...) waits
    ``min(maximum, initial * multiplier ** n)`` seconds, stretched by a random
    fraction of up to ``jitter`` so that siblings do not restart in lockstep. A
    child that ran at least ``reset_after`` seconds before failing counts as
    healthy again: its next pause is ``initial``.
    """

    initial: float = attrs.field(default=0.1, validator=_positive)
    maximum: float = attrs.field(default=10.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0)
    jitter: float = attrs.field(default=0.2, validator=_not_negative)
    reset_after: float = attrs.field(default=10.0, validator=_not_negative)

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            msg = f"Backoff maximum {self.maximum!r} is below initial {self.initial!r}"
            raise ValueError(msg)
        if self.multiplier < 1:
            msg = f"Backoff multiplier must be >= 1, not {self.multiplier!r}"
            raise ValueError(msg)
        if self.jitter > 1:
            msg = f"Backoff jitter is a fraction in [0, 1], not {self.jitter!r}"
            raise ValueError(msg)

    def delay(self, attempt: int, draw: float) -> float:
        """The pause before restart number ``attempt`` (from 0); ``draw`` is a
        uniform random number in [0, 1)."""
        try:
            grown = self.initial * self.multiplier**attempt
        except OverflowError:
            grown = self.maximum
        return min(self.maximum, grown) * (1.0 + self.jitter * draw)


@attrs.frozen
class SupervisorFlags:
    """How a supervisor treats its children's failures (OTP's supervisor flags).

    More than ``max_restarts`` restarts within ``period`` seconds and the
    supervisor gives up: it stops its children and fails itself, so its parent
    decides (escalation). OTP's defaults are 1 restart in 5 s; chronik allows 3 in
    5 s, so that a child hit by a short burst of failures (a dropped connection
    retried a few times) does not take its siblings down. With ``backoff``, each
    restart waits; restarts are counted when the failure is handled.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = attrs.field(default=3, validator=_not_negative)
    period: float = attrs.field(default=5.0, validator=_positive)
    backoff: Backoff | None = None


def _valid_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        msg = f"a child id is a non-empty str without '/', not {value!r}"
        raise ValueError(msg)


@attrs.frozen
class ChildSpec:
    """One child of a supervisor.

    ``start`` is called in the supervisor's thread, for the first start and every
    restart, and returns the ref of a freshly started ``SupervisedActor`` (or a
    ``Supervisor``, to nest). ``shutdown`` is how long the supervisor waits for the
    child to stop before it abandons it; ``None`` waits as long as it takes (the
    right choice for a nested supervisor, which bounds its own children).
    """

    id: str = attrs.field(validator=_valid_id)
    start: Callable[[], pykka.ActorRef[Any]]
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0

    @classmethod
    def for_actor(
        cls,
        id: str,  # the OTP name, and the attribute's
        actor_class: type[pykka.ThreadingActor],
        *,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
    ) -> ChildSpec:
        """A spec that starts ``actor_class(*args, **kwargs)``; a plain pykka
        actor class is made to report its failures (see ``supervised``)."""
        start = functools.partial(
            supervised(actor_class).start, *args, **dict(kwargs or {})
        )
        return cls(id, start, restart, shutdown)


def check_children(children: Sequence[ChildSpec], flags: SupervisorFlags) -> None:
    """Refuse children known up front to a simple_one_for_one supervisor."""
    if flags.strategy is Strategy.SIMPLE_ONE_FOR_ONE and children:
        ids = [spec.id for spec in children]
        msg = (
            f"a simple_one_for_one supervisor starts with no children, not {ids!r}; "
            "add each with SupervisorRef.start_child(spec), or pick another "
            "strategy for children known up front"
        )
        raise ValueError(msg)
