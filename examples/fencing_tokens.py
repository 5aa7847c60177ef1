"""Fencing tokens: a frozen host's late write is refused by the store itself.

Two hosts share a journal (each an ``ActorSystem.open`` on it). Host A, in a
child process, starts a payment whose step credits an account in SQLite, and is
frozen (SIGSTOP) in the middle of that step, before its write. Its lease runs
out; host B, this process, takes the run over and runs the step again under a
larger fencing token: its write lands. Then A is thawed (SIGCONT) and finishes
its stale attempt: the store refuses the write because its token is older
(``UPDATE ... WHERE fence < :token``), and the journal refuses A's commit too.
The account is credited once.

    python examples/fencing_tokens.py
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import ActorSystem, WorkflowContext, activity, workflow
from aggregates import RunStatus

TTL = 1.0


def _db(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=10)


# Named as imported, so that both hosts (one runs this file as __main__) and a
# replay of the history resolve the same code.
@activity(name="examples.fencing_tokens:credit")
def credit(db_path: str, account: str, amount: int) -> str:
    token = activity.info().fencing_token
    assert token is not None, "a shared system hands every step its token"
    if os.environ.get("FENCING_EXAMPLE_FREEZE"):  # host A: stop here
        print(f"A: crediting {account} under token {token}", flush=True)
        time.sleep(4 * TTL)  # frozen by SIGSTOP meanwhile, then thawed
    with _db(db_path) as db:
        changed = db.execute(
            "UPDATE accounts SET balance = balance + :amount, fence = :token "
            "WHERE id = :account AND fence < :token",
            {"amount": amount, "token": token, "account": account},
        ).rowcount
    who = "A" if os.environ.get("FENCING_EXAMPLE_FREEZE") else "B"
    if changed:
        print(f"{who}: credited {amount} to {account} under token {token}", flush=True)
        return f"credited under token {token}"
    print(f"{who}: the store refused the write of stale token {token}", flush=True)
    return f"refused for token {token}"


@workflow(name="examples.fencing_tokens:pay")
async def pay(ctx: WorkflowContext, db_path: str, account: str, amount: int) -> str:
    return str(await ctx.call(credit, db_path, account, amount))


def host_a(journal: str, db_path: str) -> None:
    """The child: start the payment and run its step (it gets frozen in it)."""
    with ActorSystem.open(journal, lease_ttl=TTL) as system:
        system.spawn(pay, db_path, "alice", 100, id="pay-1")
        time.sleep(60)  # killed by the parent long before


def main(journal: str | None = None) -> None:
    """``journal``: where the journal goes (the SQLite file goes beside it)."""
    if journal is None:
        journal = str(Path(tempfile.mkdtemp(prefix="chronik-fencing-")) / "journal")
    db_path = str(Path(journal).parent / "bank.sqlite")
    with _db(db_path) as db:
        db.execute(
            "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INT, fence INT)"
        )
        db.execute("INSERT INTO accounts VALUES ('alice', 0, 0)")
    env = dict(os.environ, FENCING_EXAMPLE_FREEZE="1")
    child = subprocess.Popen(
        [sys.executable, __file__, "host-a", journal, db_path],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        print(line, end="")
        os.kill(child.pid, signal.SIGSTOP)
        print("A is frozen (SIGSTOP) before its write; B opens the journal")
        with ActorSystem.open(journal, lease_ttl=TTL) as b:
            deadline = time.monotonic() + 20
            while b.history("pay-1").status is not RunStatus.COMPLETED:
                assert time.monotonic() < deadline, "B never took the run over"
                time.sleep(0.05)
            print(f"B: the run completed: {b.history('pay-1').result!r}")
            os.kill(child.pid, signal.SIGCONT)
            print("A is thawed (SIGCONT): its stale attempt goes on")
            print(child.stdout.readline(), end="")
        with _db(db_path) as db:
            balance, fence = db.execute(
                "SELECT balance, fence FROM accounts WHERE id = 'alice'"
            ).fetchone()
        print(f"alice: balance {balance}, last written under token {fence}")
        assert balance == 100, "credited once"
    finally:
        child.kill()
        child.wait(10)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "host-a":
        host_a(sys.argv[2], sys.argv[3])
    else:
        main()
