"""The examples' golden histories replay against the examples' current code.

The files in ``golden/`` were recorded by ``make_golden.py``. A failure here means
an example's code changed so that runs recorded before cannot replay: guard the
change with ``ctx.patched``, do not regenerate the files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import (
    NonDeterminismError,
    Replayer,
    ReplayStatus,
    WorkflowContext,
    WorkflowDefinition,
    load_history,
)
from aggregates import Command, CommandKind
from examples import payment
from tests.replay import _workflows as flows

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN.glob("*.json"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_workflow_example_has_golden_histories() -> None:
    recorded = {path.name.split(".")[0] for path in FILES}
    workflow_examples = {
        path.stem
        for path in EXAMPLES.glob("*.py")
        if "@workflow" in path.read_text(encoding="utf-8")
    }
    assert recorded == workflow_examples
    assert len(FILES) >= 12


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_the_golden_history_replays_against_the_current_example_code(
    path: Path,
) -> None:
    result = Replayer().replay(load_history(path))  # resolved by name, by import
    result.check()
    assert result.status is ReplayStatus.OK


async def _pay_with_an_audit_first(
    ctx: WorkflowContext, payment_id: str, card: str, amount: int, email: str
) -> dict[str, str]:
    """examples/payment.py's ``pay`` as someone changed it: an audit step now
    comes between the charge and the ledger entry, unguarded by ctx.patched."""
    charge = await ctx.call(payment.charge_card, payment_id, card, amount)
    await ctx.call(flows.audit, charge)
    entry = await ctx.call(payment.write_ledger, payment_id, charge, amount)
    return {"payment": payment_id, "ledger": entry}


def test_changed_code_replaying_a_golden_history_names_run_seq_and_commands() -> None:
    history = load_history(GOLDEN / "payment.payment-p-1.json")
    changed = WorkflowDefinition(_pay_with_an_audit_first, "examples.payment:pay")
    flows.executed.clear()
    payment.effects.clear()

    result = Replayer([changed]).replay(history)

    assert result.status is ReplayStatus.NON_DETERMINISTIC
    error = result.error
    assert isinstance(error, NonDeterminismError)
    assert error.workflow_id == "payment-p-1"
    assert error.seq == 2
    assert error.recorded == Command(CommandKind.STEP, "write_ledger")
    assert error.requested == Command(CommandKind.STEP, "audit")
    assert str(error) == (
        "workflow 'payment-p-1' is not deterministic at seq 2: its history holds "
        "step 'write_ledger', but the code now asks for step 'audit'. The workflow "
        "code changed while this run was in flight: restore the code it started "
        "with, or guard the change with ctx.patched(...) so old runs keep their "
        "old path"
    )
    assert (
        str(result) == f"payment-p-1 (examples.payment:pay): non-deterministic: {error}"
    )
    with pytest.raises(NonDeterminismError) as raised:
        result.check()
    assert raised.value is error
    assert flows.executed == []  # the audit step was asked for, never run
    assert payment.effects == []  # nor was the recorded charge run again
