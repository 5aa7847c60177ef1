"""A supervisor's bookkeeping: one record per child, the restart window, and
which children a failure affects. Pure data and functions, no threads."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import attrs

from supervision._info import ChildInfo, ChildStatus
from supervision._link import Link
from supervision._spec import ChildSpec, Strategy
from supervision._tree import Path

__all__ = ["Child", "RestartWindow", "affected"]


@attrs.define(eq=False)
class Child:
    spec: ChildSpec
    path: Path
    dynamic: bool
    # Invariant: link is set exactly while status is RUNNING; token is set only
    # while status is RESTARTING and a RestartDue(token) is scheduled.
    link: Link | None = None
    status: ChildStatus = ChildStatus.STOPPED
    incarnation: int = 0
    starts: int = 0
    last_failure: BaseException | None = None
    abandoned: int = 0
    token: int | None = None
    attempt: int = 0  # consecutive backoff pauses so far
    started_at: float = 0.0  # on the supervisor's clock
    supervisor_urn: str | None = None  # the running incarnation, if a Supervisor

    @property
    def id(self) -> str:
        return self.spec.id

    def info(self) -> ChildInfo:
        return ChildInfo(
            id=self.spec.id,
            status=self.status,
            restart=self.spec.restart,
            restarts=max(0, self.starts - 1),
            last_failure=None if self.last_failure is None else repr(self.last_failure),
            abandoned=self.abandoned,
            dynamic=self.dynamic,
        )


def affected(
    strategy: Strategy, children: Sequence[Child], failed: Child
) -> list[Child]:
    """The children that restart when ``failed`` does, in start order."""
    if strategy is Strategy.ONE_FOR_ALL:
        return list(children)
    if strategy is Strategy.REST_FOR_ONE:
        return list(children[children.index(failed) :])
    return [failed]


class RestartWindow:
    """OTP's restart intensity: at most ``max_restarts`` restarts in any
    ``period`` seconds (a restart ``period`` seconds old still counts)."""

    def __init__(self, max_restarts: int, period: float) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Count a restart at ``now``; False when it is one too many."""
        self._times.append(now)
        while now - self._times[0] > self.period:
            self._times.popleft()
        return len(self._times) <= self.max_restarts
