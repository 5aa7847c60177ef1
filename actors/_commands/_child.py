"""``ctx.spawn``: a durable child run, awaited for its result or detached."""

from __future__ import annotations

from typing import Any

import attrs

from actors._commands._base import Answer, Command, Driver
from actors._definitions import WorkflowDefinition
from actors._errors import ChildFailedError
from aggregates import CommandKind, CommandRecord, WorkflowRun

__all__ = ["SpawnChild"]


@attrs.frozen(eq=False)
class SpawnChild(Command):
    kind = CommandKind.CHILD

    workflow: WorkflowDefinition
    args: tuple[Any, ...]
    child_id: str | None
    detached: bool

    def describe(self) -> str:
        return f"ctx.spawn({self.workflow.name})"

    def issue(self, driver: Driver) -> tuple[int, ...]:
        # The seq is taken only once the child is accepted: a RunConflictError
        # thrown into the code leaves no command behind.
        seq, run, name = driver.seq + 1, driver.run, self.workflow.name
        record = run.check_replay(seq, CommandKind.CHILD, name)
        if record is None:
            child_id = self.child_id or f"{driver.workflow_id}/{seq}"
            child = driver.new_child(child_id, self.workflow, self.args)
            run.start_child(seq, child_id, name, at=driver.now())
            if child is not None:
                driver.add_child(child)
            else:
                driver.watch_child(child_id)
        elif record.is_open:
            assert record.child_id is not None
            driver.watch_child(record.child_id)
        driver.set_seq(seq)
        return (seq,)

    def answer(self, driver: Driver, seqs: tuple[int, ...]) -> Answer | None:
        if self.detached:
            return Answer(driver.run.command_at(seqs[0]).child_id)
        return super().answer(driver, seqs)

    @classmethod
    def failure(cls, workflow_id: str, record: CommandRecord) -> BaseException:
        assert record.outcome is not None
        assert record.outcome.error is not None
        assert record.child_id is not None
        return ChildFailedError(
            workflow_id, record.seq, record.child_id, record.outcome.error
        )

    @classmethod
    def needs_actor(cls, run: WorkflowRun, record: CommandRecord) -> bool:
        return True  # the child may have ended while no one watched

    @classmethod
    def waiting_for(cls, record: CommandRecord) -> str:
        return f"child run {record.child_id!r} (seq {record.seq})"

    @classmethod
    def on_cancel(cls, driver: Driver, record: CommandRecord) -> None:
        if record.is_open:
            assert record.child_id is not None
            driver.cancel_child(record.child_id)
