"""``ctx.now``, ``ctx.uuid4``, ``ctx.random`` and ``ctx.patched``: commands the
code gets an answer to at once, recorded so that a replay gets the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from actors._commands._base import Command, Driver
from aggregates import CommandKind, ValueKind

__all__ = ["Patched", "RecordedValue"]


@attrs.frozen(eq=False)
class RecordedValue(Command):
    """The value recorded at the next seq, or ``make()`` recorded there."""

    kind = CommandKind.VALUE
    awaitable = False

    value_kind: ValueKind
    make: Callable[[], Any]

    def resolve(self, driver: Driver) -> Any:
        seq = driver.take_seq()
        record = driver.run.check_replay(seq, CommandKind.VALUE, self.value_kind)
        if record is not None and record.outcome is not None:
            return record.outcome.value
        value = self.make()
        driver.run.record_value(seq, self.value_kind, value, at=driver.now())
        return value


@attrs.frozen(eq=False)
class Patched(Command):
    """Whether this run takes the code path added by ``patch_id``."""

    kind = CommandKind.PATCH
    awaitable = False

    patch_id: str

    def resolve(self, driver: Driver) -> bool:
        seq, run = driver.seq + 1, driver.run
        if seq < run.next_seq:  # replaying: did the run take the new path?
            record = run.command_at(seq)
            if record.kind is not CommandKind.PATCH or record.name != self.patch_id:
                return False  # it got here before the patch existed
            driver.set_seq(seq)
            return True
        driver.set_seq(seq)
        run.record_patch(seq, self.patch_id, at=driver.now())
        return True
