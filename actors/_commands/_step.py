"""``ctx.call``: a step, run live by the worker, its outcome recorded once."""

from __future__ import annotations

from typing import Any

import attrs

from actors._commands._base import Answer, Command, Driver
from actors._definitions import ActivityDefinition
from actors._errors import StepFailed
from aggregates import CommandKind, CommandRecord, WorkflowRun

__all__ = ["CallStep"]


@attrs.frozen(eq=False)
class CallStep(Command):
    kind = CommandKind.STEP

    step: ActivityDefinition
    args: tuple[Any, ...]
    best_effort: bool = False

    def describe(self) -> str:
        return f"ctx.call({self.step.name})"

    def issue(self, driver: Driver) -> tuple[int, ...]:
        seq = driver.take_seq()
        run, step = driver.run, self.step
        record = run.check_replay(seq, CommandKind.STEP, step.name)
        if record is None:
            run.schedule_step(seq, step.name, self.args, at=driver.now())
        if record is None or record.is_open:
            driver.submit_step(step, self.args, seq, record)
        return (seq,)

    def answer_failed(self, driver: Driver, seq: int) -> Answer:
        if self.best_effort:
            return Answer(None)
        return super().answer_failed(driver, seq)

    @classmethod
    def failure(cls, workflow_id: str, record: CommandRecord) -> BaseException:
        assert record.outcome is not None
        error = record.outcome.error
        assert error is not None
        name = str(record.name)
        return StepFailed(workflow_id, record.seq, name, error, record.attempts)

    @classmethod
    def needs_actor(cls, run: WorkflowRun, record: CommandRecord) -> bool:
        return True  # the step runs again

    @classmethod
    def waiting_for(cls, record: CommandRecord) -> str:
        return f"step {record.name!r} (seq {record.seq}) to return"
