"""``ctx.receive``: the next signal on a topic, with an optional deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from actors._commands._base import Answer, Command, Driver, fresh
from actors._errors import ReceiveTimeoutError
from aggregates import CommandKind, CommandRecord, WorkflowRun

__all__ = ["Receive"]


@attrs.frozen(eq=False)
class Receive(Command):
    kind = CommandKind.RECEIVE

    topic: str
    timeout: float | None

    def describe(self) -> str:
        return f"ctx.receive({self.topic!r})"

    def issue(self, driver: Driver) -> tuple[int, ...]:
        seq = driver.take_seq()
        record = driver.run.check_replay(seq, CommandKind.RECEIVE, self.topic)
        if record is None:
            now = driver.now()
            deadline = None
            if self.timeout is not None:
                deadline = now + timedelta(seconds=self.timeout)
            driver.run.await_signal(seq, self.topic, timeout_at=deadline, at=now)
        elif record.is_open:
            deadline = record.fire_at
        else:
            return (seq,)
        if deadline is not None:
            driver.add_timer(seq, deadline)
        return (seq,)

    def answer_open(self, driver: Driver, seq: int) -> Answer | None:
        """Take the topic's first pending signal, if one has come."""
        run = driver.run
        if run.is_finished or not run.pending_signals.get(self.topic):
            return None
        signal = run.consume_signal(seq, at=driver.now())
        return Answer(fresh(signal.payload))

    @classmethod
    def failure(cls, workflow_id: str, record: CommandRecord) -> BaseException:
        return ReceiveTimeoutError(workflow_id, record.seq, str(record.name))

    @classmethod
    def needs_actor(cls, run: WorkflowRun, record: CommandRecord) -> bool:
        return bool(run.pending_signals.get(str(record.name)))

    @classmethod
    def fire(cls, run: WorkflowRun, seq: int, at: datetime) -> None:
        run.time_out_receive(seq, at=at)

    @classmethod
    def waiting_for(cls, record: CommandRecord) -> str:
        return f"a signal on {record.name!r} (seq {record.seq})"
