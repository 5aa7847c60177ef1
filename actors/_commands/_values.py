"""``ctx.now``, ``ctx.uuid4``, ``ctx.random``, ``ctx.patched`` and
``ctx.publish``: commands the code gets an answer to at once, recorded so that a
replay gets the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from actors._commands._base import Command, Driver
from aggregates import CommandKind, ValueKind, message_id

__all__ = ["Patched", "Publish", "RecordedValue"]


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


@attrs.frozen(eq=False)
class Publish(Command):
    """A message for ``topic`` recorded at the next seq, to commit with the run's
    other new events (the transactional outbox); answers the message's id. A
    replay finds it recorded and records nothing (the relay delivered it, or
    will, from the journal)."""

    kind = CommandKind.PUBLISH
    awaitable = False

    topic: str
    payload: Any
    key: str | None

    def resolve(self, driver: Driver) -> str:
        seq = driver.take_seq()
        record = driver.run.check_replay(seq, CommandKind.PUBLISH, self.topic)
        if record is None:
            driver.run.publish(seq, self.topic, self.payload, self.key, at=driver.now())
        return message_id(driver.workflow_id, seq)
