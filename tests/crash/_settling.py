"""Where a run stands, read from its history: whether it can still move by
itself (``busy``), and where a run that waits on input differs from the model
(``differences``). The state machine settles on these."""

from __future__ import annotations

from datetime import datetime

from aggregates import CommandKind, CommandRecord, WorkflowRun
from tests.crash._model import ModelRun

__all__ = ["busy", "can_end", "differences"]


def busy(
    real: WorkflowRun, histories: dict[str, WorkflowRun], now: datetime
) -> str | None:
    """What the run can still do without any input, from its history; None if
    it has ended or waits only on what has not happened yet."""
    if real.is_finished:
        return None
    opened = real.open_commands
    if not opened:
        return "issued nothing it waits on (it is about to act)"
    for record in opened:
        if can_end(record, real, histories, now):
            what = f"{record.kind} {record.name!r}" if record.name else record.kind
            return f"{what} at seq {record.seq} can end now"
    return None


def can_end(
    record: CommandRecord,
    real: WorkflowRun,
    histories: dict[str, WorkflowRun],
    now: datetime,
) -> bool:
    """Whether an open command can end without input: a step (it runs), a
    timer or receive deadline that is due, a receive with a signal pending, a
    child that has ended."""
    due = record.fire_at is not None and record.fire_at <= now
    if record.kind is CommandKind.TIMER:
        return due
    if record.kind is CommandKind.RECEIVE:
        return due or bool(real.pending_signals.get(str(record.name)))
    if record.kind is CommandKind.CHILD:
        kid = histories.get(str(record.child_id))
        return kid is not None and kid.is_finished
    return record.kind is CommandKind.STEP


def differences(run_id: str, real: WorkflowRun, model: ModelRun) -> list[str]:
    """Where a settled run is not where the model is."""
    commands = [(r.seq, str(r.kind), r.name) for r in real.commands]
    if commands != model.commands:
        return [f"{run_id}: issued {commands}; the model issued {model.commands}"]
    if real.is_finished != model.finished:
        return [f"{run_id}: status {real.status}; the model's {model.ending}"]
    if real.is_finished:
        return []
    waits = [(r.seq, str(r.kind), r.name) for r in real.open_commands]
    if waits != model.waiting_on():
        return [f"{run_id}: waits on {waits}; the model on {model.waiting_on()}"]
    pending = {
        topic: [signal.signal_id for signal in signals]
        for topic, signals in real.pending_signals.items()
        if signals
    }
    if pending != model.pending_ids():
        return [f"{run_id}: holds signals {pending}; the model {model.pending_ids()}"]
    return []
