"""A pure-Python model of Erlang/OTP supervision (with chronik's backoff), for the
stateful test: what the live tree must look like after each failure, exit, clock
move or child change."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from supervision import Backoff, Restart, Strategy

Shape = tuple[bool, tuple[tuple[str, str, int, str | None, "Shape | None"], ...]]
"""(alive, ((id, status, restarts, last failure type, nested shape), ...))."""


@dataclass(frozen=True)
class SupSpec:
    strategy: Strategy
    max_restarts: int
    period: float
    backoff: Backoff | None
    children: tuple[ChildModelSpec, ...]


@dataclass(frozen=True)
class ChildModelSpec:
    id: str
    restart: Restart
    sub: SupSpec | None = None  # a nested supervisor's own spec


class Timers:
    """The clock's scheduled restarts, fired in (due, order) order as the real
    ManualClock does; a restart whose supervisor or token is gone does nothing."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._heap: list[tuple[float, int, ModelSupervisor, int]] = []

    def schedule(self, due: float, supervisor: ModelSupervisor, token: int) -> None:
        heapq.heappush(self._heap, (due, next(self._order), supervisor, token))

    def pending(self, live: list[ModelSupervisor]) -> list[float]:
        """Due times still scheduled: a supervisor cancels its own when it stops."""
        return sorted(due for due, _, owner, _ in self._heap if owner in live)

    def fire_until(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, _, supervisor, token = heapq.heappop(self._heap)
            supervisor.restart_due(token, due)


@dataclass
class ModelChild:
    spec: ChildModelSpec
    dynamic: bool = False
    status: str = "stopped"
    starts: int = 0
    last_failure: str | None = None
    live: ModelSupervisor | None = None  # while a running nested supervisor
    token: int | None = None
    attempt: int = 0
    started_at: float = 0.0

    def start(self, now: float, timers: Timers) -> None:
        self.status, self.token = "running", None
        self.starts += 1
        self.started_at = now
        if self.spec.sub is not None:
            self.live = ModelSupervisor.started(self.spec.sub, now, timers)

    def stop(self) -> None:
        self.status, self.token = "stopped", None
        self.live = None


@dataclass
class ModelSupervisor:
    spec: SupSpec
    children: list[ModelChild]
    timers: Timers
    alive: bool = True
    restart_times: list[float] = field(default_factory=list)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def started(cls, spec: SupSpec, now: float, timers: Timers) -> ModelSupervisor:
        supervisor = cls(spec, [ModelChild(child) for child in spec.children], timers)
        for child in supervisor.children:
            child.start(now, timers)
        return supervisor

    def live_supervisors(self) -> list[ModelSupervisor]:
        if not self.alive:
            return []
        nested = [c.live.live_supervisors() for c in self.children if c.live]
        return [self, *(supervisor for found in nested for supervisor in found)]

    def find(self, child_id: str) -> ModelChild:
        return next(c for c in self.children if c.spec.id == child_id)

    def add(self, spec: ChildModelSpec, now: float) -> None:
        child = ModelChild(spec, dynamic=True)
        self.children.append(child)
        child.start(now, self.timers)

    def terminate(self, child_id: str) -> None:
        child = self.find(child_id)
        child.stop()
        self.children.remove(child)

    @property
    def simple(self) -> bool:
        return self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE

    def forgets(self, child: ModelChild) -> bool:
        """A child stopped for good leaves: temporary ones, and any under
        simple_one_for_one."""
        return self.simple or child.spec.restart is Restart.TEMPORARY

    def exit(self, child: ModelChild, failure: str | None, now: float) -> str | None:
        """``child`` ended (``failure`` None: normally). Returns the failure this
        supervisor escalates with, if it gives up."""
        child.stop()
        if failure is not None:
            child.last_failure = failure
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (
            restart is Restart.TRANSIENT and failure is None
        ):
            if self.forgets(child):
                self.children.remove(child)
            return None
        if self._one_too_many(now):
            for other in reversed(self.children):
                other.stop()
            if self.simple:
                self.children.clear()
            self.alive = False
            return "RestartIntensityError"
        self._restart(child, now)
        return None

    def _one_too_many(self, now: float) -> bool:
        self.restart_times = [
            t for t in self.restart_times if now - t <= self.spec.period
        ]
        self.restart_times.append(now)
        return len(self.restart_times) > self.spec.max_restarts

    def _restart(self, child: ModelChild, now: float) -> None:
        group = self._affected(child)
        for other in reversed(group):
            if other is not child:
                other.stop()
                if self.forgets(other):
                    self.children.remove(other)
        group = [member for member in group if member in self.children]
        delay = self._backoff_delay(child, now)
        if delay > 0:
            token = next(self.tokens)
            for member in group:
                member.status, member.token = "restarting", token
            self.timers.schedule(now + delay, self, token)
        else:
            for member in group:
                member.start(now, self.timers)

    def restart_due(self, token: int, now: float) -> None:
        if self.alive:
            for child in [c for c in self.children if c.token == token]:
                child.start(now, self.timers)

    def _backoff_delay(self, child: ModelChild, now: float) -> float:
        backoff = self.spec.backoff
        if backoff is None:
            return 0.0
        if now - child.started_at >= backoff.reset_after:
            child.attempt = 0
        delay = min(
            backoff.maximum, backoff.initial * backoff.multiplier**child.attempt
        )
        child.attempt += 1
        return delay

    def _affected(self, child: ModelChild) -> list[ModelChild]:
        if self.spec.strategy is Strategy.ONE_FOR_ALL:
            return list(self.children)
        if self.spec.strategy is Strategy.REST_FOR_ONE:
            return self.children[self.children.index(child) :]
        return [child]

    def shape(self) -> Shape:
        return (
            self.alive,
            tuple(
                (
                    c.spec.id,
                    c.status,
                    max(0, c.starts - 1),
                    c.last_failure,
                    None if c.live is None else c.live.shape(),
                )
                for c in self.children
            ),
        )


def fail(
    root: ModelSupervisor, path: tuple[str, ...], failure: str | None, now: float
) -> None:
    """The child at ``path`` ended; escalate as far as supervisors give up."""
    chain = [root]
    for child_id in path[:-1]:
        nested = chain[-1].find(child_id).live
        assert nested is not None
        chain.append(nested)
    for depth in range(len(chain) - 1, -1, -1):
        supervisor = chain[depth]
        failure = supervisor.exit(supervisor.find(path[depth]), failure, now)
        if failure is None:
            return
