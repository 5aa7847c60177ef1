"""A run saved through an eventsourcing Application, with a snapshot taken mid-history
and more events after it, reloads with exactly the state it had in memory."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Application

from aggregates import ErrorInfo, RunEvent, RunSnapshot, ValueKind, WorkflowRun
from tests.aggregates._support import WORKFLOW_ID, at, started


def _journal_env(path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "journal",
        "LMDB_PATH": str(path),
        "IS_SNAPSHOTTING_ENABLED": "y",
    }


POPO_ENV = {"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "y"}


@pytest.fixture
def journal_app(tmp_path: Path) -> Iterator[Application[str]]:
    app = Application[str](env=_journal_env(tmp_path))
    yield app
    app.close()


def _first_half(run: WorkflowRun) -> None:
    run.schedule_step(1, "charge_card", ["o-1", 100], at=at(1))
    run.fail_step(1, ErrorInfo("Timeout", "slow"), attempt=1, final=False, at=at(2))
    run.receive_signal("approval", {"approved": True}, "sig-1", at=at(3))
    run.receive_signal("approval", {"approved": False}, "sig-2", at=at(4))
    run.start_timer(2, at(60), at=at(5))
    run.await_signal(3, "approval", timeout_at=at(120), at=at(6))


def _second_half(run: WorkflowRun) -> None:
    run.complete_step(1, {"id": "ch_1"}, at=at(7))
    run.consume_signal(3, at=at(8))
    run.fire_timer(2, at=at(60))
    run.record_value(4, ValueKind.UUID, UUID(int=4), at=at(61))
    run.record_value(5, ValueKind.NOW, at(62), at=at(62))
    run.start_child(6, "order-o-1/ship", "ship", at=at(63))
    run.record_patch(7, "v2", at=at(64))
    run.request_cancel("customer", at=at(65))


def _save_snapshot_continue(app: Application[str]) -> tuple[WorkflowRun, int]:
    """Save the first half, snapshot it, save the second half; the snapshot version."""
    run = WorkflowRun.start(WORKFLOW_ID, "process_order", ["o-1", 100], at=at(0))
    _first_half(run)
    app.save(run)
    app.take_snapshot(WORKFLOW_ID)
    snapshot_version = run.version
    _second_half(run)
    app.save(run)
    return run, snapshot_version


def test_run_reloaded_from_the_journal_after_a_snapshot_equals_the_run_in_memory(
    tmp_path: Path,
) -> None:
    app = Application[str](env=_journal_env(tmp_path))
    run, snapshot_version = _save_snapshot_continue(app)
    app.close()

    reopened = Application[str](env=_journal_env(tmp_path))
    try:
        assert reopened.snapshots is not None
        snapshots = list(reopened.snapshots.get(WORKFLOW_ID))
        assert [s.originator_version for s in snapshots] == [snapshot_version]
        later = list(reopened.events.get(WORKFLOW_ID, gt=snapshot_version))
        assert len(later) == run.version - snapshot_version > 0

        reloaded: WorkflowRun = reopened.repository.get(WORKFLOW_ID)
        assert reloaded == run
        assert reloaded.commands == run.commands
        assert reloaded.pending_signals == run.pending_signals
        assert reloaded.pending_timers == run.pending_timers

        assert isinstance(snapshots[0], RunSnapshot)
        from_snapshot: WorkflowRun | None = snapshots[0].mutate(None)  # type: ignore[assignment]
        for event in later:
            assert isinstance(event, RunEvent)
            from_snapshot = event.mutate(from_snapshot)
        assert from_snapshot == run
    finally:
        reopened.close()


def test_run_reloaded_through_popo_after_a_snapshot_equals_the_run_in_memory() -> None:
    app = Application[str](env=POPO_ENV)
    try:
        run, snapshot_version = _save_snapshot_continue(app)
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(WORKFLOW_ID)] == [
            snapshot_version
        ]
        assert app.repository.get(WORKFLOW_ID) == run
    finally:
        app.close()


def test_a_snapshot_of_the_latest_version_reloads_a_finished_run(
    journal_app: Application[str],
) -> None:
    run = WorkflowRun.start(WORKFLOW_ID, "process_order", at=at(0))
    _first_half(run)
    _second_half(run)
    run.complete({"order": "o-1"}, at=at(99))
    journal_app.save(run)
    journal_app.take_snapshot(WORKFLOW_ID)
    assert journal_app.repository.get(WORKFLOW_ID) == run


def test_msgpack_only_values_survive_a_snapshot_in_the_journal(
    journal_app: Application[str],
) -> None:
    run = WorkflowRun.start(
        WORKFLOW_ID,
        "process_order",
        [("o-1", 2), b"\x00raw"],
        {"amount": Decimal("12.50"), "big": 2**70},
        at=at(0),
    )
    run.schedule_step(1, "charge_card", [("a", (1, 2))], at=at(1))
    journal_app.save(run)
    journal_app.take_snapshot(WORKFLOW_ID)
    run.complete_step(1, {"pair": (1, "x")}, at=at(2))
    journal_app.save(run)
    reloaded: WorkflowRun = journal_app.repository.get(WORKFLOW_ID)
    assert reloaded == run
    assert reloaded.args == (("o-1", 2), b"\x00raw")


def test_a_snapshot_is_stamped_with_the_last_event_time_not_the_clock() -> None:
    run = started()
    _first_half(run)
    snapshot = RunSnapshot.take(run)
    assert snapshot.timestamp == run.modified_on == at(6)
    assert (snapshot.originator_id, snapshot.originator_version) == (
        WORKFLOW_ID,
        run.version,
    )
    assert snapshot.topic == "aggregates:WorkflowRun"


def test_a_snapshot_holds_the_run_state_without_eventsourcing_bookkeeping() -> None:
    run = started()
    _first_half(run)
    run.collect_events()
    state = RunSnapshot.take(run).state
    assert not {"_id", "_version", "_pending_events"} & set(state)
    assert state["_name"] == "process_order"
    assert RunSnapshot.take(run).mutate(None) == run


def test_a_snapshot_of_something_else_than_an_aggregate_is_refused() -> None:
    with pytest.raises(TypeError, match="not an eventsourcing BaseAggregate"):
        RunSnapshot.take(object())  # type: ignore[arg-type]
