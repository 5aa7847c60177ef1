"""The examples run end to end."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import Application

from actors.testing import RunReport, WorkflowTestEnv, check_crash_safety
from aggregates import CommandKind, WorkflowRun

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_order_workflow_example_completes_and_reopens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = runpy.run_path(str(EXAMPLES / "order_workflow.py"))
    module["main"](str(tmp_path / "journal"))
    out = capsys.readouterr().out
    assert "'approved': True} after attempts [1, 2]" in out
    assert "reopened: {'order': 'o-1'" in out


def run_example(name: str, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """The example's module globals and what its ``main`` returned."""
    module = runpy.run_path(str(EXAMPLES / name))
    return module, module["main"](str(tmp_path / "journal"))


def recorded_steps(path: Path, workflow_id: str) -> list[tuple[str | None, str]]:
    """(step name, outcome kind) of each step the run's history holds."""
    app = Application[str](
        env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(path)}
    )
    try:
        run: WorkflowRun = app.repository.get(workflow_id)
    finally:
        app.close()
    return [
        (record.name, str(record.outcome.kind) if record.outcome else "open")
        for record in run.commands
        if record.kind is CommandKind.STEP
    ]


def test_the_order_saga_ships_one_order_and_compensates_the_other_in_reverse(
    tmp_path: Path,
) -> None:
    module, results = run_example("order_saga.py", tmp_path)
    assert results["o-1"] == {
        "order": "o-1",
        "status": "shipped",
        "tracking": "trk-o-1",
    }
    assert results["o-2"]["status"] == "cancelled"
    assert results["o-2"]["reason"].startswith("AddressRejectedError: ")
    effects = module["effects"]
    assert effects[:4] == [
        "reserve book, lamp for o-1",
        "charge 120 for o-1 (key order-o-1/2)",
        "ship o-1: carrier API timed out (attempt 1)",
        "ship o-1 to 1 Main St (attempt 2)",
    ]
    assert effects[4:] == [
        "reserve chair for o-2",
        "charge 80 for o-2 (key order-o-2/2)",
        "ship o-2: address 'nowhere' rejected",  # non-retryable: one attempt
        "refund 80 on ch-o-2",
        "release res-o-2",
    ]
    assert recorded_steps(tmp_path / "journal", "order-o-2") == [
        ("reserve_inventory", "completed"),
        ("charge_payment", "completed"),
        ("ship_order", "failed"),
        ("refund_payment", "completed"),
        ("release_inventory", "completed"),
    ]


def each_order_charged_once_and_compensated_only_if_not_shipped(
    report: RunReport,
) -> None:
    """The order saga's invariant under crashes: steps may run again, but with
    one idempotency key per charge (the gateway books it once), and the saga
    compensates exactly when the order did not ship."""
    effects = [line.split(" ", 1)[0] for line in report.effects]
    charges = {line for line in report.effects if line.startswith("charge ")}
    assert len(charges) == 1, charges
    shipped = report.result["status"] == "shipped"
    assert ("refund" in effects) is not shipped
    assert ("release" in effects) is not shipped
    assert "reserve" in effects


def test_the_order_saga_is_crash_safe_and_each_order_is_charged_once() -> None:
    module = runpy.run_path(str(EXAMPLES / "order_saga.py"))
    for order_id, (items, amount, address) in module["ORDERS"].items():
        baseline = check_crash_safety(
            module["place_order"],
            order_id,
            items,
            amount,
            address,
            effects=module["effects"],
            invariant=each_order_charged_once_and_compensated_only_if_not_shipped,
            max_examples=10,
        )
        status = "shipped" if order_id == "o-1" else "cancelled"
        assert baseline.report.result["status"] == status


def test_the_order_saga_runs_in_a_time_skipping_test_environment() -> None:
    module = runpy.run_path(str(EXAMPLES / "order_saga.py"))
    with WorkflowTestEnv() as env:
        ref = env.spawn(module["place_order"], "o-3", ["pen"], 5, "2 Side St")
        assert env.result(ref)["tracking"] == "trk-o-3"
    assert module["effects"][-1] == "ship o-3 to 2 Side St (attempt 2)"


def test_the_payment_refunds_a_rejected_ledger_entry_and_shrugs_off_a_bounced_receipt(
    tmp_path: Path,
) -> None:
    module, results = run_example("payment.py", tmp_path)
    assert results["p-1"] == {
        "payment": "p-1",
        "status": "paid",
        "ledger": "le-p-1",
        "receipt": "mail-ch-p-1",
    }
    assert results["p-2"] == {
        "payment": "p-2",
        "status": "paid",
        "ledger": "le-p-2",
        "receipt": None,
    }
    assert results["p-3"]["status"] == "refunded"
    assert results["p-3"]["refund"] == "rf-ch-p-3"
    assert results["p-3"]["reason"].startswith("LedgerRejectedError: ")
    assert module["gateway"] == {
        "payment-p-1/1": "ch-p-1",
        "payment-p-2/1": "ch-p-2",
        "payment-p-3/1": "ch-p-3",
    }
    effects = module["effects"]
    assert effects.count("receipt to bob@mail.invalid bounced") == 2  # both attempts
    assert effects[-3:] == [
        "charge 25000 to 5555 (idempotency key payment-p-3/1)",
        "ledger rejects ch-p-3: 25000 is over the limit",
        "refund 25000 on ch-p-3",
    ]
    assert recorded_steps(tmp_path / "journal", "payment-p-2")[-1] == (
        "send_receipt",
        "failed",
    )


def test_the_approval_escalates_on_timeout_and_grants_or_rejects_on_signals(
    tmp_path: Path,
) -> None:
    module, results = run_example("approval.py", tmp_path)
    assert results == {
        "r-1": {"request": "r-1", "status": "escalated", "to": "esc-ticket-r-1"},
        "r-2": {"request": "r-2", "status": "approved", "by": ["alice", "bob"]},
        "r-3": {"request": "r-3", "status": "rejected", "by": "carol"},
    }
    assert module["effects"] == [
        "submit r-1 for 900",
        "escalate ticket-r-1 to a manager (approved so far by ['alice'])",
        "submit r-2 for 500",
        "notify requester: ticket-r-2 approved",
        "submit r-3 for 50000",
        "notify requester: ticket-r-3 rejected by carol",
    ]


def test_the_onboarding_sleeps_through_a_restart_and_creates_the_account_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module, result = run_example("onboarding.py", tmp_path)
    assert result == {
        "account": "acct-u-1",
        "follow_up": "msg-ada@example.com",
        "waited_s": 3600.0,
    }
    assert module["effects"] == [
        "create account u-1 <ada@example.com>",
        "email ada@example.com: 'How is your first hour going?'",
    ]
    out = capsys.readouterr().out
    assert out.index("closing while the run sleeps") < out.index("reopened:")
    assert out.index("reopened:") < out.index("email ada@example.com")


def test_the_agent_loop_answers_with_tools_and_gives_up_at_the_turn_cap(
    tmp_path: Path,
) -> None:
    module, results = run_example("agent_loop.py", tmp_path)
    assert results["lyon"] == {
        "status": "answered",
        "answer": "Twice the population of Lyon is 1,044,500.",
        "turns": 3,
    }
    assert results["weather"]["status"] == "gave_up"
    assert results["weather"]["turns"] == module["MAX_TURNS"] == 6
    # 3 + 6 model calls, 1 + 6 lookups; reopening replays nothing
    assert module["calls"] == {"think": 9, "lookup": 7, "multiply": 1}
    assert recorded_steps(tmp_path / "journal", "agent-lyon") == [
        ("think", "completed"),
        ("lookup", "completed"),
        ("think", "completed"),
        ("multiply", "completed"),
        ("think", "completed"),
    ]


@pytest.mark.multiprocess
def test_the_fencing_example_refuses_a_thawed_hosts_stale_write() -> None:
    """A host frozen mid-step loses its run to another; thawed, its write is
    refused by the store (its token is older) and the account credited once."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "fencing_tokens.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    stale = re.search(r"A: crediting alice under token (\d+)", out)
    fresh = re.search(r"B: credited 100 to alice under token (\d+)", out)
    assert stale is not None, out
    assert fresh is not None, out
    assert int(fresh.group(1)) > int(stale.group(1))
    assert f"A: the store refused the write of stale token {stale.group(1)}" in out
    assert f"alice: balance 100, last written under token {fresh.group(1)}" in out
