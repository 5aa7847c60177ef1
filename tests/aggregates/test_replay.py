"""check_replay compares what the code asks for with what history holds."""

from __future__ import annotations

import pytest

from aggregates import (
    Command,
    CommandKind,
    NonDeterminismError,
    OutcomeKind,
    SeqOutOfOrderError,
    UnknownSeqError,
    ValueKind,
)
from tests.aggregates._support import at, full_run, started


def test_nothing_is_recorded_yet_at_the_next_seq() -> None:
    run = started()
    assert run.check_replay(1, CommandKind.STEP, "charge_card") is None
    run.schedule_step(1, "charge_card", at=at(1))
    assert run.check_replay(2, CommandKind.TIMER) is None


def test_a_matching_command_with_an_outcome_gives_the_outcome_back() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    run.complete_step(1, {"id": "ch_1"}, at=at(2))
    record = run.check_replay(1, CommandKind.STEP, "charge_card")
    assert record is not None
    assert record.outcome is not None
    assert (record.outcome.kind, record.outcome.value) == (
        OutcomeKind.COMPLETED,
        {"id": "ch_1"},
    )


def test_a_matching_open_command_has_no_outcome_yet() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    record = run.check_replay(1, CommandKind.STEP, "charge_card")
    assert record is not None
    assert record.is_open


def test_every_command_of_a_full_history_replays_against_itself() -> None:
    run = full_run()
    for record in run.commands:
        assert run.check_replay(record.seq, record.kind, record.name) == record


def test_arguments_are_not_compared_on_replay() -> None:
    run = started()
    run.schedule_step(1, "charge_card", ["o-1", 100], at=at(1))
    assert run.check_replay(1, CommandKind.STEP, "charge_card") is not None


def test_a_value_kind_may_be_passed_as_the_enum() -> None:
    run = started()
    run.record_value(1, ValueKind.RANDOM, 0.5, at=at(1))
    assert run.check_replay(1, CommandKind.VALUE, ValueKind.RANDOM) is not None


@pytest.mark.parametrize(
    ("kind", "name", "requested"),
    [
        (CommandKind.TIMER, None, "a timer"),
        (CommandKind.STEP, "refund_card", "step 'refund_card'"),
        (CommandKind.RECEIVE, "charge_card", "receive 'charge_card'"),
    ],
)
def test_another_command_at_a_recorded_seq_is_non_determinism(
    kind: CommandKind, name: str | None, requested: str
) -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    with pytest.raises(NonDeterminismError) as raised:
        run.check_replay(1, kind, name)
    assert raised.value.recorded == Command(CommandKind.STEP, "charge_card")
    assert raised.value.requested == Command(kind, name)
    assert f"but the code now asks for {requested}" in str(raised.value)


def test_a_seq_past_the_next_one_is_out_of_order() -> None:
    run = started()
    with pytest.raises(SeqOutOfOrderError) as raised:
        run.check_replay(2, CommandKind.STEP, "charge_card")
    assert (raised.value.seq, raised.value.expected) == (2, 1)


def test_a_seq_below_one_is_unknown() -> None:
    run = started()
    run.schedule_step(1, "charge_card", at=at(1))
    with pytest.raises(UnknownSeqError):
        run.check_replay(0, CommandKind.STEP, "charge_card")


def test_a_finished_run_can_still_be_replayed() -> None:
    run = full_run(end="cancel")
    assert run.check_replay(1, CommandKind.STEP, "charge_card") is not None
