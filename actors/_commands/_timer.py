"""``ctx.sleep`` and ``ctx.sleep_until``: a durable timer."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from actors._commands._base import Command, Driver
from aggregates import CommandKind, CommandRecord, WorkflowRun

__all__ = ["Sleep"]


@attrs.frozen(eq=False)
class Sleep(Command):
    """A durable timer: for ``seconds`` from now, or ``until`` a time."""

    kind = CommandKind.TIMER

    seconds: float = 0.0
    until: datetime | None = None

    def describe(self) -> str:
        if self.until is not None:
            return f"ctx.sleep_until({self.until.isoformat()})"
        return f"ctx.sleep({self.seconds!r})"

    def issue(self, driver: Driver) -> tuple[int, ...]:
        seq = driver.take_seq()
        record = driver.run.check_replay(seq, CommandKind.TIMER)
        if record is None:
            now = driver.now()
            fire_at = self.until or now + timedelta(seconds=self.seconds)
            driver.run.start_timer(seq, fire_at, at=now)
        elif record.is_open:
            assert record.fire_at is not None
            fire_at = record.fire_at
        else:
            return (seq,)
        driver.add_timer(seq, fire_at)
        return (seq,)

    @classmethod
    def fire(cls, run: WorkflowRun, seq: int, at: datetime) -> None:
        run.fire_timer(seq, at=at)

    @classmethod
    def waiting_for(cls, record: CommandRecord) -> str:
        return f"a timer due at {record.fire_at} (seq {record.seq})"
