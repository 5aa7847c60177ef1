"""The workflow row of ``benchmarks/supervision.py``: from an engine fault inside
a workflow actor whose run has a history of about 1,000 events to the run's next
step running in the replacement actor.

Each trial spawns a run of ``long_run``: 500 no-op steps (1,001 events: Started,
then StepScheduled + StepCompleted per step), then ``probe``. The commit of the
probe's result raises once (the fault, stamped just before the raise). The
``runs`` supervisor starts a new actor, which reads the run (from its latest
snapshot), replays the code against the 1,001 events, finds the probe's result
missing and runs the probe again: the figure is the fault to that second start.
The baseline is the same run's step-to-step time without a fault: the last no-op
step's start to the probe's first start.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import defaultdict

from actors import ActorSystem, WorkflowContext, activity, workflow
from aggregates import WorkflowRun

STEPS = 500
_starts: defaultdict[str, list[float]] = defaultdict(list)  # run id -> probe starts
_last_noop: dict[str, float] = {}
_faulted: dict[str, float] = {}
_lock = threading.Lock()


class _Fault(Exception):
    """The benchmark's engine fault."""


@activity(name="benchmarks.run_restart.noop")
def noop(i: int) -> int:
    if i == STEPS - 1:
        _last_noop[activity.info().workflow_id] = time.perf_counter()
    return i


@activity(name="benchmarks.run_restart.probe")
def probe() -> str:
    _starts[activity.info().workflow_id].append(time.perf_counter())
    return "probed"


@workflow(name="benchmarks.run_restart.long_run")
async def long_run(ctx: WorkflowContext, steps: int) -> str:
    for i in range(steps):
        await ctx.call(noop, i)
    result: str = await ctx.call(probe)
    return result


def _crash_the_probe_commit_once(system: ActorSystem) -> None:
    save = system._host.commit

    def save_or_crash(run: WorkflowRun, *children: WorkflowRun) -> None:
        probe_done = any(
            type(e).__name__ == "StepCompleted" and getattr(e, "seq", 0) == STEPS + 1
            for e in run.pending_events
        )
        with _lock:
            crash = probe_done and run.id not in _faulted
            if crash:
                _faulted[run.id] = time.perf_counter()
        if crash:
            raise _Fault(f"the probe's commit of {run.id} crashed")
        save(run, *children)

    system._host.commit = save_or_crash  # type: ignore[method-assign]


def run_restart_samples(trials: int, warmup: int) -> tuple[list[float], list[float]]:
    """(fault to next step running, step to next step without a fault), seconds."""
    faults: list[float] = []
    steps: list[float] = []
    with (
        tempfile.TemporaryDirectory() as home,
        ActorSystem.open(f"{home}/journal", idle_timeout=None) as system,
    ):
        _crash_the_probe_commit_once(system)
        for trial in range(warmup + trials):
            run_id = f"long-{trial}"
            ref = system.spawn(long_run, STEPS, id=run_id)
            if ref.result(timeout=60) != "probed":
                raise AssertionError(f"{run_id} ended unexpectedly")
            starts = _starts[run_id]
            if len(starts) != 2 or run_id not in _faulted:
                raise AssertionError(f"{run_id}: probe starts {starts}, no restart?")
            events = len(system.history(run_id).commands) * 2 + 1
            if events < 1_000:
                raise AssertionError(f"{run_id} has {events} events, not 1,000")
            if trial >= warmup:
                faults.append(starts[1] - _faulted[run_id])
                steps.append(starts[0] - _last_noop[run_id])
        if system.restarts != warmup + trials:
            raise AssertionError(f"{system.restarts} restarts, expected one a trial")
    return faults, steps
