"""``CrashTest``: a workflow run under a ``FaultPlan``, checked for crash safety.

The run lives through several processes (see ``_lives``). Then it must end as
the fault-free run did, with every command and outcome recorded once, every
signal received and consumed once, and the user's invariant kept.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, MutableSequence, Sequence
from typing import Any

from hypothesis.strategies import SearchStrategy, deferred

from actors._definitions import ActivityDefinition, WorkflowDefinition
from actors.testing._audit import (
    command_summary,
    exactly_once,
    first_difference,
    signals_once,
)
from actors.testing._determinism import disagreement, replay_failure
from actors.testing._errors import (
    CrashSafetyError,
    FaultFreeRunError,
    InjectedStepFailure,
    NonDeterministicWorkflowError,
)
from actors.testing._faults import FaultPlan
from actors.testing._lives import Broken, PlanRun
from actors.testing._report import (
    Baseline,
    Invariant,
    RunReport,
    SignalToSend,
    StepInfo,
    signals_to_send,
)
from aggregates import StepCompleted, StepFailed, StepScheduled

__all__ = ["CrashTest"]


class CrashTest:
    """Run ``workflow(*args)`` under fault plans and check it is crash-safe::

        test = CrashTest(place_order, "o-1", 120, effects=effects, invariant=ok)

        @given(plan=test.plans())
        def test_place_order_is_crash_safe(plan):
            test.check(plan)

    ``signals``: ``SignalToSend`` values or ``(topic, payload)`` tuples, sent in
    order once the run is spawned. ``effects``: a list the steps append to
    (cleared before each run, copied into the report); ``reset``: called before
    each run to reset any other state. ``timeout``: real seconds each life may
    take. ``journals``: where each run's fresh journal is made (removed
    afterwards): None, a temporary directory; a directory, one inside it; a
    ``postgresql://`` URL, a schema of its own on that server, named after
    the URL's. ``open_options`` go to ``ActorSystem.open``.
    """

    def __init__(
        self,
        workflow: WorkflowDefinition,
        *args: Any,
        signals: Iterable[SignalToSend | tuple[Any, ...]] = (),
        invariant: Invariant | None = None,
        effects: MutableSequence[Any] | None = None,
        reset: Callable[[], None] | None = None,
        id: str | None = None,
        timeout: float = 10.0,
        journals: str | None = None,
        **open_options: Any,
    ) -> None:
        self.workflow = workflow
        self.args = args
        self.signals = signals_to_send(signals)
        self.invariant = invariant
        self.effects = effects
        self.reset = reset
        short = workflow.name.rpartition(":")[2].rpartition(".")[2]
        self.workflow_id = id or f"crash-test-{short}"
        self.timeout = timeout
        self.journals = journals
        self.open_options = open_options
        self._baseline: Baseline | None = None
        # Once two runs under one plan differ, every check says so: a verdict
        # that came and went would be hypothesis's Flaky, which says nothing.
        self._nondeterministic: NonDeterministicWorkflowError | None = None
        self._lock = threading.RLock()

    @property
    def baseline(self) -> Baseline:
        """The fault-free run (run once, on first use)."""
        with self._lock:
            if self._nondeterministic is not None:
                raise self._nondeterministic
            if self._baseline is None:
                self._baseline = self._run_baseline()
            return self._baseline

    def plans(self, **options: Any) -> SearchStrategy[FaultPlan]:
        """A hypothesis strategy of ``FaultPlan`` for this workflow; the
        fault-free run happens on the first draw. ``options`` as in
        ``fault_plans`` (``max_crashes``, ``in_steps``, ``failures``,
        ``duplicates``)."""
        from actors.testing._strategies import fault_plans  # noqa: PLC0415

        return deferred(lambda: fault_plans(self.baseline, **options))

    def run(self, plan: FaultPlan) -> RunReport:
        """Run under ``plan`` and report; nothing is checked."""
        return PlanRun(self, plan).go()

    def check(self, plan: FaultPlan) -> RunReport:
        """Run under ``plan``; raise ``CrashSafetyError`` unless the run ended as
        the fault-free one, recorded every outcome and signal once and kept the
        invariant."""
        baseline = self.baseline
        attempt = PlanRun(self, plan)
        try:
            report = attempt.go()
        except Broken as broken:
            raise self._error(plan, str(broken), attempt.trace) from broken.__cause__
        replayed = replay_failure(report)
        if replayed is not None:
            raise self._nondeterminism(plan, replayed, attempt.trace)
        problems = _problems(report, baseline.report)
        problems += _prefix_problems(attempt.streams)
        if not problems:
            problems = self._invariant_problems(report)
        if problems:
            self._check_repeatable(plan, attempt, report)
            what = (
                problems[0]
                if len(problems) == 1
                else "".join(f"\n  - {problem}" for problem in problems)
            )
            raise self._error(plan, what, attempt.trace)
        return report

    def _check_repeatable(
        self, plan: FaultPlan, first: PlanRun, report: RunReport
    ) -> None:
        """Run ``plan`` again: raise ``NonDeterministicWorkflowError`` if the
        workflow's code does something else with the same inputs."""
        again = PlanRun(self, plan)
        try:
            second = again.go()
        except Broken as broken:
            stuck = f"it finished the first time; the second time {broken}"
            raise self._nondeterminism(plan, stuck, first.trace, again.trace) from None
        differs = disagreement(report, second) or replay_failure(second)
        if differs is not None:
            raise self._nondeterminism(plan, differs, first.trace, again.trace)

    def _nondeterminism(
        self, plan: FaultPlan, what: str, *traces: list[str]
    ) -> NonDeterministicWorkflowError:
        names = self._baseline.step_names if self._baseline is not None else {}
        runs = ["first run", "second run"] if len(traces) > 1 else ["the run"]
        trace = "\n".join(
            f" {label}:\n" + ("\n".join(lines) or "  (nothing)")
            for label, lines in zip(runs, traces, strict=False)
        )
        error = NonDeterministicWorkflowError(
            self.workflow_id, repr(plan), plan.describe(names), what, trace
        )
        with self._lock:
            self._nondeterministic = self._nondeterministic or error
        return error

    def _invariant_problems(self, report: RunReport) -> list[str]:
        if self.invariant is None:
            return []
        try:
            held = self.invariant(report)
        except Exception as error:
            return [f"the invariant failed: {type(error).__name__}: {error}"]
        return [] if held is not False else ["the invariant returned False"]

    def _error(self, plan: FaultPlan, what: str, trace: list[str]) -> CrashSafetyError:
        names = self._baseline.step_names if self._baseline is not None else {}
        return CrashSafetyError(
            self.workflow_id,
            repr(plan),
            plan.describe(names),
            what,
            "\n".join(trace) or "  (nothing)",
        )

    def _run_baseline(self) -> Baseline:
        attempt = PlanRun(self, FaultPlan())
        try:
            report = attempt.go()
        except Broken as broken:
            trace = "\n".join(attempt.trace)
            error = FaultFreeRunError(self.workflow_id, str(broken), trace)
            raise error from broken.__cause__
        problems = self._invariant_problems(report)
        if problems:
            trace = "\n".join(attempt.trace)
            raise FaultFreeRunError(self.workflow_id, problems[0], trace)
        self._check_repeatable(FaultPlan(), attempt, report)
        probe = attempt.probes[-1]
        steps = tuple(
            StepInfo(key, step.name, _failure_budget(step, _attempts(report, key)))
            for key, step in sorted(probe.steps.items(), key=_by_seq)
        )
        ids = tuple(str(signal.signal_id) for signal in self.signals)
        return Baseline(report, probe.attempted, steps, ids)


def _problems(report: RunReport, baseline: RunReport) -> list[str]:
    problems = []
    if (report.status, report.result) != (baseline.status, baseline.result):
        problems.append(
            f"the run ended {report.status} with {_outcome(report)}; the fault-free "
            f"run ended {baseline.status} with {_outcome(baseline)}"
        )
    difference = first_difference(
        command_summary(baseline.history), command_summary(report.history)
    )
    if difference is not None:
        problems.append(f"its history differs from the fault-free run's: {difference}")
    problems += exactly_once(report.events)
    problems += signals_once(
        report.events.get(report.workflow_id, ()),
        report.acknowledged,
        baseline.consumed_signals,
    )
    problems += _keys_problems(report)
    return problems


def _outcome(report: RunReport) -> str:
    if report.error is not None:
        return f"{report.error.type}: {report.error.message}"
    return repr(report.result)


def _keys_problems(report: RunReport) -> list[str]:
    """Every step body ran under the key of a step its run's history holds."""
    steps = {
        f"{run_id}/{event.seq}": event.name
        for run_id, events in report.events.items()
        for event in events
        if isinstance(event, StepScheduled)
    }
    return [
        f"step {e.name!r} ran with key {e.key!r}, which history gives "
        f"{steps.get(e.key)!r}"
        for e in report.executions
        if steps.get(e.key) != e.name
    ]


def _prefix_problems(streams: Sequence[Sequence[Any]]) -> list[str]:
    """Each life kept what the lives before it recorded, unchanged."""
    for life, (earlier, later) in enumerate(itertools.pairwise(streams), start=1):
        if list(later[: len(earlier)]) != list(earlier):
            return [f"life {life + 1} lost or changed events life {life} had recorded"]
    return []


def _attempts(report: RunReport, key: str) -> int:
    """Attempts the fault-free run made at step ``key`` (its body ran)."""
    run_id, _, seq = key.rpartition("/")
    events = report.events.get(run_id, ())
    mine = [e for e in events if getattr(e, "seq", None) == int(seq)]
    failed = sum(1 for e in mine if isinstance(e, StepFailed))
    return failed + sum(1 for e in mine if isinstance(e, StepCompleted))


def _failure_budget(step: ActivityDefinition, attempts: int) -> int:
    """Transient failures step can take and still end as it did: attempts its
    retry policy has left, within its ``schedule_to_close`` if it has one."""
    policy = step.retry
    if not policy.retries(InjectedStepFailure("probe"), 1):
        return 0
    budget = policy.max_attempts - attempts
    whole = step.schedule_to_close
    if whole is not None:
        while budget > 0:
            delays = sum(policy.delay(n) for n in range(1, budget + attempts))
            if delays < whole:
                break
            budget -= 1
    return max(budget, 0)


def _by_seq(item: tuple[str, Any]) -> tuple[str, int]:
    run_id, _, seq = item[0].rpartition("/")
    return run_id, int(seq)
