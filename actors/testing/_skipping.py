"""``Skipper``: time skipping. While every run waits only on timers, the clock
jumps straight to the next one due, so a seven-day sleep takes milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from actors._commands import command_of_kind
from actors._duration import Duration, to_seconds
from actors._errors import ResultTimeoutError
from actors.testing._errors import StuckRunError
from actors.testing._probe import ProbedSystem
from aggregates import CommandKind, WorkflowRun

__all__ = ["Skipper", "is_settled", "waiting_on"]


class Skipper:
    """Drives one probed system's clock.

    Quiet means: nothing in hand (see ``Quiescence``), and nothing changed for
    ``settle`` seconds (a run activated while the journal opened acts at once).
    """

    def __init__(self, system: ProbedSystem, settle: float = 0.003) -> None:
        self._system = system
        self._probe = system.probe
        self._settle = settle

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Skip time until ``done()``; False if real ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            if self.quiet():
                due = self._next_due()
                if due is not None:
                    self._jump(due)
                    continue
            self._probe.quiet.wait_for_change(self._probe.quiet.changes, 0.005)
        return True

    def skip(self, duration: Duration, timeout: float) -> None:
        """Move time on by ``duration``: each timer due meanwhile fires at its own
        time, once the system is quiet; then the clock lands on the end."""
        end = self._probe.clock.now() + timedelta(seconds=to_seconds(duration))
        deadline = time.monotonic() + timeout
        while True:
            if not self._wait_quiet(deadline):
                busy = ", ".join(self.busy())
                raise StuckRunError("the system", timeout, busy or "nothing")
            due = self._next_due()
            if due is None or due > end:
                break
            self._jump(due)
        self._jump(end)
        self._wait_quiet(deadline)

    def quiet(self) -> bool:
        """Nothing in hand now, and nothing changed for ``settle`` seconds."""
        quiet = self._probe.quiet
        seen = quiet.changes
        if self.busy():
            return False
        time.sleep(self._settle)
        return quiet.changes == seen and not self.busy()

    def busy(self) -> list[str]:
        """What the system still has in hand, in words."""
        return self._probe.quiet.busy(self._settled, self._awaits_child)

    def _wait_quiet(self, deadline: float) -> bool:
        while not self.quiet():
            if time.monotonic() > deadline:
                return False
            self._probe.quiet.wait_for_change(self._probe.quiet.changes, 0.005)
        return True

    def _next_due(self) -> datetime | None:
        """When the first timer due whose command is still open falls due.

        A timer never cancelled (a receive whose signal came first) is stale:
        time does not skip to it, though it fires when time passes it.
        """
        timers, closed = self._probe.timers, self._probe.closed_timers
        pending = [] if timers is None else timers.pending_timers()
        for fire_at, workflow_id, seq in pending:
            if (workflow_id, seq) in closed:
                continue
            state = self._timer_state(workflow_id, seq)
            if state == "open":
                return fire_at
            if state == "closed":
                closed.add((workflow_id, seq))
        return None

    def _jump(self, to: datetime) -> None:
        """Fire the timers due by ``to``; expect the outcome of each live one."""
        timers = self._probe.timers
        if timers is not None:
            due = [(w, s) for at, w, s in timers.pending_timers() if at <= to]
            opened = [k for k in due if self._timer_state(*k) == "open"]
            self._probe.quiet.expect_fires(opened)
        self._probe.clock.advance_to(to)

    def _timer_state(self, workflow_id: str, seq: int) -> str:
        """``open``: its command waits on it; ``closed``: it can only be stale;
        ``unknown``: history does not hold its command (not yet, or never)."""
        try:
            run = self._system.history(workflow_id)
        except Exception:
            return "unknown"
        if run.is_finished or (seq < run.next_seq and not run.is_open(seq)):
            return "closed"
        return "open" if seq < run.next_seq else "unknown"

    def _settled(self, workflow_id: str) -> bool:
        return is_settled(self._system, workflow_id)

    def _awaits_child(self, parent_id: str, child_id: str) -> bool:
        try:
            run = self._system.history(parent_id)
        except Exception:
            return False
        return not run.is_finished and any(
            record.kind is CommandKind.CHILD and record.child_id == child_id
            for record in run.open_commands
        )


def is_settled(system: ProbedSystem, workflow_id: str) -> bool:
    """Whether run ``workflow_id`` has ended, or stopped (its ref says why)."""
    try:
        system.ref(workflow_id).result(timeout=0)
    except ResultTimeoutError:
        return False
    except Exception:
        return True
    return True


def waiting_on(run: WorkflowRun) -> str:
    """What the open commands of ``run`` wait for, in words."""
    waits = [
        command_of_kind(record.kind).waiting_for(record) for record in run.open_commands
    ]
    if not waits:
        return "nothing it has recorded (its actor may have stopped)"
    return ", ".join(waits)
