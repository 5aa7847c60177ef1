"""Random failures in random nodes of a small tree, with and without backoff, on
the manual clock: after every step the live tree is what Erlang/OTP's rules (the
pure-Python model in _model.py) say it must be."""

from __future__ import annotations

import itertools

import pykka
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from supervision import (
    Backoff,
    ChildSpec,
    ManualClock,
    Restart,
    Strategy,
    SupervisedActor,
    Supervisor,
    SupervisorFlags,
    SupervisorInfo,
    SupervisorRef,
    start_supervisor,
)
from tests.supervision._model import (
    ChildModelSpec,
    ModelSupervisor,
    Shape,
    SupSpec,
    Timers,
    fail,
)
from tests.supervision._support import (
    STOP,
    TIMEOUT,
    Crash,
    Escalations,
    inject,
    probe,
)

PERIOD = 5.0
restarts = st.sampled_from(Restart)
# Durations are sums of binary fractions, so the model's float arithmetic is exact.
backoffs = st.none() | st.builds(
    Backoff,
    initial=st.just(1.0),
    maximum=st.just(4.0),
    multiplier=st.just(2.0),
    jitter=st.just(0.0),
    reset_after=st.sampled_from([2.5, 6.0]),
)


def sup_spec(
    strategy: Strategy,
    max_restarts: int,
    backoff: Backoff | None,
    children: tuple[ChildModelSpec, ...],
) -> SupSpec:
    """simple_one_for_one supervisors start empty: their children are added."""
    if strategy is Strategy.SIMPLE_ONE_FOR_ONE:
        children = ()
    return SupSpec(strategy, max_restarts, PERIOD, backoff, children)


sup_specs = st.builds(
    lambda strategy, max_restarts, backoff, x, y: sup_spec(
        strategy,
        max_restarts,
        backoff,
        (ChildModelSpec("x", x), ChildModelSpec("y", y)),
    ),
    st.sampled_from(Strategy),
    st.integers(0, 3),
    backoffs,
    restarts,
    restarts,
)
root_specs = st.builds(
    lambda strategy, max_restarts, backoff, a, sub, sub_restart, b: sup_spec(
        strategy,
        max_restarts,
        backoff,
        (
            ChildModelSpec("a", a),
            ChildModelSpec("sub", sub_restart, sub),
            ChildModelSpec("b", b),
        ),
    ),
    st.sampled_from(Strategy),
    st.integers(1, 4),
    backoffs,
    restarts,
    sup_specs,
    restarts,
    restarts,
)
failures = st.sampled_from([ValueError("boom"), SystemExit("bye")])


def child_spec(spec: ChildModelSpec) -> ChildSpec:
    if spec.sub is None:
        return probe(spec.id, restart=spec.restart)
    return Supervisor.child_spec(
        spec.id,
        [child_spec(child) for child in spec.sub.children],
        flags(spec.sub),
        restart=spec.restart,
    )


def flags(spec: SupSpec) -> SupervisorFlags:
    return SupervisorFlags(spec.strategy, spec.max_restarts, spec.period, spec.backoff)


def shape(info: SupervisorInfo) -> Shape:
    return (
        info.alive,
        tuple(
            (
                c.id,
                c.status.value,
                c.restarts,
                None if c.last_failure is None else c.last_failure.split("(")[0],
                None if c.supervisor is None else shape(c.supervisor),
            )
            for c in info.children
        ),
    )


class SupervisionTree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.names = (f"d{n}" for n in itertools.count())
        self.added: dict[tuple[str, ...], set[str]] = {}  # ids ever added, by path
        self.root: SupervisorRef | None = None
        self.before = set(pykka.ActorRegistry.get_by_class(SupervisedActor))

    @initialize(spec=root_specs)
    def start_tree(self, spec: SupSpec) -> None:
        self.spec = spec
        self.added.clear()
        self.escalations = Escalations()
        self.root = start_supervisor(
            [child_spec(child) for child in spec.children],
            flags(spec),
            clock=self.clock,
            on_escalate=self.escalations,
        )
        self.model = ModelSupervisor.started(spec, self.clock.monotonic(), Timers())
        self.root.wait_quiet(TIMEOUT)

    def teardown(self) -> None:
        if self.root is not None:
            self.root.stop(timeout=TIMEOUT)
        leaked = set(pykka.ActorRegistry.get_by_class(SupervisedActor)) - self.before
        assert not leaked, f"actors outlived their tree: {leaked}"

    # -- what can be done to the tree -----------------------------------------------

    def workers(self) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for child in self.model.children:
            if child.live is not None:
                found += [
                    (child.spec.id, grandchild.spec.id)
                    for grandchild in child.live.children
                    if grandchild.status == "running"
                ]
            elif child.status == "running" and child.spec.sub is None:
                found.append((child.spec.id,))
        return found

    def supervisors(self) -> list[tuple[str, ...]]:
        nested = [(c.spec.id,) for c in self.model.children if c.live is not None]
        return [(), *nested]

    def at(self, path: tuple[str, ...]) -> ModelSupervisor:
        if not path:
            return self.model
        nested = self.model.find(path[0]).live
        assert nested is not None
        return nested

    @precondition(lambda self: self.model.alive and self.workers())
    @rule(data=st.data(), failure=failures)
    def crash(self, data: st.DataObject, failure: BaseException) -> None:
        path = data.draw(st.sampled_from(self.workers()))
        assert self.root is not None
        inject(self.root, self.root.child(*path), Crash(failure))
        fail(self.model, path, type(failure).__name__, self.clock.monotonic())

    @precondition(lambda self: self.model.alive and self.workers())
    @rule(data=st.data())
    def exit_normally(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(self.workers()))
        assert self.root is not None
        inject(self.root, self.root.child(*path), STOP)
        fail(self.model, path, None, self.clock.monotonic())

    @precondition(lambda self: self.model.alive)
    @rule(seconds=st.sampled_from([1.0, 2.5, 5.0, 6.0]))
    def advance_the_clock(self, seconds: float) -> None:
        assert self.root is not None
        target = self.clock.monotonic() + seconds
        # One due time at a time, letting the tree settle in between, so that each
        # restart reads the clock at its own due time (as the model assumes).
        while (
            self.clock.pending
            and self.clock.monotonic() + self.clock.pending[0] <= target
        ):
            self.clock.advance(self.clock.pending[0])
            self.root.wait_quiet(TIMEOUT)
        self.clock.advance(target - self.clock.monotonic())
        self.root.wait_quiet(TIMEOUT)
        self.model.timers.fire_until(target)

    @precondition(lambda self: self.model.alive)
    @rule(data=st.data(), restart=restarts)
    def add_a_child(self, data: st.DataObject, restart: Restart) -> None:
        path = data.draw(st.sampled_from(self.supervisors()))
        # A fresh id, or one that was added here before and has left since.
        current = {c.spec.id for c in self.at(path).children}
        reusable = sorted(self.added.get(path, set()) - current)
        child_id = data.draw(st.sampled_from([next(self.names), *reusable]))
        self.added.setdefault(path, set()).add(child_id)
        assert self.root is not None
        nested = self.root if not path else self.root.supervisor(*path)
        nested.start_child(probe(child_id, restart=restart))
        self.at(path).add(ChildModelSpec(child_id, restart), self.clock.monotonic())
        self.root.wait_quiet(TIMEOUT)

    @precondition(lambda self: self.model.alive)
    @rule(data=st.data())
    def terminate_a_child(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(self.supervisors()))
        children = [c.spec.id for c in self.at(path).children]
        if not children:
            return
        child_id = data.draw(st.sampled_from(children))
        assert self.root is not None
        nested = self.root if not path else self.root.supervisor(*path)
        nested.terminate_child(child_id)
        self.at(path).terminate(child_id)
        self.root.wait_quiet(TIMEOUT)

    @precondition(lambda self: not self.model.alive)
    @rule()
    def start_a_new_tree(self) -> None:
        assert self.root is not None
        self.root.stop(timeout=TIMEOUT)
        self.start_tree(self.spec)

    # -- what must hold after every step ----------------------------------------------

    @invariant()
    def the_live_tree_is_what_otp_predicts(self) -> None:
        if self.root is None:
            return
        if not self.model.alive:
            cause = self.escalations.wait()
            assert type(cause).__name__ == "RestartIntensityError"
        assert shape(self.root.tree()) == self.model.shape()
        now = self.clock.monotonic()
        scheduled = [now + due for due in self.clock.pending]
        assert scheduled == self.model.timers.pending(self.model.live_supervisors())


SupervisionTree.TestCase.settings = settings(
    settings.get_profile(settings._current_profile or "default"),
    stateful_step_count=15,
)
test_random_failures_leave_the_tree_otp_predicts = SupervisionTree.TestCase
