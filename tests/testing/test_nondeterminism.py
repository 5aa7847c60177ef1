"""A workflow that reads the clock, ``random``, ``uuid`` or a global outside
``ctx`` is reported as not deterministic (``NonDeterministicWorkflowError``, a
``CrashSafetyError``), never as hypothesis's ``Flaky``; and the plan every
error prints rebuilds itself."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings

import actors.testing
from actors.testing import (
    CrashAtCommit,
    CrashSafetyError,
    CrashTest,
    FaultPlan,
    NonDeterministicWorkflowError,
    check_crash_safety,
)
from tests.testing import _nondeterministic as nd
from tests.testing._workflows import counting, order_flow, reset

STAR = {name: getattr(actors.testing, name) for name in actors.testing.__all__}


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset()
    yield
    reset()


def test_a_result_holding_time_time_is_reported_not_deterministic_with_both_results() -> (  # noqa: E501
    None
):
    with pytest.raises(NonDeterministicWorkflowError) as failed:
        check_crash_safety(nd.stamped, "o-1", max_examples=5)
    message = str(failed.value)
    assert "'crash-test-stamped' is not deterministic" in message
    assert "with the same history it ended completed with {'reservation'" in message
    assert "use ctx.now()" in message
    assert "ctx.random()" in message
    assert "reproduce with: crash_test.check(FaultPlan())" in message
    assert isinstance(failed.value, CrashSafetyError)


def test_a_step_argument_from_uuid4_is_reported_at_its_seq() -> None:
    with pytest.raises(NonDeterministicWorkflowError, match="asked at seq 1 for step"):
        _ = CrashTest(nd.fresh_ids).baseline


@pytest.mark.parametrize("workflow", [nd.counted, nd.remembering], ids=str)
def test_a_global_that_changes_between_runs_is_reported_not_deterministic(
    workflow: actors.WorkflowDefinition,
) -> None:
    args = () if workflow is nd.counted else ("o-2",)
    with pytest.raises(NonDeterministicWorkflowError, match="the first time"):
        check_crash_safety(workflow, *args, max_examples=5)


def test_a_branch_on_random_random_is_reported_not_deterministic_never_flaky() -> None:
    test = CrashTest(nd.coin_flip, "o-3")

    def check_until_caught() -> None:
        for seed in range(40):  # each pair of runs differs half the time
            random.seed(seed)
            test.check(FaultPlan(crashes=[CrashAtCommit(2, after=True)]))

    with pytest.raises(NonDeterministicWorkflowError) as failed:
        check_until_caught()
    assert "not deterministic" in str(failed.value)
    with pytest.raises(NonDeterministicWorkflowError):  # and it stays so
        test.check(FaultPlan())


def test_a_step_whose_result_changes_between_runs_is_not_the_workflows_fault() -> None:
    test = CrashTest(counting)
    assert test.baseline.report.result == 1  # runs twice: 1, then 2, no error


@settings(max_examples=40, deadline=None)
@given(plan=CrashTest(order_flow, "o-1", 120).plans(max_crashes=4))
def test_the_repr_of_a_generated_plan_evaluates_to_an_equal_plan(
    plan: FaultPlan,
) -> None:
    assert eval(repr(plan), dict(STAR)) == plan  # as after from actors.testing import *


def test_the_reproduce_with_line_of_an_error_is_python_that_fails_the_same_way() -> (
    None
):
    crash_test = CrashTest(counting)
    plan = FaultPlan(
        crashes=[actors.testing.CrashInStep("crash-test-counting/1", True)]
    )
    with pytest.raises(CrashSafetyError) as failed:
        crash_test.check(plan)
    line = next(
        text for text in str(failed.value).splitlines() if "reproduce with:" in text
    )
    code = line.partition("reproduce with: ")[2]
    assert code == f"crash_test.check({plan!r})"
    with pytest.raises(CrashSafetyError, match="the fault-free run ended"):
        eval(code, {**STAR, "crash_test": crash_test})
