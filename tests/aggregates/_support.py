"""Shared helpers: a fixed clock, a run with every kind of event, and replay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Mapper

from aggregates import ErrorInfo, RunEvent, ValueKind, WorkflowRun
from journal import MsgpackTranscoder

WORKFLOW_ID = "order-o-1"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


def started(workflow_id: str = WORKFLOW_ID) -> WorkflowRun:
    """A new run of ``process_order("o-1", 100)``, its Started event collected."""
    run = WorkflowRun.start(
        workflow_id, "process_order", ["o-1", 100], {"rush": False}, at=T0
    )
    run.collect_events()
    return run


def full_run(workflow_id: str = WORKFLOW_ID, end: str = "complete") -> WorkflowRun:
    """A run with every kind of event pending, ended by ``end``.

    ``end`` is ``complete``, ``fail`` or ``cancel``: the three runs together hold
    every event class.
    """
    run = WorkflowRun.start(
        workflow_id, "process_order", ["o-1", 100], {"rush": False}, at=T0
    )
    declined = ErrorInfo("CardDeclined", "declined", "payments", retryable=True)
    run.schedule_step(1, "charge_card", ["o-1", 100], at=at(1))
    run.fail_step(1, declined, attempt=1, final=False, at=at(2))
    run.complete_step(1, {"id": "ch_1"}, at=at(3))
    run.start_timer(2, at(60), at=at(4))
    run.fire_timer(2, at=at(60))
    run.receive_signal("approval", {"approved": True}, "sig-1", at=at(61))
    run.await_signal(3, "approval", timeout_at=at(120), at=at(62))
    run.consume_signal(3, at=at(62))
    run.await_signal(4, "approval", timeout_at=at(130), at=at(63))
    run.time_out_receive(4, at=at(130))
    run.record_value(5, ValueKind.UUID, UUID(int=5), at=at(131))
    run.start_child(6, "order-o-1/child", "ship", at=at(132))
    run.complete_child(6, {"tracking": "T1"}, at=at(140))
    run.record_patch(7, "no-refund", at=at(141))
    run.schedule_step(8, "refund_card", ["ch_1"], at=at(142))
    run.fail_step(8, declined, attempt=3, final=True, at=at(143))
    run.publish(9, "order.refund_failed", {"order": "o-1"}, "o-1", at=at(143))
    run.request_cancel("customer asked", at=at(144))
    if end == "complete":
        run.complete({"order": "o-1"}, at=at(145))
    elif end == "fail":
        run.fail(ErrorInfo("StepFailed", "refund failed", "actors"), at=at(145))
    else:
        run.cancel("customer asked", at=at(145))
    return run


def mapper() -> Mapper[str]:
    return Mapper(transcoder=MsgpackTranscoder())


def through_mapper(
    events: Iterable[Any], using: Mapper[str] | None = None
) -> list[Any]:
    """Each event stored and read back as the journal's mapper would."""
    using = using or mapper()
    return [using.to_domain_event(using.to_stored_event(event)) for event in events]


def replay(events: Sequence[CanMutateAggregate[str]]) -> WorkflowRun:
    """The aggregate rebuilt from ``events`` alone."""
    run: WorkflowRun | None = None
    for event in events:
        run = event.mutate(run)
    assert isinstance(run, WorkflowRun)
    return run


def event_classes() -> set[type[RunEvent]]:
    """Every concrete event class of a run."""
    found: set[type[RunEvent]] = set()
    pending: list[type[RunEvent]] = [RunEvent]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def state_of(run: WorkflowRun) -> dict[str, Any]:
    """The run's whole state, without the events it has not handed out yet."""
    return {k: v for k, v in vars(run).items() if k != "_pending_events"}
