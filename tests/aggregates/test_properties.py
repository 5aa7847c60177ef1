"""Random valid histories: the run rebuilt from its events, and the run saved and
reloaded (through the LMDB journal and through eventsourcing.popo, with snapshots
taken at random points), always has exactly the state of the run in memory.

A small model runs alongside and is compared with the aggregate after every step,
as hypothesis's stateful machines compare two implementations.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from aggregates import (
    CommandKind,
    ErrorInfo,
    OutcomeAlreadyRecordedError,
    RunFinishedError,
    RunStatus,
    UnknownSeqError,
    ValueKind,
    WorkflowRun,
)
from tests.aggregates._support import T0, replay, state_of, through_mapper

# Values both transcoders store faithfully: popo's JSON has no tuples or bytes.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
)
VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abxyz", max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
NAMES = st.sampled_from(["charge_card", "refund_card", "ship", "notify"])
TOPICS = st.sampled_from(["approval", "address"])
ERRORS = st.builds(
    ErrorInfo,
    st.sampled_from(["TimeoutError", "CardDeclined"]),
    st.text(max_size=6),
    st.sampled_from(["builtins", "payments"]),
    st.booleans(),
)
FINISHED = [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED]
_workflow_numbers = itertools.count()


class RunMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.workflow_id = f"order-{next(_workflow_numbers)}"
        self.path = tempfile.mkdtemp(prefix="chronik-aggregates-")
        self.journal_env = {
            "PERSISTENCE_MODULE": "journal",
            "LMDB_PATH": self.path,
            "LMDB_SYNC": "n",
            "IS_SNAPSHOTTING_ENABLED": "y",
        }
        popo_env = {
            "PERSISTENCE_MODULE": "eventsourcing.popo",
            "IS_SNAPSHOTTING_ENABLED": "y",
        }
        self.apps = [Application[str](env=self.journal_env), Application[str](popo_env)]
        self.now = T0
        self.run = WorkflowRun.start(
            self.workflow_id, "process_order", ["o-1", 100], at=self.now
        )
        self.signals = 0
        self.snapshot_version = 0
        # The model: what the run's queries must say.
        self.status = RunStatus.RUNNING
        self.next_seq = 1
        self.open: dict[int, CommandKind] = {}
        self.deadlines: dict[int, datetime] = {}
        self.receives: dict[int, str] = {}
        self.inbox: dict[str, list[str]] = {}
        self.resolved_steps: list[int] = []
        self.patches: set[str] = set()
        self.signal_topics: dict[str, str] = {}

    # -- helpers -------------------------------------------------------------

    def _issue(self, kind: CommandKind) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.open[seq] = kind
        return seq

    def _resolve(self, seq: int) -> None:
        del self.open[seq]
        self.deadlines.pop(seq, None)
        self.receives.pop(seq, None)

    def _open(self, kind: CommandKind) -> list[int]:
        return [seq for seq, found in self.open.items() if found is kind]

    def _running(self) -> bool:
        return self.status is RunStatus.RUNNING

    # -- time ----------------------------------------------------------------

    @rule(minutes=st.integers(min_value=0, max_value=600))
    def advance_the_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    # -- steps ---------------------------------------------------------------

    @precondition(_running)
    @rule(name=NAMES, args=st.lists(VALUES, max_size=3))
    def schedule_step(self, name: str, args: list[Any]) -> None:
        self.run.schedule_step(self._issue(CommandKind.STEP), name, args, at=self.now)

    @precondition(lambda self: self._running() and self._open(CommandKind.STEP))
    @rule(data=st.data(), result=VALUES)
    def complete_step(self, data: st.DataObject, result: Any) -> None:
        seq = data.draw(st.sampled_from(self._open(CommandKind.STEP)))
        self.run.complete_step(seq, result, at=self.now)
        self._resolve(seq)
        self.resolved_steps.append(seq)

    @precondition(lambda self: self._running() and self._open(CommandKind.STEP))
    @rule(data=st.data(), error=ERRORS, skip=st.integers(1, 3), final=st.booleans())
    def fail_step(
        self, data: st.DataObject, error: ErrorInfo, skip: int, final: bool
    ) -> None:
        seq = data.draw(st.sampled_from(self._open(CommandKind.STEP)))
        attempt = self.run.command_at(seq).attempts + skip
        self.run.fail_step(seq, error, attempt=attempt, final=final, at=self.now)
        if final:
            self._resolve(seq)
            self.resolved_steps.append(seq)

    @precondition(lambda self: self._running() and self.resolved_steps)
    @rule(data=st.data())
    def a_second_outcome_is_refused(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.resolved_steps))
        with pytest.raises(OutcomeAlreadyRecordedError) as raised:
            self.run.complete_step(seq, "again", at=self.now)
        assert raised.value.seq == seq

    @precondition(_running)
    @rule(beyond=st.integers(min_value=0, max_value=3))
    def an_outcome_for_an_unissued_seq_is_refused(self, beyond: int) -> None:
        seq = self.next_seq + beyond
        with pytest.raises(UnknownSeqError) as raised:
            self.run.fire_timer(seq, at=self.now)
        assert raised.value.seq == seq

    # -- timers --------------------------------------------------------------

    @precondition(_running)
    @rule(minutes=st.integers(min_value=0, max_value=10_000))
    def start_timer(self, minutes: int) -> None:
        seq = self._issue(CommandKind.TIMER)
        fire_at = self.now + timedelta(minutes=minutes)
        self.deadlines[seq] = fire_at
        self.run.start_timer(seq, fire_at, at=self.now)

    @precondition(lambda self: self._running() and self._open(CommandKind.TIMER))
    @rule(data=st.data())
    def fire_timer(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self._open(CommandKind.TIMER)))
        self.run.fire_timer(seq, at=self.now)
        self._resolve(seq)

    # -- signals -------------------------------------------------------------

    @precondition(_running)
    @rule(topic=TOPICS, payload=VALUES)
    def receive_signal(self, topic: str, payload: Any) -> None:
        self.signals += 1
        signal_id = f"sig-{self.signals}"
        assert self.run.receive_signal(topic, payload, signal_id, at=self.now)
        self.inbox.setdefault(topic, []).append(signal_id)
        self.signal_topics[signal_id] = topic

    @precondition(lambda self: self.signal_topics)
    @rule(data=st.data(), payload=VALUES)
    def a_redelivered_signal_is_a_no_op(
        self, data: st.DataObject, payload: Any
    ) -> None:
        signal_id = data.draw(st.sampled_from(sorted(self.signal_topics)))
        pending_before = len(self.run.pending_events)
        topic = self.signal_topics[signal_id]
        assert not self.run.receive_signal(topic, payload, signal_id, at=self.now)
        assert len(self.run.pending_events) == pending_before

    @precondition(_running)
    @rule(topic=TOPICS, timeout=st.none() | st.integers(min_value=0, max_value=600))
    def await_signal(self, topic: str, timeout: int | None) -> None:
        seq = self._issue(CommandKind.RECEIVE)
        self.receives[seq] = topic
        timeout_at = None
        if timeout is not None:
            timeout_at = self.now + timedelta(minutes=timeout)
            self.deadlines[seq] = timeout_at
        self.run.await_signal(seq, topic, timeout_at=timeout_at, at=self.now)

    @precondition(
        lambda self: (
            self._running()
            and any(self.inbox.get(topic) for topic in self.receives.values())
        )
    )
    @rule(data=st.data())
    def consume_signal(self, data: st.DataObject) -> None:
        ready = [seq for seq, topic in self.receives.items() if self.inbox.get(topic)]
        seq = data.draw(st.sampled_from(ready))
        topic = self.receives[seq]
        signal = self.run.consume_signal(seq, at=self.now)
        assert signal.signal_id == self.inbox[topic].pop(0)
        self._resolve(seq)

    @precondition(
        lambda self: (
            self._running() and any(seq in self.deadlines for seq in self.receives)
        )
    )
    @rule(data=st.data())
    def time_out_receive(self, data: st.DataObject) -> None:
        timed = [seq for seq in self.receives if seq in self.deadlines]
        seq = data.draw(st.sampled_from(timed))
        self.run.time_out_receive(seq, at=self.now)
        self._resolve(seq)

    @precondition(lambda self: self._running() and self.open)
    @rule(data=st.data(), result=VALUES)
    def resolve_an_open_command(self, data: st.DataObject, result: Any) -> None:
        """Any open command gets its usual outcome, so histories resolve often."""
        seq = data.draw(st.sampled_from(sorted(self.open)))
        kind = self.open[seq]
        if kind is CommandKind.STEP:
            self.run.complete_step(seq, result, at=self.now)
            self.resolved_steps.append(seq)
        elif kind is CommandKind.TIMER:
            self.run.fire_timer(seq, at=self.now)
        elif kind is CommandKind.CHILD:
            self.run.complete_child(seq, result, at=self.now)
        elif self.inbox.get(self.receives[seq]):
            self.run.consume_signal(seq, at=self.now)
            self.inbox[self.receives[seq]].pop(0)
        elif seq in self.deadlines:
            self.run.time_out_receive(seq, at=self.now)
        else:
            return
        self._resolve(seq)

    # -- values, children, patches -------------------------------------------

    @precondition(_running)
    @rule(kind=st.sampled_from(ValueKind), number=st.integers(0, 2**32))
    def record_value(self, kind: ValueKind, number: int) -> None:
        value: Any = {
            ValueKind.NOW: self.now,
            ValueKind.UUID: UUID(int=number),
            ValueKind.RANDOM: number / 2**32,
        }[kind]
        seq = self._issue(CommandKind.VALUE)
        self.run.record_value(seq, kind, value, at=self.now)
        self._resolve(seq)

    @precondition(_running)
    @rule(name=NAMES)
    def start_child(self, name: str) -> None:
        seq = self._issue(CommandKind.CHILD)
        self.run.start_child(seq, f"{self.workflow_id}/{seq}", name, at=self.now)

    @precondition(lambda self: self._running() and self._open(CommandKind.CHILD))
    @rule(data=st.data(), result=VALUES, error=st.none() | ERRORS)
    def finish_child(
        self, data: st.DataObject, result: Any, error: ErrorInfo | None
    ) -> None:
        seq = data.draw(st.sampled_from(self._open(CommandKind.CHILD)))
        if error is None:
            self.run.complete_child(seq, result, at=self.now)
        else:
            self.run.fail_child(seq, error, at=self.now)
        self._resolve(seq)

    @precondition(_running)
    @rule(patch_id=st.sampled_from(["v2", "no-refund"]))
    def record_patch(self, patch_id: str) -> None:
        seq = self._issue(CommandKind.PATCH)
        self.run.record_patch(seq, patch_id, at=self.now)
        self._resolve(seq)
        self.patches.add(patch_id)

    # -- cancellation and the end ----------------------------------------------

    @precondition(_running)
    @rule(reason=st.text(max_size=5))
    def request_cancel(self, reason: str) -> None:
        self.run.request_cancel(reason, at=self.now)

    # Let histories grow first: short finished runs are covered by unit tests.
    @precondition(lambda self: self._running() and self.next_seq > 8)
    @rule(how=st.sampled_from(FINISHED), result=VALUES, error=ERRORS)
    def finish(self, how: RunStatus, result: Any, error: ErrorInfo) -> None:
        if how is RunStatus.COMPLETED:
            self.run.complete(result, at=self.now)
        elif how is RunStatus.FAILED:
            self.run.fail(error, at=self.now)
        else:
            self.run.cancel("done", at=self.now)
        self.status = how

    @precondition(lambda self: not self._running())
    @rule(name=NAMES)
    def a_finished_run_refuses_changes(self, name: str) -> None:
        pending_before = len(self.run.pending_events)
        with pytest.raises(RunFinishedError) as raised:
            self.run.schedule_step(self.next_seq, name, at=self.now)
        assert raised.value.status is self.status
        assert len(self.run.pending_events) == pending_before

    # -- persistence -----------------------------------------------------------

    @rule(snapshot=st.booleans())
    def save_and_reload(self, snapshot: bool) -> None:
        events = self.run.collect_events()
        # A second snapshot of one version is an integrity error, as in any store.
        snapshot = snapshot and self.run.version != self.snapshot_version
        for app in self.apps:
            app.save(*events)
            if snapshot:
                app.take_snapshot(self.workflow_id)
            assert app.repository.get(self.workflow_id) == self.run
        if snapshot:
            self.snapshot_version = self.run.version

    @invariant()
    def rebuilding_from_all_events_gives_the_same_state(self) -> None:
        saved = list(self.apps[0].events.get(self.workflow_id))
        events = [*saved, *self.run.pending_events]
        assert state_of(replay(through_mapper(events))) == state_of(self.run)

    @invariant()
    def the_run_agrees_with_the_model(self) -> None:
        run = self.run
        assert run.status is self.status
        assert run.next_seq == self.next_seq
        assert {r.seq: r.kind for r in run.open_commands} == self.open
        assert run.pending_timers == self.deadlines
        assert {
            topic: [s.signal_id for s in signals]
            for topic, signals in run.pending_signals.items()
        } == {topic: ids for topic, ids in self.inbox.items() if ids}
        assert run.signal_ids == set(self.signal_topics)
        assert run.patches == self.patches
        for record in run.commands:
            assert run.check_replay(record.seq, record.kind, record.name) == record

    def teardown(self) -> None:
        try:
            self.save_and_reload(snapshot=False)
            for app in self.apps:
                app.close()
            reopened = Application[str](env=self.journal_env)
            try:
                assert reopened.repository.get(self.workflow_id) == self.run
            finally:
                reopened.close()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


RunMachine.TestCase.settings = settings(stateful_step_count=50)
TestRandomHistoriesRebuildAndReloadToTheSameState = RunMachine.TestCase
