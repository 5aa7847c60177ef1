"""Hypothesis strategies of faults, drawn from a fault-free run (``Baseline``).

They shrink towards fewer faults: fewer crashes, earlier commits, crashes
before rather than after, fewer failures, no duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableSequence
from typing import Any

import hypothesis
import hypothesis.errors
import hypothesis.strategies as st

from actors._definitions import WorkflowDefinition
from actors.testing._crash import CrashTest
from actors.testing._errors import CrashSafetyError, NonDeterministicWorkflowError
from actors.testing._faults import (
    Crash,
    CrashAtCommit,
    CrashInStep,
    FailStep,
    FaultPlan,
)
from actors.testing._report import Baseline, Invariant, SignalToSend

__all__ = ["check_crash_safety", "crash_points", "fault_plans", "step_failures"]


def crash_points(
    baseline: Baseline, *, in_steps: bool = True
) -> st.SearchStrategy[Crash]:
    """A crash before or after any commit the fault-free run made, or (with
    ``in_steps``) inside any of its steps, before or after the step's body."""
    at_commit = st.builds(
        CrashAtCommit, st.integers(1, max(baseline.commits, 1)), st.booleans()
    )
    keys = [step.key for step in baseline.steps]
    if not (in_steps and keys):
        return at_commit
    in_step = st.builds(CrashInStep, st.sampled_from(keys), st.booleans())
    return st.one_of(at_commit, in_step)


def step_failures(baseline: Baseline) -> st.SearchStrategy[FailStep]:
    """Transient failures of a step whose retry policy has attempts to spare
    (so the run still ends as the fault-free one did)."""
    steps = [step for step in baseline.steps if step.max_failures > 0]
    if not steps:
        return st.nothing()
    return st.sampled_from(steps).flatmap(
        lambda step: st.builds(
            FailStep,
            st.just(step.key),
            st.integers(1, step.max_failures),
            st.booleans(),
        )
    )


def fault_plans(
    baseline: Baseline,
    *,
    max_crashes: int = 3,
    in_steps: bool = True,
    failures: bool = True,
    duplicates: bool = True,
) -> st.SearchStrategy[FaultPlan]:
    """Plans of up to ``max_crashes`` crashes, with (unless turned off) step
    failures, signals sent twice and signals resent after each crash."""
    ids = list(baseline.signal_ids)
    signals = duplicates and bool(ids)
    return st.builds(
        FaultPlan,
        crashes=st.lists(
            crash_points(baseline, in_steps=in_steps), max_size=max_crashes
        ),
        failures=st.lists(
            step_failures(baseline), max_size=2 if failures else 0, unique_by=_step
        ),
        duplicate_signals=st.lists(
            st.sampled_from(ids), unique=True, max_size=len(ids) if signals else 0
        )
        if ids
        else st.just(()),
        resend_signals=st.booleans() if signals else st.just(False),
    )


def check_crash_safety(
    workflow: WorkflowDefinition,
    *args: Any,
    signals: Iterable[SignalToSend | tuple[Any, ...]] = (),
    invariant: Invariant | None = None,
    effects: MutableSequence[Any] | None = None,
    reset: Callable[[], None] | None = None,
    id: str | None = None,
    timeout: float = 10.0,
    journals: str | None = None,
    max_examples: int = 20,
    max_crashes: int = 3,
    in_steps: bool = True,
    failures: bool = True,
    duplicates: bool = True,
    **open_options: Any,
) -> Baseline:
    """Check ``workflow(*args)`` under ``max_examples`` generated fault plans;
    the first that breaks it raises ``CrashSafetyError``, shrunk by hypothesis
    to a small plan and printed as the expression that rebuilds it.

    The arguments up to ``journals`` are ``CrashTest``'s, the rest after
    ``max_examples`` those of ``fault_plans``. Call it from a plain test, not
    inside ``@given`` (use ``CrashTest`` there). Returns the fault-free run.
    """
    test = CrashTest(
        workflow,
        *args,
        signals=signals,
        invariant=invariant,
        effects=effects,
        reset=reset,
        id=id,
        timeout=timeout,
        journals=journals,
        **open_options,
    )
    baseline = test.baseline  # a broken fault-free run fails here, plainly
    plans = fault_plans(
        baseline,
        max_crashes=max_crashes,
        in_steps=in_steps,
        failures=failures,
        duplicates=duplicates,
    )

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(plan=plans)
    def crash_safe(plan: FaultPlan) -> None:
        test.check(plan)

    try:
        crash_safe()
    except hypothesis.errors.Flaky as flaky:
        raise _flaky_to_error(test, flaky) from flaky
    return baseline


def _flaky_to_error(
    test: CrashTest, flaky: hypothesis.errors.Flaky
) -> NonDeterministicWorkflowError:
    """A plan that failed once and passed once: the workflow is not
    deterministic, whatever the failure said."""
    found = [
        error
        for error in getattr(flaky, "exceptions", ())
        if isinstance(error, CrashSafetyError)
    ]
    for error in found:
        if isinstance(error, NonDeterministicWorkflowError):
            return error
    if not found:
        what = f"one fault plan failed once and passed once ({flaky})"
        return NonDeterministicWorkflowError(
            test.workflow_id, "FaultPlan()", "  (see above)", what, "  (not kept)"
        )
    first = found[0]
    what = f"the same fault plan passed once and failed once: {first.what}"
    return NonDeterministicWorkflowError(
        first.workflow_id, first.plan, first.description, what, first.trace
    )


def _step(failure: FailStep) -> str:
    return failure.step
