"""The lives of one crash-tested run: process after process on one journal.

Each life opens the journal, has a client spawn the run (idempotent by id) and
send the signals it saw no acknowledgement for, then skips time until the run
ends or the life's crash comes. A crash kills the process: it commits nothing
more. The last life has no crash.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from actors._errors import RunCancelledError, WorkflowFailedError
from actors.testing._audit import read_runs
from actors.testing._faults import Crash, CrashAtCommit, CrashInStep, FaultPlan
from actors.testing._journals import fresh_journal
from actors.testing._probe import (
    FaultHooks,
    Probe,
    ProbedSystem,
    SkippingClock,
    StepAction,
)
from actors.testing._report import RunReport, StepExecution
from actors.testing._skipping import Skipper, is_settled, waiting_on
from aggregates import ErrorInfo, RunEvent, RunFinishedError, RunStatus, WorkflowRun
from journal import open_reader

if TYPE_CHECKING:
    from actors.testing._crash import CrashTest

__all__ = ["Broken", "PlanRun"]


class Broken(Exception):
    """A faulty run that could not finish (it hung, or an operation failed)."""


@attrs.frozen
class _Ending:
    status: RunStatus
    result: Any
    error: ErrorInfo | None
    history: WorkflowRun


class _LifeFaults(FaultHooks):
    """The faults of one life: its crash, and the plan's step failures."""

    def __init__(self, run: PlanRun, life: int, crash: Crash | None) -> None:
        self._run = run
        self._life = life
        self._crash = crash
        self._crashed_in_step = False

    def crash_before_commit(self, number: int, events: Sequence[RunEvent]) -> bool:
        return self._crash == CrashAtCommit(number, after=False)

    def crash_after_commit(self, number: int, events: Sequence[RunEvent]) -> bool:
        return self._crash == CrashAtCommit(number, after=True)

    def on_step(self, key: str, name: str, attempt: int) -> StepAction:
        run, crash = self._run, self._crash
        with run.lock:
            run.executions.append(StepExecution(key, name, attempt, self._life))
            mine = isinstance(crash, CrashInStep) and crash.step == key
            if mine and not self._crashed_in_step:
                assert isinstance(crash, CrashInStep)
                self._crashed_in_step = True
                return StepAction(
                    crash_before=not crash.after_body, crash_after=crash.after_body
                )
            failure = run.failures.get(key)
            if failure is None or run.failed[key] >= failure.times:
                return StepAction()
            run.failed[key] += 1
            return StepAction(
                fail_before=not failure.after_body, fail_after=failure.after_body
            )


class PlanRun:
    """One run of the test's workflow under one plan, life after life."""

    def __init__(self, test: CrashTest, plan: FaultPlan) -> None:
        self.test = test
        self.plan = plan
        self.clock = SkippingClock()
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.executions: list[StepExecution] = []
        self.failures = {failure.step: failure for failure in plan.failures}
        self.failed: Counter[str] = Counter()
        self.probes: list[Probe] = []
        self.trace: list[str] = []
        self.streams: list[list[Any]] = []  # the run's stored events after each life

    def go(self) -> RunReport:
        test = self.test
        if test.effects is not None:
            del test.effects[:]
        if test.reset is not None:
            test.reset()
        with fresh_journal(test.journals) as path:
            try:
                for life, crash in enumerate(self.plan.crashes, start=1):
                    if self._live(path, life, crash) is not None:
                        self.trace[-1] += " (its crash point never came)"
                        break
                ending = self._live(path, len(self.trace) + 1, None)
                assert ending is not None
                self._wind_down()
                return self._report(path, ending)
            finally:
                self._wind_down()

    def _live(self, path: str, life: int, crash: Crash | None) -> _Ending | None:
        """One life; how the run ended in it, or None if the process crashed."""
        faults = _LifeFaults(self, life, crash)
        name = f"process {life}"
        probe = Probe(self.clock, faults, name, focus=self.test.workflow_id)
        self.probes.append(probe)
        try:
            system = ProbedSystem.open_probed(path, probe, **self.test.open_options)
        except Exception as error:
            if not probe.dead:
                msg = f"life {life}: opening the journal failed: {error!r}"
                raise Broken(msg) from error
            self._note(life, probe, "")
            return None
        try:
            ending = self._drive(system, life)
        except Broken:
            self._note(life, probe, "it got stuck")
            raise
        finally:
            if not probe.dead:
                system.close()
            self.streams.append(_stored(path, self.test.workflow_id))
        self._note(life, probe, "" if ending is None else f"the run {ending.status}")
        return ending

    def _drive(self, system: ProbedSystem, life: int) -> _Ending | None:
        probe, test, run_id = system.probe, self.test, self.test.workflow_id
        client = _Client(self, system, life)
        client.start()
        client.wait(lambda: probe.dead, test.timeout)
        if probe.dead:
            client.join(1.0)
            return None
        if client.error is not None:
            msg = f"life {life}: the client failed without a crash: {client.error!r}"
            raise Broken(msg) from client.error
        skipper = Skipper(system)
        ended = skipper.run_until(
            lambda: probe.dead or is_settled(system, run_id), test.timeout
        )
        if probe.dead:
            return None
        if not ended:
            waits = waiting_on(system.history(run_id))
            took = f"{test.timeout} s"
            msg = f"life {life}: the run got nowhere in {took}: it waits on {waits}"
            raise Broken(msg)
        return _ending(system, run_id, life)

    def _note(self, life: int, probe: Probe, ending: str) -> None:
        lines = [f"  life {life}:", *(f"    {line}" for line in probe.log)]
        lines.append(f"    then {probe.crash_note if probe.dead else ending}")
        self.trace.append("\n".join(lines))

    def _wind_down(self) -> None:
        for probe in self.probes:
            if not probe.wait_wound_down(10.0):
                msg = "a crashed process did not wind down in 10 s: a step still runs"
                raise Broken(msg)

    def _report(self, path: str, ending: _Ending) -> RunReport:
        test = self.test
        return RunReport(
            test.workflow_id,
            self.plan,
            ending.status,
            ending.result,
            ending.error,
            ending.history,
            read_runs(path),
            () if test.effects is None else tuple(test.effects),
            tuple(self.executions),
            frozenset(self.acknowledged),
            tuple(self.trace),
        )


class _Client:
    """The program that spawns the run and sends its signals, on its own thread:
    it dies with its process, and the driver never waits on a dead system."""

    def __init__(self, run: PlanRun, system: ProbedSystem, life: int) -> None:
        self._run = run
        self._system = system
        self._life = life
        self._acknowledged: list[str] = []
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"chronik-test-client-{life}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wait(self, crashed: Callable[[], bool], timeout: float) -> None:
        """Until the client is done or its process crashed."""
        deadline = time.monotonic() + timeout
        while not self._done.wait(0.002):
            if crashed():
                return
            if time.monotonic() > deadline:
                msg = f"life {self._life}: the client got no answer in {timeout} s"
                raise Broken(msg)

    def join(self, timeout: float) -> None:
        """Wait a little for a crashed client: what it saw acknowledged counts."""
        self._done.wait(timeout)

    def _main(self) -> None:
        try:
            self._spawn_and_send()
        except BaseException as error:
            if not self._system.probe.dead:
                self.error = error
        finally:
            with self._run.lock:
                self._run.acknowledged.update(self._acknowledged)
            self._done.set()

    def _spawn_and_send(self) -> None:
        run, test, life = self._run, self._run.test, self._life
        ref = self._system.spawn(test.workflow, *test.args, id=test.workflow_id)
        resend = run.plan.resend_signals and life > 1
        for signal in test.signals:
            signal_id = str(signal.signal_id)
            with run.lock:
                if signal_id in run.acknowledged and not resend:
                    continue
            times = 2 if signal_id in run.plan.duplicate_signals else 1
            for _ in range(times):
                try:
                    ref.send(
                        signal.topic,
                        signal.payload,
                        signal_id=signal_id,
                        timeout=test.timeout,
                    )
                except RunFinishedError:
                    break  # it ended: delivered before, or never needed
                self._acknowledged.append(signal_id)


def _ending(system: ProbedSystem, run_id: str, life: int) -> _Ending:
    ref = system.ref(run_id)
    history = system.history(run_id)
    try:
        result = ref.result(timeout=0)
    except WorkflowFailedError as failed:
        return _Ending(RunStatus.FAILED, None, failed.error, history)
    except RunCancelledError:
        return _Ending(RunStatus.CANCELLED, None, None, history)
    except Exception as error:
        msg = f"life {life}: the run stopped without a crash: {error}"
        raise Broken(msg) from error
    return _Ending(RunStatus.COMPLETED, result, None, history)


def _stored(path: str, workflow_id: str) -> list[Any]:
    with open_reader(path) as reader:
        return list(reader.stream(workflow_id))
