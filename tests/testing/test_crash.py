"""``CrashTest`` and ``check_crash_safety``: faults injected, properties checked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from actors import ActorSystem
from actors.testing import (
    CrashAtCommit,
    CrashInStep,
    CrashSafetyError,
    CrashTest,
    FailStep,
    FaultFreeRunError,
    FaultPlan,
    RunReport,
    SignalToSend,
    check_crash_safety,
)
from actors.testing._audit import exactly_once, signals_once
from actors.testing._journals import fresh_journal
from aggregates import SignalReceived, StepCompleted
from journal import JournalPathError, open_reader
from tests.testing._workflows import (
    EFFECTS,
    LEDGER,
    budgets,
    counting,
    naive_order,
    order_flow,
    reset,
    waiter,
)

ORDER = "crash-test-order_flow"  # the default run id of order_flow
SIGNALS = [("approve", True), SignalToSend("note", "fragile", "note-1")]


def charged_once(report: RunReport) -> None:
    """The gateway booked one charge of the full amount."""
    assert list(LEDGER.values()) == [120], LEDGER


def booked_once(report: RunReport) -> None:
    charges = [e for e in report.effects if e.startswith("charge")]
    assert len(charges) == 1, f"the customer was charged {len(charges)} times"


ORDER_TEST = CrashTest(
    order_flow,
    "o-1",
    120,
    signals=SIGNALS,
    invariant=charged_once,
    effects=EFFECTS,
    reset=reset,
)


@pytest.fixture
def order_test() -> CrashTest:
    return ORDER_TEST


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset()
    yield
    reset()


def test_the_fault_free_run_gives_the_commits_steps_and_signals_to_draw_faults_from(
    order_test: CrashTest,
) -> None:
    baseline = order_test.baseline
    assert baseline.report.result["sent"] == "sent-o-1"
    assert baseline.report.result["note"] == "fragile"
    assert (
        baseline.report.result["at"] == datetime(2026, 1, 2, 1, tzinfo=UTC).isoformat()
    )
    assert baseline.commits >= 6
    assert baseline.step_names == {
        f"{ORDER}/1": "tests.testing.reserve",
        f"{ORDER}/5": "tests.testing.charge",
        f"{ORDER}/6/2": "tests.testing.notify",  # in the child run
    }
    assert {step.max_failures for step in baseline.steps} == {2}  # 3 attempts each
    assert baseline.signal_ids == ("signal-0", "note-1")
    assert baseline.report.consumed_signals == {"signal-0", "note-1"}


PLANS = {
    "crash before the spawn is durable": FaultPlan(crashes=[CrashAtCommit(1)]),
    "crash after the spawn is durable": FaultPlan(crashes=[CrashAtCommit(1, True)]),
    "crash before a step's result is durable": FaultPlan(crashes=[CrashAtCommit(2)]),
    "three crashes, after and before commits": FaultPlan(
        crashes=[CrashAtCommit(3, True), CrashAtCommit(2), CrashAtCommit(2, True)]
    ),
    "crash inside a step before its body": FaultPlan(
        crashes=[CrashInStep(f"{ORDER}/5")]
    ),
    "crash inside a child's step after its body": FaultPlan(
        crashes=[CrashInStep(f"{ORDER}/6/2", after_body=True)]
    ),
    "transient failures before and after the body": FaultPlan(
        failures=[FailStep(f"{ORDER}/1", 2), FailStep(f"{ORDER}/5", 2, True)]
    ),
    "duplicate signals, resent after crashes": FaultPlan(
        crashes=[CrashAtCommit(3, True), CrashAtCommit(1, True)],
        duplicate_signals=["signal-0", "note-1"],
        resend_signals=True,
    ),
    "a crash point past the end never comes": FaultPlan(
        crashes=[CrashAtCommit(99), CrashAtCommit(1)]
    ),
}


@pytest.mark.parametrize("plan", PLANS.values(), ids=PLANS.keys())
def test_each_kind_of_fault_leaves_an_idempotent_workflow_ending_as_without_it(
    order_test: CrashTest, plan: FaultPlan
) -> None:
    report = order_test.check(plan)
    assert report.result == order_test.baseline.report.result
    assert report.effects.count("notify o-1") >= 1


def test_a_signal_sent_twice_and_resent_after_a_crash_is_received_and_consumed_once(
    order_test: CrashTest,
) -> None:
    plan = FaultPlan(
        crashes=[CrashAtCommit(3, after=True)],  # right after the first signal
        duplicate_signals=["signal-0"],
        resend_signals=True,
    )
    report = order_test.check(plan)
    received = [e for e in report.events[ORDER] if isinstance(e, SignalReceived)]
    assert sorted(e.signal_id for e in received) == ["note-1", "signal-0"]
    assert report.acknowledged == {"signal-0", "note-1"}
    assert len(report.lives) == 2


@settings(max_examples=15, deadline=None)
@given(plan=ORDER_TEST.plans())
def test_generated_fault_plans_leave_an_idempotent_workflow_crash_safe(
    plan: FaultPlan,
) -> None:
    ORDER_TEST.check(plan)


def test_a_non_idempotent_step_breaks_the_invariant_when_the_process_dies_after_its_body(  # noqa: E501
    journal_location: str,
) -> None:
    test = CrashTest(
        naive_order,
        "o-9",
        50,
        invariant=booked_once,
        effects=EFFECTS,
        journals=journal_location,
    )
    assert test.check(FaultPlan(crashes=[CrashAtCommit(2)])).effects == (
        "reserve o-9",
        "reserve o-9",
        "charge 50 for o-9",
    )  # a crash before the charge: no harm
    plan = FaultPlan(crashes=[CrashInStep("crash-test-naive_order/2", after_body=True)])
    with pytest.raises(CrashSafetyError) as failed:
        test.check(plan)
    message = str(failed.value)
    assert "the customer was charged 2 times" in message
    assert (
        "dies in step crash-test-naive_order/2 (tests.testing.charge_naively) after"
        in message
    )
    assert f"crash_test.check({plan!r})" in message
    assert eval(failed.value.plan) == plan  # the repr rebuilds the plan


def test_check_crash_safety_finds_the_non_idempotent_step_with_one_crash() -> None:
    with pytest.raises(CrashSafetyError, match="charged 2 times") as failed:
        check_crash_safety(
            naive_order,
            "o-7",
            30,
            invariant=booked_once,
            effects=EFFECTS,
            max_examples=40,
            max_crashes=1,
            failures=False,
        )
    plan = eval(failed.value.plan)  # the repr rebuilds the plan
    assert isinstance(plan, FaultPlan)
    assert len(plan.crashes) == 1
    assert not plan.failures


def test_a_result_that_depends_on_how_often_a_step_ran_is_caught_without_an_invariant() -> (  # noqa: E501
    None
):
    test = CrashTest(counting)
    with pytest.raises(CrashSafetyError, match="the fault-free run ended completed"):
        test.check(FaultPlan(crashes=[CrashInStep("crash-test-counting/1", True)]))


def test_transient_failures_are_drawn_only_within_what_the_retry_policy_has_left() -> (
    None
):
    baseline = CrashTest(budgets).baseline
    assert {step.name: step.max_failures for step in baseline.steps} == {
        "tests.testing.once": 0,  # one attempt: a failure would change the run
        "tests.testing.patient": 2,  # three 10 s delays pass 25 s
        "tests.testing.reserve": 2,
    }


def test_a_fault_free_run_that_cannot_finish_says_what_it_waits_on() -> None:
    with pytest.raises(FaultFreeRunError, match="waits on a signal on 'go'"):
        _ = CrashTest(waiter, timeout=0.3).baseline


def test_an_invariant_the_fault_free_run_breaks_is_reported_before_any_fault() -> None:
    def never(report: RunReport) -> bool:
        return False

    test = CrashTest(counting, invariant=never)
    with pytest.raises(FaultFreeRunError, match="the invariant returned False"):
        test.check(FaultPlan(crashes=[CrashAtCommit(2)]))


def test_the_audits_report_two_outcomes_of_one_seq_and_a_signal_had_twice() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    done = [
        StepCompleted(
            originator_id="r", originator_version=v, timestamp=at, seq=1, result=v
        )
        for v in (2, 3)
    ]
    signal = [
        SignalReceived(
            originator_id="r",
            originator_version=v,
            timestamp=at,
            topic="t",
            payload=None,
            signal_id="s",
        )
        for v in (4, 5)
    ]
    assert exactly_once({"r": done}) == [
        "run 'r' recorded 2 outcomes for seq 1 (StepCompleted, StepCompleted)"
    ]
    assert signals_once(signal, {"s", "lost"}, {"s"}) == [
        "signal 's' was received 2 times",
        "signal 'lost' was acknowledged to the client but is not in history",
        "signal 's' was never consumed (the fault-free run consumed it)",
    ]


def test_a_plan_describes_each_fault_in_words_naming_the_steps() -> None:
    plan = FaultPlan(
        crashes=[CrashAtCommit(4), CrashInStep("o/2", after_body=True)],
        failures=[FailStep("o/3", 2)],
        duplicate_signals=["s"],
        resend_signals=True,
    )
    assert plan.describe({"o/2": "charge"}).splitlines() == [
        "  life 1: the process dies before its commit 4 is durable",
        "  life 2: the process dies in step o/2 (charge) after its body ran (its "
        "effects happened, its outcome is lost)",
        "  life 3: no crash (the journal reopened to finish)",
        "  step o/3 fails its first 2 attempt(s), before its body runs",
        "  the client sends signal 's' twice",
        "  after each crash the client resends every signal",
    ]


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(plan=ORDER_TEST.plans(max_crashes=5))
def test_many_generated_fault_plans_leave_an_idempotent_workflow_crash_safe(
    plan: FaultPlan,
) -> None:
    ORDER_TEST.check(plan)


def test_each_run_under_a_plan_gets_a_journal_of_its_own_removed_afterwards(
    journal_location: str,
) -> None:
    with (
        fresh_journal(journal_location) as first,
        fresh_journal(journal_location) as second,
    ):
        assert first != second
        for path in (first, second):
            ActorSystem.open(path).close()
            open_reader(path).close()
    for path in (first, second):
        with pytest.raises(JournalPathError):
            open_reader(path)
