"""Each misuse raises its own error: a ChronikError and the built-in a caller would
catch, carrying its data, with a message naming the workflow; nothing is recorded."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs
import pytest

from aggregates import (
    AttemptOrderError,
    Command,
    CommandKind,
    ErrorInfo,
    ErrorInfoFormatError,
    NonDeterminismError,
    NoTimeoutError,
    OutcomeAlreadyRecordedError,
    RunError,
    RunFinishedError,
    RunStatus,
    SeqOutOfOrderError,
    SignalIdConflictError,
    SignalNotPendingError,
    TimeArgumentError,
    UnknownSeqError,
    ValueKind,
    ValueTypeError,
    WorkflowIdError,
    WorkflowRun,
    WrongCommandKindError,
)
from journal import ChronikError
from tests.aggregates._support import T0, WORKFLOW_ID, at, started

BOOM = ErrorInfo("TimeoutError", "no answer")
Action = Callable[[WorkflowRun], Any]


@attrs.frozen
class Case:
    """Set a run up, then ``act`` raises ``error`` (also a ``builtin``)."""

    error: type[RunError]
    builtin: type[Exception]
    act: Action
    fragments: tuple[str, ...]
    setup: tuple[Action, ...] = ()


CASES = {
    "run_finished": Case(
        RunFinishedError,
        RuntimeError,
        lambda run: run.schedule_step(1, "charge_card", at=at(2)),
        ("schedule step 'charge_card' at seq 1", "already completed", "new run"),
        setup=(lambda run: run.complete("done", at=at(1)),),
    ),
    "signal_after_finish": Case(
        RunFinishedError,
        RuntimeError,
        lambda run: run.receive_signal("approval", 1, "s1", at=at(2)),
        ("receive signal 's1'", "already cancelled"),
        setup=(lambda run: run.cancel("operator", at=at(1)),),
    ),
    "cancel_request_after_finish": Case(
        RunFinishedError,
        RuntimeError,
        lambda run: run.request_cancel("late", at=at(2)),
        ("request cancellation", "already failed"),
        setup=(lambda run: run.fail(BOOM, at=at(1)),),
    ),
    "seq_out_of_order": Case(
        SeqOutOfOrderError,
        ValueError,
        lambda run: run.start_timer(3, at(60), at=at(1)),
        ("next command at seq 1, not at seq 3", "no gaps"),
    ),
    "seq_reused": Case(
        SeqOutOfOrderError,
        ValueError,
        lambda run: run.schedule_step(1, "again", at=at(2)),
        ("next command at seq 2, not at seq 1",),
        setup=(lambda run: run.schedule_step(1, "charge_card", at=at(1)),),
    ),
    "unknown_seq": Case(
        UnknownSeqError,
        LookupError,
        lambda run: run.complete_step(5, "x", at=at(1)),
        ("no command at seq 5", "no command was issued yet", "scheduled"),
    ),
    "unknown_seq_after_some": Case(
        UnknownSeqError,
        LookupError,
        lambda run: run.fire_timer(0, at=at(2)),
        ("no command at seq 0", "seqs 1..1"),
        setup=(lambda run: run.start_timer(1, at(60), at=at(1)),),
    ),
    "wrong_kind": Case(
        WrongCommandKindError,
        ValueError,
        lambda run: run.complete_step(1, "x", at=at(2)),
        ("holds a timer at seq 1, not a step",),
        setup=(lambda run: run.start_timer(1, at(60), at=at(1)),),
    ),
    "outcome_twice": Case(
        OutcomeAlreadyRecordedError,
        ValueError,
        lambda run: run.complete_step(1, "again", at=at(3)),
        ("step 'charge_card' at seq 1", "exactly once"),
        setup=(
            lambda run: run.schedule_step(1, "charge_card", at=at(1)),
            lambda run: run.complete_step(1, "first", at=at(2)),
        ),
    ),
    "failure_after_outcome": Case(
        OutcomeAlreadyRecordedError,
        ValueError,
        lambda run: run.fail_step(1, BOOM, attempt=2, final=True, at=at(3)),
        ("already recorded the outcome",),
        setup=(
            lambda run: run.schedule_step(1, "charge_card", at=at(1)),
            lambda run: run.complete_step(1, "first", at=at(2)),
        ),
    ),
    "attempt_not_after_last": Case(
        AttemptOrderError,
        ValueError,
        lambda run: run.fail_step(1, BOOM, attempt=2, final=False, at=at(3)),
        ("attempt 2", "seq 1", "last recorded attempt 2"),
        setup=(
            lambda run: run.schedule_step(1, "charge_card", at=at(1)),
            lambda run: run.fail_step(1, BOOM, attempt=2, final=False, at=at(2)),
        ),
    ),
    "attempt_zero": Case(
        AttemptOrderError,
        ValueError,
        lambda run: run.fail_step(1, BOOM, attempt=0, final=True, at=at(2)),
        ("attempt 0", "count up from 1"),
        setup=(lambda run: run.schedule_step(1, "charge_card", at=at(1)),),
    ),
    "signal_not_pending": Case(
        SignalNotPendingError,
        LookupError,
        lambda run: run.consume_signal(1, at=at(3)),
        ("no pending signal on topic 'approval'", "receive at seq 1"),
        setup=(
            lambda run: run.receive_signal("other", 1, "s1", at=at(1)),
            lambda run: run.await_signal(1, "approval", at=at(2)),
        ),
    ),
    "signal_id_on_other_topic": Case(
        SignalIdConflictError,
        ValueError,
        lambda run: run.receive_signal("cancel", 2, "s1", at=at(2)),
        ("'s1'", "topic 'approval'", "not on topic 'cancel'", "fresh id"),
        setup=(lambda run: run.receive_signal("approval", 1, "s1", at=at(1)),),
    ),
    "receive_without_timeout": Case(
        NoTimeoutError,
        ValueError,
        lambda run: run.time_out_receive(1, at=at(2)),
        ("receive at seq 1", "topic 'approval'", "has no timeout"),
        setup=(lambda run: run.await_signal(1, "approval", at=at(1)),),
    ),
    "random_not_a_float": Case(
        ValueTypeError,
        TypeError,
        lambda run: run.record_value(1, ValueKind.RANDOM, "0.5", at=at(1)),
        ("random value at seq 1", "must be a float, got a str"),
    ),
    "now_naive": Case(
        ValueTypeError,
        TypeError,
        lambda run: run.record_value(1, ValueKind.NOW, datetime(2026, 1, 1), at=at(1)),
        ("now value", "timezone-aware", "naive datetime"),
    ),
    "naive_at": Case(
        TimeArgumentError,
        ValueError,
        lambda run: run.schedule_step(1, "charge_card", at=datetime(2026, 1, 1)),
        ("at=datetime.datetime(2026, 1, 1, 0, 0)", "naive", "timezone-aware"),
    ),
    "fire_at_not_a_datetime": Case(
        TimeArgumentError,
        ValueError,
        lambda run: run.start_timer(1, "tomorrow", at=at(1)),  # type: ignore[arg-type]
        ("fire_at='tomorrow'", "is a str, not a datetime"),
    ),
    "non_determinism": Case(
        NonDeterminismError,
        RuntimeError,
        lambda run: run.check_replay(1, CommandKind.TIMER),
        (
            "not deterministic at seq 1",
            "history holds step 'charge_card'",
            "asks for a timer",
            "ctx.patched",
        ),
        setup=(lambda run: run.schedule_step(1, "charge_card", at=at(1)),),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_misuse_raises_its_error_naming_the_workflow_and_records_nothing(
    case: Case,
) -> None:
    run = started()
    for step in case.setup:
        step(run)
    run.collect_events()
    before = copy.deepcopy(run)
    with pytest.raises(case.error) as raised:
        case.act(run)
    error = raised.value
    assert isinstance(error, ChronikError)
    assert isinstance(error, case.builtin)
    message = str(error)
    assert repr(WORKFLOW_ID) in message
    for fragment in case.fragments:
        assert fragment in message
    assert getattr(error, "workflow_id") == WORKFLOW_ID  # noqa: B009
    assert run.collect_events() == []
    assert run == before


def test_an_empty_workflow_id_is_refused() -> None:
    with pytest.raises(WorkflowIdError, match="'' is empty") as raised:
        WorkflowRun.start("", "process_order", at=T0)
    assert isinstance(raised.value, ValueError)


def test_a_workflow_id_that_is_not_a_str_is_refused() -> None:
    with pytest.raises(WorkflowIdError, match="is a UUID; pass a non-empty str"):
        WorkflowRun.start(UUID(int=1), "process_order", at=T0)  # type: ignore[arg-type]


def test_a_naive_start_time_is_refused() -> None:
    with pytest.raises(TimeArgumentError, match="naive"):
        WorkflowRun.start(WORKFLOW_ID, "process_order", at=datetime(2026, 1, 1))


def test_error_info_from_bad_data_says_what_is_missing() -> None:
    with pytest.raises(ErrorInfoFormatError, match="has no 'message' key") as raised:
        ErrorInfo.from_dict({"type": "ValueError"})
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, RunError)


ERRORS = [
    WorkflowIdError("", "is empty"),
    TimeArgumentError(WORKFLOW_ID, "at", datetime(2026, 1, 1)),
    RunFinishedError(WORKFLOW_ID, RunStatus.COMPLETED, "fire a timer at seq 2"),
    SeqOutOfOrderError(WORKFLOW_ID, 3, 1),
    UnknownSeqError(WORKFLOW_ID, 5, 1),
    WrongCommandKindError(WORKFLOW_ID, 1, CommandKind.STEP, Command(CommandKind.TIMER)),
    OutcomeAlreadyRecordedError(WORKFLOW_ID, 1, Command(CommandKind.STEP, "charge")),
    AttemptOrderError(WORKFLOW_ID, 1, 2, 2),
    SignalNotPendingError(WORKFLOW_ID, 1, "approval"),
    SignalIdConflictError(WORKFLOW_ID, "s1", "approval", "cancel"),
    NoTimeoutError(WORKFLOW_ID, 1, "approval"),
    ValueTypeError(WORKFLOW_ID, 1, ValueKind.RANDOM, "a float", "str"),
    NonDeterminismError(
        WORKFLOW_ID, 1, Command(CommandKind.STEP, "a"), Command(CommandKind.TIMER)
    ),
    ErrorInfoFormatError({"type": "X"}, "has no 'message' key"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_data_and_message(error: RunError) -> None:
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is type(error)
    assert copied.args == error.args
    assert str(copied) == str(error)
    assert vars(copied) == vars(error)


def test_every_error_of_the_package_is_covered_here() -> None:
    import aggregates

    exported = {
        obj
        for name in aggregates.__all__
        if isinstance(obj := getattr(aggregates, name), type)
        and issubclass(obj, RunError)
        and obj is not RunError
    }
    assert exported == {type(error) for error in ERRORS}


def test_non_determinism_error_carries_what_history_holds_and_what_was_asked() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    with pytest.raises(NonDeterminismError) as raised:
        run.check_replay(1, CommandKind.STEP, "refund_card")
    error = raised.value
    assert (error.workflow_id, error.seq) == (WORKFLOW_ID, 1)
    assert error.recorded == Command(CommandKind.STEP, "charge_card")
    assert error.requested == Command(CommandKind.STEP, "refund_card")
    assert "holds step 'charge_card', but the code now asks for step 'refund_card'" in (
        str(error)
    )
