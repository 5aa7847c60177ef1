"""Each command records one event, and each event changes the state as documented."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from aggregates import (
    Cancelled,
    CancelRequested,
    ChildFinished,
    ChildStarted,
    Command,
    CommandKind,
    Completed,
    ErrorInfo,
    Failed,
    MessagePublished,
    NonDeterminismError,
    OutcomeKind,
    PatchRecorded,
    ReceiveTimedOut,
    RunEvent,
    RunStatus,
    SignalAwaited,
    SignalConsumed,
    SignalReceived,
    Started,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    ValueKind,
    ValueRecorded,
    WorkflowRun,
)
from tests.aggregates._support import (
    T0,
    WORKFLOW_ID,
    at,
    event_classes,
    full_run,
    replay,
    started,
    through_mapper,
)

BOOM = ErrorInfo("TimeoutError", "no answer", retryable=True)


def _only_event(run: WorkflowRun) -> Any:
    events = run.collect_events()
    assert len(events) == 1, events
    return events[0]


def test_start_records_started_with_name_args_kwargs_parent_and_start_time() -> None:
    run = WorkflowRun.start(
        "child-1", "ship", ("o-1",), {"fast": True}, parent_id="order-o-1", at=T0
    )
    event = _only_event(run)
    assert type(event) is Started
    assert (event.originator_id, event.originator_version) == ("child-1", 1)
    assert (event.name, event.args, event.kwargs) == ("ship", ["o-1"], {"fast": True})
    assert event.parent_id == "order-o-1"
    assert event.timestamp == T0
    assert event.originator_topic == "aggregates:WorkflowRun"


def test_started_run_is_running_with_its_call_and_no_commands() -> None:
    run = started()
    assert run.id == run.workflow_id == WORKFLOW_ID
    assert (run.name, run.args, run.kwargs) == (
        "process_order",
        ("o-1", 100),
        {"rush": False},
    )
    assert run.parent_id is None
    assert run.started_at == T0
    assert run.status is RunStatus.RUNNING
    assert not run.is_finished
    assert run.next_seq == 1
    assert run.commands == ()
    assert run.result is None
    assert run.error is None


def test_schedule_step_records_step_scheduled_and_opens_the_step() -> None:
    run = started()
    run.schedule_step(1, "charge_card", ("o-1", 100), at=at(1))
    event = _only_event(run)
    assert type(event) is StepScheduled
    assert (event.seq, event.name, event.args, event.timestamp) == (
        1,
        "charge_card",
        ["o-1", 100],
        at(1),
    )
    record = run.command_at(1)
    assert record.command == Command(CommandKind.STEP, "charge_card")
    assert record.args == ("o-1", 100)
    assert record.issued_at == at(1)
    assert record.is_open
    assert run.open_commands == (record,)
    assert run.next_seq == 2


def test_complete_step_records_the_result_as_the_outcome() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    run.collect_events()
    run.complete_step(1, {"id": "ch_1"}, at=at(2))
    event = _only_event(run)
    assert type(event) is StepCompleted
    assert (event.seq, event.result) == (1, {"id": "ch_1"})
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.kind, outcome.value, outcome.at) == (
        OutcomeKind.COMPLETED,
        {"id": "ch_1"},
        at(2),
    )
    assert run.open_commands == ()


def test_step_failure_that_is_not_final_counts_the_attempt_and_keeps_it_open() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    run.collect_events()
    run.fail_step(1, BOOM, attempt=1, final=False, at=at(2))
    event = _only_event(run)
    assert type(event) is StepFailed
    assert (event.seq, event.attempt, event.final) == (1, 1, False)
    assert event.error == BOOM.to_dict()
    record = run.command_at(1)
    assert (record.attempts, record.last_error, record.outcome) == (1, BOOM, None)


def test_final_step_failure_is_the_outcome_with_the_error_as_plain_data() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    run.fail_step(1, BOOM, attempt=5, final=True, at=at(2))
    event = run.collect_events()[-1]
    assert isinstance(event, StepFailed)
    assert type(event.error) is dict
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.kind, outcome.error, outcome.value) == (
        OutcomeKind.FAILED,
        BOOM,
        None,
    )
    assert run.command_at(1).attempts == 5


def test_started_timer_is_pending_until_it_fires() -> None:
    run = started()
    run.start_timer(1, at(60), at=at(1))
    started_event = _only_event(run)
    assert type(started_event) is TimerStarted
    assert (started_event.seq, started_event.fire_at) == (1, at(60))
    assert run.pending_timers == {1: at(60)}
    assert run.command_at(1).command == Command(CommandKind.TIMER)
    run.fire_timer(1, at=at(60))
    fired = _only_event(run)
    assert type(fired) is TimerFired
    assert fired.seq == 1
    assert run.pending_timers == {}
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.kind, outcome.value) == (OutcomeKind.COMPLETED, None)


def test_received_signals_wait_per_topic_in_acknowledged_order() -> None:
    run = started()
    assert run.receive_signal("approval", {"n": 1}, "s1", at=at(1))
    event = _only_event(run)
    assert type(event) is SignalReceived
    assert (event.topic, event.payload, event.signal_id) == ("approval", {"n": 1}, "s1")
    run.receive_signal("other", "x", "s2", at=at(2))
    run.receive_signal("approval", {"n": 2}, "s3", at=at(3))
    pending = run.pending_signals
    assert [s.signal_id for s in pending["approval"]] == ["s1", "s3"]
    assert [s.payload for s in pending["other"]] == ["x"]
    assert pending["approval"][0].received_at == at(1)
    assert run.signal_ids == {"s1", "s2", "s3"}
    assert run.next_seq == 1  # a signal is not a command


def test_a_repeated_signal_id_on_the_same_topic_is_a_no_op() -> None:
    run = started()
    run.receive_signal("approval", {"approved": True}, "s1", at=at(1))
    run.collect_events()
    assert run.receive_signal("approval", {"approved": False}, "s1", at=at(2)) is False
    assert run.collect_events() == []
    assert [s.payload for s in run.pending_signals["approval"]] == [{"approved": True}]


def test_a_signal_id_stays_known_after_its_signal_is_consumed() -> None:
    run = started()
    run.receive_signal("approval", 1, "s1", at=at(1))
    run.await_signal(1, "approval", at=at(2))
    run.consume_signal(1, at=at(2))
    run.collect_events()
    assert run.receive_signal("approval", 1, "s1", at=at(3)) is False
    assert run.collect_events() == []
    assert run.pending_signals == {}


def test_await_signal_with_a_timeout_is_a_pending_timer() -> None:
    run = started()
    run.await_signal(1, "approval", timeout_at=at(60), at=at(1))
    event = _only_event(run)
    assert type(event) is SignalAwaited
    assert (event.seq, event.topic, event.timeout_at) == (1, "approval", at(60))
    assert run.command_at(1).command == Command(CommandKind.RECEIVE, "approval")
    assert run.pending_timers == {1: at(60)}


def test_await_signal_without_a_timeout_sets_no_timer() -> None:
    run = started()
    run.await_signal(1, "approval", at=at(1))
    assert run.pending_timers == {}
    assert run.command_at(1).fire_at is None


def test_consume_signal_hands_the_oldest_pending_signal_to_the_receive() -> None:
    run = started()
    run.receive_signal("approval", "first", "s1", at=at(1))
    run.receive_signal("approval", "second", "s2", at=at(2))
    run.await_signal(1, "approval", timeout_at=at(60), at=at(3))
    run.collect_events()
    signal = run.consume_signal(1, at=at(4))
    assert (signal.signal_id, signal.payload, signal.topic) == (
        "s1",
        "first",
        "approval",
    )
    event = _only_event(run)
    assert type(event) is SignalConsumed
    assert (event.seq, event.topic, event.signal_id) == (1, "approval", "s1")
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.value, outcome.signal_id) == ("first", "s1")
    assert [s.signal_id for s in run.pending_signals["approval"]] == ["s2"]
    assert run.pending_timers == {}


def test_the_last_consumed_signal_removes_its_topic_from_the_pending_ones() -> None:
    run = started()
    run.receive_signal("approval", "only", "s1", at=at(1))
    run.await_signal(1, "approval", at=at(2))
    run.consume_signal(1, at=at(3))
    assert run.pending_signals == {}


def test_a_receive_that_times_out_has_a_timed_out_outcome() -> None:
    run = started()
    run.await_signal(1, "approval", timeout_at=at(60), at=at(1))
    run.collect_events()
    run.time_out_receive(1, at=at(60))
    event = _only_event(run)
    assert type(event) is ReceiveTimedOut
    assert event.seq == 1
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert outcome.kind is OutcomeKind.TIMED_OUT
    assert run.pending_timers == {}


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ValueKind.NOW, at(5)),
        (ValueKind.UUID, UUID(int=7)),
        (ValueKind.RANDOM, 0.25),
    ],
)
def test_a_recorded_value_is_its_own_outcome(kind: ValueKind, value: Any) -> None:
    run = started()
    run.record_value(1, kind, value, at=at(1))
    event = _only_event(run)
    assert type(event) is ValueRecorded
    assert (event.seq, event.kind, event.value) == (1, kind.value, value)
    record = run.command_at(1)
    assert record.command == Command(CommandKind.VALUE, kind)
    assert record.outcome is not None
    assert record.outcome.value == value
    assert run.next_seq == 2


def test_a_child_run_is_open_until_it_finishes_with_its_result() -> None:
    run = started()
    run.start_child(1, "order-o-1/ship", "ship", at=at(1))
    event = _only_event(run)
    assert type(event) is ChildStarted
    assert (event.seq, event.child_id, event.name) == (1, "order-o-1/ship", "ship")
    assert run.command_at(1).child_id == "order-o-1/ship"
    assert run.command_at(1).is_open
    run.complete_child(1, {"tracking": "T1"}, at=at(2))
    finished = _only_event(run)
    assert type(finished) is ChildFinished
    assert (finished.result, finished.error) == ({"tracking": "T1"}, None)
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.kind, outcome.value) == (OutcomeKind.COMPLETED, {"tracking": "T1"})


def test_a_failed_child_run_has_its_error_as_the_outcome() -> None:
    run = started()
    run.start_child(1, "order-o-1/ship", "ship", at=at(1))
    run.collect_events()
    run.fail_child(1, BOOM, at=at(2))
    event = _only_event(run)
    assert type(event) is ChildFinished
    assert (event.result, event.error) == (None, BOOM.to_dict())
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert (outcome.kind, outcome.error) == (OutcomeKind.FAILED, BOOM)


def test_a_recorded_patch_is_remembered_and_takes_a_seq() -> None:
    run = started()
    run.record_patch(1, "no-refund", at=at(1))
    event = _only_event(run)
    assert type(event) is PatchRecorded
    assert (event.seq, event.patch_id) == (1, "no-refund")
    assert run.patches == {"no-refund"}
    assert run.command_at(1).command == Command(CommandKind.PATCH, "no-refund")
    assert run.next_seq == 2


def test_a_published_message_is_recorded_with_its_seq_and_answers_its_id() -> None:
    run = started()
    assert run.publish(1, "order.created", {"id": 7}, "order-7", at=at(1)) == (
        f"{run.id}:1"
    )
    event = _only_event(run)
    assert type(event) is MessagePublished
    assert (event.seq, event.topic, event.payload, event.key) == (
        1,
        "order.created",
        {"id": 7},
        "order-7",
    )
    assert run.command_at(1).command == Command(CommandKind.PUBLISH, "order.created")
    outcome = run.command_at(1).outcome
    assert outcome is not None
    assert outcome.kind is OutcomeKind.COMPLETED
    assert run.next_seq == 2
    assert run.check_replay(1, CommandKind.PUBLISH, "order.created") is not None
    with pytest.raises(NonDeterminismError):
        run.check_replay(1, CommandKind.PUBLISH, "order.shipped")


@pytest.mark.parametrize(
    ("topic", "key"), [("", None), (None, None), ("t", ""), ("t", 5)]
)
def test_a_message_needs_a_topic_and_a_str_key_or_none(topic: Any, key: Any) -> None:
    run = started()
    with pytest.raises(TypeError, match=r"topic|key"):
        run.publish(1, topic, {}, key, at=at(1))
    assert list(run.collect_events()) == []


def test_a_cancel_request_keeps_the_run_running_and_a_second_is_a_no_op() -> None:
    run = started()
    assert run.request_cancel("customer asked", at=at(1)) is True
    event = _only_event(run)
    assert type(event) is CancelRequested
    assert event.reason == "customer asked"
    assert run.cancel_requested
    assert run.cancel_reason == "customer asked"
    assert run.status is RunStatus.RUNNING
    assert run.request_cancel("again", at=at(2)) is False
    assert run.collect_events() == []
    assert run.cancel_reason == "customer asked"


def test_completed_run_holds_its_result() -> None:
    run = started()
    run.complete({"order": "o-1"}, at=at(1))
    event = _only_event(run)
    assert type(event) is Completed
    assert event.result == {"order": "o-1"}
    assert (run.status, run.result, run.is_finished) == (
        RunStatus.COMPLETED,
        {"order": "o-1"},
        True,
    )


def test_failed_run_holds_its_error_as_plain_data() -> None:
    run = started()
    run.fail(BOOM, at=at(1))
    event = _only_event(run)
    assert type(event) is Failed
    assert event.error == BOOM.to_dict()
    assert (run.status, run.error) == (RunStatus.FAILED, BOOM)


def test_cancelled_run_holds_its_reason() -> None:
    run = started()
    run.cancel("operator", at=at(1))
    event = _only_event(run)
    assert type(event) is Cancelled
    assert event.reason == "operator"
    assert (run.status, run.cancel_reason) == (RunStatus.CANCELLED, "operator")


def test_the_three_example_runs_hold_every_event_class() -> None:
    seen = {
        type(event)
        for end in ("complete", "fail", "cancel")
        for event in full_run(end=end).collect_events()
    }
    assert seen == event_classes()


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_every_event_round_trips_through_the_journal_mapper(end: str) -> None:
    events = full_run(end=end).collect_events()
    assert through_mapper(events) == list(events)


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
def test_replaying_the_events_rebuilds_the_same_state(end: str) -> None:
    run = full_run(end=end)
    events = run.collect_events()
    assert replay(through_mapper(events)) == run
    assert replay(events) == run


def test_every_event_is_stamped_with_the_time_the_caller_passed() -> None:
    run = full_run()
    events = run.collect_events()
    stamps = [event.timestamp for event in events]
    assert stamps[0] == T0
    assert all(isinstance(stamp, datetime) for stamp in stamps)
    assert stamps == sorted(stamps)
    assert run.modified_on == stamps[-1]


def test_event_topics_name_the_public_package() -> None:
    for cls in event_classes():
        topic = get_topic(cls)
        assert topic == f"aggregates:{cls.__name__}"
        assert resolve_topic(topic) is cls
    assert get_topic(WorkflowRun) == "aggregates:WorkflowRun"


def test_an_event_without_a_time_is_refused() -> None:
    with pytest.raises(TypeError, match="pass at="):
        RunEvent.create_timestamp()


def test_an_event_class_without_an_applier_is_an_error_naming_it() -> None:
    run = started()
    event = RunEvent(originator_id=WORKFLOW_ID, originator_version=2, timestamp=T0)
    with pytest.raises(TypeError, match="RunEvent"):
        event.mutate(run)
