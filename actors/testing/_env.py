"""``WorkflowTestEnv``: an actor system on a temporary journal whose clock skips.

Like Temporal's ``WorkflowEnvironment.start_time_skipping()``: time stands still
while anything runs, and jumps to the next timer due as soon as every run waits
only on timers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from typing import Any, Self

from actors._definitions import WorkflowDefinition
from actors._duration import Duration
from actors._ref import RunRef
from actors.testing._errors import StuckRunError
from actors.testing._probe import Probe, ProbedSystem, SkippingClock
from actors.testing._skipping import Skipper, is_settled, waiting_on
from aggregates import RunStatus

__all__ = ["WorkflowTestEnv"]


class WorkflowTestEnv:
    """A time-skipping test environment::

        with WorkflowTestEnv() as env:
            ref = env.spawn(process_order, "o-1", 100)
            ref.send("approval", True)
            assert env.result(ref)["approved"]  # its 24 h sleep took milliseconds

    ``path``: the journal, a directory or a ``postgresql://`` URL, kept on
    close (if not given, a temporary directory, removed on close). ``start``:
    the clock's first time. ``settle``: real seconds nothing may change before
    time skips (a run the journal's opening activated acts within them).
    ``open_options`` go to ``ActorSystem.open`` (``max_workers``,
    ``idle_timeout``, ...). ``clock`` is a ``ManualClock``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        start: datetime | None = None,
        settle: float = 0.003,
        **open_options: Any,
    ) -> None:
        self._temporary = path is None
        self._path = (
            os.path.join(tempfile.mkdtemp(prefix="chronik-test-"), "journal")
            if path is None
            else os.fspath(path)
        )
        self.clock = SkippingClock(start)
        self._settle = settle
        self._options = open_options
        self._system: ProbedSystem | None = None
        self._crashed: list[Probe] = []  # their systems wind down in the background
        self._spawned = 0

    # -- opening and closing ----------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> ProbedSystem:
        """Open the system on the journal (``with`` does this)."""
        if self._system is None:
            self._system = ProbedSystem.open_probed(
                self._path, Probe(self.clock), **self._options
            )
        return self._system

    def close(self) -> None:
        """Close the system; remove the journal if it is a temporary one."""
        try:
            if self._system is not None:
                self._system.close()
                self._system = None
            for probe in self._crashed:
                probe.wait_wound_down(10.0)
        finally:
            if self._temporary:
                shutil.rmtree(os.path.dirname(self._path), ignore_errors=True)

    def restart(self) -> ProbedSystem:
        """Crash the system and open a new one on the same journal.

        The old system stops writing at once, as a killed process would: a commit
        in flight lands or not, whole; nothing after it does, and no further step
        starts (one already running runs on, its outcome lost). Its threads wind
        down in the background. Runs resume in the new system by replay.
        """
        old = self.system
        old.probe.kill("was crashed by WorkflowTestEnv.restart()")
        self._crashed.append(old.probe)
        self._system = None
        return self.open()

    def reopen(self) -> ProbedSystem:
        """Close the system cleanly and open a new one on the same journal."""
        self.system.close()
        self._system = None
        return self.open()

    # -- what a test uses ---------------------------------------------------------

    @property
    def system(self) -> ProbedSystem:
        if self._system is None:
            msg = "the WorkflowTestEnv is not open: use it in a with block"
            raise RuntimeError(msg)
        return self._system

    @property
    def path(self) -> str:
        return self._path

    def now(self) -> datetime:
        return self.clock.now()

    def spawn(
        self, workflow: WorkflowDefinition | str, *args: Any, id: str | None = None
    ) -> RunRef:
        """``system.spawn``; the id defaults to ``"<function name>-<n>"``."""
        if id is None:
            self._spawned += 1
            name = workflow if isinstance(workflow, str) else workflow.name
            short = name.rpartition(":")[2].rpartition(".")[2]
            id = f"{short}-{self._spawned}"
        ref = self.system.spawn(workflow, *args, id=id)
        if not isinstance(ref, RunRef):
            msg = f"{workflow!r} names a plain actor: spawn it with system.spawn"
            raise TypeError(msg)
        return ref

    def ref(self, workflow_id: str) -> RunRef:
        """The run in the current system (refs of a crashed system are dead)."""
        return self.system.ref(workflow_id)

    def result(self, run: RunRef | str, timeout: float = 10.0) -> Any:
        """The run's result, skipping time while every run waits on timers.

        Raises as ``ref.result()`` does for a failed or cancelled run, and
        ``StuckRunError`` (saying what the run waits on) if it does not finish
        within ``timeout`` seconds of real time.
        """
        ref = self.run_until_done(run, timeout)
        return ref.result(timeout=0)

    def run_until_done(self, run: RunRef | str, timeout: float = 10.0) -> RunRef:
        """Skip time until the run has ended (or stopped); its ref in this system."""
        workflow_id = run if isinstance(run, str) else run.id
        ref = self.ref(workflow_id)
        system = self.system
        skipper = Skipper(system, self._settle)
        if not skipper.run_until(lambda: is_settled(system, workflow_id), timeout):
            waits = waiting_on(system.history(workflow_id))
            raise StuckRunError(f"workflow run {workflow_id!r}", timeout, waits)
        return ref

    def status(self, run: RunRef | str) -> RunStatus:
        return self.ref(run if isinstance(run, str) else run.id).status()

    def skip(self, duration: Duration, timeout: float = 10.0) -> None:
        """Let ``duration`` pass: each timer due meanwhile fires at its own time
        once the system is quiet, then the clock stops at the end."""
        Skipper(self.system, self._settle).skip(duration, timeout)

    def wait_quiet(self, timeout: float = 10.0) -> None:
        """Wait until no step runs and no message is being handled (time stands)."""
        skipper = Skipper(self.system, self._settle)
        if not skipper.run_until(skipper.quiet, timeout):
            busy = ", ".join(skipper.busy())
            raise StuckRunError("the system", timeout, busy or "nothing")
