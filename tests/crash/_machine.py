"""``CrashMachine``: a hypothesis state machine driving runs of the model
workflows through faults, step by step against the fault-free model.

Rules spawn runs, send signals (some twice, some resent later with the same
id), make steps fail transiently, inject engine faults into workflow actors (a
commit that raises before or after it is durable; a message no actor handles),
move the ``ManualClock``, abandon the system mid-flight (it commits nothing
more, as a killed process; the journal is opened again) or close and reopen it.

After every rule the journal must hold (``journal_holds``): no seq issued twice
or ended twice, no signal received or consumed twice, no acknowledged signal
missing, and every run that has ended ended as the model says. Before the clock
moves, and at the end, the system must settle: every run reaches the state the
model is in (same commands, same waits, same unconsumed signals, same ending)
within a bounded time, and every step body ran under the key of a step history
holds. At the end every run is driven to its end (signals sent, time passed).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors import UnknownRunError
from actors.testing import WorkflowTestEnv
from actors.testing._audit import RunsReader
from actors.testing._journals import fresh_journal
from aggregates import RunFinishedError, WorkflowRun
from journal import PostgresLocation, parse_location
from tests.crash import _settling, _stats
from tests.crash._checks import (
    Runs,
    effects_problems,
    ending_problems,
    journal_problems,
    read_runs,
)
from tests.crash._faults import ANY_RUN, CommitFaults, tell_unknown
from tests.crash._model import TOPICS, Model, ModelRun
from tests.crash._workflows import EFFECTS, INJECTED, WORKFLOWS, set_step_latency

__all__ = ["CrashMachine", "crash_machine_on"]

MAX_RUNS = 5
SETTLE_TIMEOUT = 10.0  # real seconds a run may take to reach the model's state
MISMATCH_GRACE = 1.0  # real seconds a waiting run may differ from the model
SEND_TIMEOUT = 15.0
KINDS = (
    "tests.crash.pipeline",
    "tests.crash.collector",
    "tests.crash.parent",
    "tests.crash.booking",
)
FATES = st.sampled_from(["ok", "ok", "ok", "flaky", "fatal"])
DURATIONS = st.sampled_from([60, 300, 900, 3600])
NOISE = "noise"  # a topic no workflow receives: its signals stay pending

F = TypeVar("F", bound=Callable[..., Any])


def _arguments(
    *, kind: str, x: int, fates: list[str], pause: int, timeout: int, count: int
) -> tuple[str, list[Any]]:
    if kind == "tests.crash.pipeline":
        return kind, [x, fates[:3], pause]
    if kind == "tests.crash.collector":
        return kind, [x, count, timeout, fates[:1]]
    if kind == "tests.crash.parent":
        return kind, [x, fates[:3], pause, timeout]
    return kind, [x, fates[:5], timeout]


# A run to spawn: its workflow and arguments.
RUNS = st.builds(
    _arguments,
    kind=st.sampled_from(KINDS),
    x=st.integers(0, 99),
    fates=st.lists(FATES, min_size=5, max_size=5),
    pause=DURATIONS,
    timeout=DURATIONS,
    count=st.integers(1, 3),
)


def _guarded(method: F) -> F:
    """Mark the machine unhealthy if ``method`` raises, so that teardown does
    not pile a second failure on the first."""

    @functools.wraps(method)
    def guarded(self: CrashMachine, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.healthy = False
            raise

    return guarded  # type: ignore[return-value]


class CrashMachine(RuleBasedStateMachine):
    # Where each example makes its fresh journal (``fresh_journal``): None, a
    # temporary directory; a ``postgresql://`` URL, a schema of its own there.
    journals: str | None = None

    def __init__(self) -> None:
        super().__init__()
        _stats.count("state machine: examples (generated histories)")
        EFFECTS.clear()
        INJECTED.clear()
        self.healthy = True
        self.env: WorkflowTestEnv | None = None
        self.model = Model(datetime(2026, 1, 1))  # replaced once the env is open
        self.top: list[str] = []  # runs the rules spawned (not children)
        self.acked: dict[str, list[str]] = defaultdict(list)  # signal ids by run
        self.sent: dict[str, tuple[str, str, int]] = {}  # id: (run, topic, payload)
        self._ids = itertools.count(1)
        self._owner = threading.current_thread()
        self._faults: CommitFaults | None = None
        self._journal = contextlib.ExitStack()  # removes the example's journal
        # Kept open on PostgreSQL, where opening one (connections, the format
        # check) takes about 40 ms, and the machine reads after every rule; on
        # LMDB opened for each read, so that a close and reopen of the system
        # still closes the journal's environment.
        self._reader: RunsReader | None = None

    # -- opening, and the system's lives --------------------------------------------

    @initialize(
        options=st.fixed_dictionaries(
            {
                "idle_timeout": st.sampled_from([None, 0.05]),
                "snapshot_every": st.sampled_from([200, 4]),
                "max_workers": st.sampled_from([16, 1]),
            }
        ),
        latency=st.sampled_from([0.0, 0.002, 0.01]),
        runs=st.lists(RUNS, min_size=1, max_size=MAX_RUNS - 1),
    )
    @_guarded
    def open_a_journal_and_spawn_runs(
        self, options: dict[str, Any], latency: float, runs: list[tuple[str, list[Any]]]
    ) -> None:
        """``options`` of the system: runs waiting 50 ms passivate (or never
        do), snapshots every 4 events (or 200), one step at a time (or 16);
        ``latency``: real seconds each step takes (so that crashes find steps
        in flight)."""
        set_step_latency(latency)
        path = self._journal.enter_context(fresh_journal(self.journals))
        self.env = WorkflowTestEnv(path, max_run_restarts=50, **options)
        self.env.open()
        if isinstance(parse_location(path), PostgresLocation):
            self._reader = self._journal.enter_context(RunsReader(path))
        self.model = Model(self.env.now())
        self._watch()
        for kind, args in runs:
            self._spawn(kind, args)

    @property
    def _env(self) -> WorkflowTestEnv:
        assert self.env is not None
        return self.env

    def _watch(self) -> None:
        self._faults = CommitFaults(self._env.system, self._owner)

    def _count_restarts(self) -> None:
        system = self._env.system
        _stats.count(
            "fault: workflow actors restarted by their supervisor", system.restarts
        )

    @rule(abandon=st.booleans())
    @_guarded
    def crash_or_close_the_system_and_open_the_journal_again(
        self, abandon: bool
    ) -> None:
        """Abandoned: the system commits nothing more (a killed process);
        else closed mid-flight. Either way a new one opens the journal."""
        self._count_restarts()
        if self._unsettled()[0]:
            _stats.count("fault: systems abandoned or closed with work in flight")
        if abandon:
            self._env.restart()
            _stats.count("fault: systems abandoned mid-flight (journal reopened)")
        else:
            self._env.reopen()
            _stats.count("fault: systems closed mid-flight and reopened")
        self._watch()
        self._rule()

    # -- runs and signals ------------------------------------------------------------

    @precondition(lambda self: len(self.top) < MAX_RUNS)
    @rule(run=RUNS)
    @_guarded
    def spawn_a_run(self, run: tuple[str, list[Any]]) -> None:
        self._spawn(*run)
        self._rule()

    @precondition(lambda self: self.top)
    @rule(which=st.integers(0, MAX_RUNS - 1))
    @_guarded
    def spawn_a_run_again_by_its_id(self, which: int) -> None:
        """Spawning is idempotent by id: the same run comes back, unchanged."""
        run_id = self.top[which % len(self.top)]
        model = self.model.runs[run_id]
        ref = self._env.system.spawn(WORKFLOWS[model.workflow], *model.args, id=run_id)
        assert ref.id == run_id
        _stats.count("fault: runs spawned again by their id")
        self._rule()

    def _spawn(self, kind: str, args: list[Any]) -> None:
        run_id = f"{kind.rpartition('.')[2]}-{len(self.top) + 1}"
        self._env.system.spawn(WORKFLOWS[kind], *args, id=run_id)
        self.model.spawn(run_id, kind, args)
        self.top.append(run_id)
        _stats.count("state machine: runs spawned")

    @precondition(lambda self: self.top)
    @rule(
        signal=st.tuples(
            st.integers(0, MAX_RUNS - 1),  # which run
            st.integers(0, 2),  # which of its topics (or noise)
            st.integers(0, 9),  # payload
            st.booleans(),  # sent twice in a row
        )
    )
    @_guarded
    def send_a_signal(self, signal: tuple[int, int, int, bool]) -> None:
        which, topic, payload, twice = signal
        run_id = self.top[which % len(self.top)]
        topics = (*TOPICS[self.model.runs[run_id].workflow], NOISE)
        name = topics[topic % len(topics)]
        signal_id = f"signal-{next(self._ids)}"
        # Kept even if refused: whether the real run had ended yet is timing,
        # and what rules can run next (resend's precondition) must not be.
        self.sent[signal_id] = (run_id, name, payload)
        if self._send(run_id, name, payload, signal_id):
            self.model.signal(run_id, name, payload, signal_id)
            if twice:
                self._send(run_id, name, payload, signal_id)
                _stats.count("fault: signals sent twice in a row (same id)")
        self._rule()

    @precondition(lambda self: self.sent)
    @rule(which=st.integers(0, 50))
    @_guarded
    def resend_a_signal_with_its_id(self, which: int) -> None:
        """A client that lost the acknowledgement sends again: a no-op if the
        signal was acknowledged (or refused, its run having ended)."""
        signal_id = sorted(self.sent)[which % len(self.sent)]
        run_id, topic, payload = self.sent[signal_id]
        self._send(run_id, topic, payload, signal_id)
        _stats.count("fault: signals resent later (same id)")
        self._rule()

    def _send(self, run_id: str, topic: str, payload: int, signal_id: str) -> bool:
        """Send; True once acknowledged, False if the run had ended."""
        ref = self._env.system.ref(run_id)
        try:
            acknowledged = ref.send(
                topic, payload, signal_id=signal_id, timeout=SEND_TIMEOUT
            )
        except RunFinishedError:
            # The model is never behind the real run: it has ended too.
            assert self.model.runs[run_id].finished, f"{run_id} refused {signal_id}"
            return False
        assert acknowledged == signal_id
        if signal_id not in self.acked[run_id]:
            self.acked[run_id].append(signal_id)
            _stats.count("state machine: signals acknowledged")
        return True

    # -- faults ----------------------------------------------------------------------

    def _any_run(self, which: int) -> str:
        ids = sorted(self.model.runs)
        return ids[which % len(ids)]

    @precondition(lambda self: self.model.runs)
    @rule(failures=st.tuples(st.integers(0, 2 * MAX_RUNS), st.integers(1, 3)))
    @_guarded
    def make_steps_fail_transiently(self, failures: tuple[int, int]) -> None:
        which, times = failures
        INJECTED.add(self._any_run(which), times)
        self._rule()

    @precondition(lambda self: self.model.runs)
    @rule(
        fault=st.tuples(
            st.none() | st.integers(0, 2 * MAX_RUNS),  # which run (None: any)
            st.booleans(),  # after the commit is durable
        )
    )
    @_guarded
    def make_a_commit_raise(self, fault: tuple[int | None, bool]) -> None:
        """The next commit of a run (or of any run) raises: an engine fault."""
        which, after = fault
        assert self._faults is not None
        self._faults.arm(ANY_RUN if which is None else self._any_run(which), after)
        self._rule()

    @precondition(lambda self: self.model.runs)
    @rule(which=st.integers(0, 2 * MAX_RUNS))
    @_guarded
    def tell_a_live_actor_an_unknown_message(self, which: int) -> None:
        tell_unknown(self._env.system, self._any_run(which))
        self._rule()

    # -- time ------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0, 30, 60, 300, 900, 3600]))
    @_guarded
    def let_the_system_settle_and_advance_the_clock(self, seconds: int) -> None:
        self._advance(self.model.now + timedelta(seconds=seconds))
        self._rule()

    def _advance(self, end: datetime) -> None:
        """Move time to ``end``; each timer due on the way fires at its own time,
        once the system has settled."""
        while True:
            self._settle()
            due = self.model.next_due()
            if due is None or due > end:
                break
            self._move_clock(due)
        self._move_clock(end)

    def _move_clock(self, to: datetime) -> None:
        self.model.advance_to(to)
        self._env.clock.advance_to(to)

    def _rule(self) -> None:
        """Count the rule that calls this (by its name)."""
        caller = sys._getframe(1).f_code.co_name
        _stats.count("state machine: rules run")
        _stats.count(f"state machine: rule {caller}")

    # -- invariants --------------------------------------------------------------------

    @invariant()
    @_guarded
    def journal_holds(self) -> None:
        if self.env is None:
            return
        runs = self._read_runs()
        problems = journal_problems(runs, self.acked)
        for run_id, events in runs.items():
            problems += ending_problems(run_id, events, self.model.runs.get(run_id))
        assert not problems, "\n".join(problems)

    def _settle(self) -> None:
        """Wait until every run is where the model is; fail if one is still busy
        after SETTLE_TIMEOUT (it is stuck), or if every run is waiting on input
        and one is not where the model is (it went elsewhere)."""
        start = time.monotonic()
        while True:
            busy, differences = self._unsettled()
            if not busy and not differences:
                break
            waited = time.monotonic() - start
            if waited > SETTLE_TIMEOUT or (not busy and waited > MISMATCH_GRACE):
                lines = "\n".join(f"  {p}" for p in busy + differences)
                msg = f"runs not where the model is after {waited:.1f} s:\n{lines}"
                raise AssertionError(msg)
            time.sleep(0.003)
        runs = self._read_runs()
        problems = effects_problems(runs, EFFECTS.snapshot())
        for run_id, events in runs.items():
            problems += ending_problems(run_id, events, self.model.runs.get(run_id))
        if set(runs) != set(self.model.runs):
            problems.append(
                f"history holds the runs {sorted(runs)}; the model "
                f"{sorted(self.model.runs)}"
            )
        assert not problems, "\n".join(sorted(set(problems)))

    def _read_runs(self) -> Runs:
        if self._reader is not None:
            return self._reader.read()
        return read_runs(self._env.path)

    def _unsettled(self) -> tuple[list[str], list[str]]:
        """What runs can still do by themselves, and where runs that wait on
        input are not where the model is."""
        system = self._env.system
        histories: dict[str, WorkflowRun] = {}
        busy: list[str] = []
        for run_id in sorted(self.model.runs):
            try:
                histories[run_id] = system.history(run_id)
            except UnknownRunError:
                busy.append(f"{run_id}: not in history yet")
        now = self._env.clock.now()
        differences: list[str] = []
        for run_id, real in histories.items():
            doing = _settling.busy(real, histories, now)
            if doing is not None:
                busy.append(f"{run_id}: {doing}")
            else:
                differences += _settling.differences(
                    run_id, real, self.model.runs[run_id]
                )
        return busy, differences

    # -- the end ---------------------------------------------------------------------

    def teardown(self) -> None:
        if self.env is None:
            self._journal.close()
            return
        try:
            if self.healthy:
                self._drive_to_the_end()
        finally:
            try:
                if self.healthy:  # else the system may not even be open
                    self._count_restarts()
                self.env.close()
            finally:
                self._journal.close()
                EFFECTS.clear()
                INJECTED.clear()
                set_step_latency(0.0)

    def _drive_to_the_end(self) -> None:
        """Send every signal a run waits for and let time pass every timer:
        then every run must end as the model says."""
        for _ in range(100):
            self._settle()
            unfinished = self.model.unfinished()
            if not unfinished:
                break
            if not self._send_awaited(unfinished):
                due = self.model.next_due()
                assert due is not None, "the model waits on nothing it can be given"
                self._advance(due)
        else:
            raise AssertionError("the runs never ended")
        self._settle()
        for run in self.model.runs.values():
            assert run.ending is not None
            _stats.count(f"state machine: runs that ended {run.ending.status}")

    def _send_awaited(self, unfinished: list[ModelRun]) -> bool:
        sent = False
        for run in unfinished:
            for _, kind, topic in run.waiting_on():
                if kind == "receive" and topic is not None and run.run_id in self.top:
                    signal_id = f"signal-{next(self._ids)}"
                    if self._send(run.run_id, topic, 1, signal_id):
                        self.sent[signal_id] = (run.run_id, topic, 1)
                        self.model.signal(run.run_id, topic, 1, signal_id)
                        sent = True
        return sent


def crash_machine_on(journals: str | None) -> type[CrashMachine]:
    """The machine with each example's journal made at ``journals`` (see
    ``CrashMachine.journals``)."""
    return type("CrashMachine", (CrashMachine,), {"journals": journals})
