"""Hosts and clients on a PostgreSQL journal (issue 14): the same runtime as on
LMDB, with a URL where a directory was."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

psycopg = pytest.importorskip("psycopg")


from actors import (  # noqa: E402
    ActorSystem,
    Audit,
    Client,
    Replayer,
    ReplayStatus,
    RunStatus,
    WorkflowContext,
    activity,
    workflow,
)
from journal import JournalPathError, LeaseSettingError  # noqa: E402
from tests._postgres_server import journal_url  # noqa: E402

_executed: Counter[str] = Counter()
_lock = threading.Lock()


_log: list[tuple[str, int | None, float]] = []


@activity(name="tests.pg.double")
def double(x: int) -> int:
    info = activity.info()
    with _lock:
        _executed[info.idempotency_key] += 1
        _log.append((info.idempotency_key, info.fencing_token, time.monotonic()))
    return x * 2


@workflow(name="tests.pg.steps_and_signal")
async def steps_and_signal(ctx: WorkflowContext, x: int) -> list[object]:
    first = await ctx.call(double, x)
    go = await ctx.receive("go")
    return [first, go, await ctx.call(double, first)]


@pytest.fixture
def url(postgres_dsn: str) -> Iterator[str]:
    with journal_url(postgres_dsn, "chronik_hosts") as location:
        yield location


@pytest.fixture(autouse=True)
def _reset() -> None:
    _executed.clear()


def test_a_system_on_a_postgresql_url_runs_steps_signals_and_results(url: str) -> None:
    with ActorSystem.open(url, lease_ttl=1.0) as system:
        ref = system.spawn(steps_and_signal, 3, id="pg-1")
        ref.send("go", "now", signal_id="go-1")
        assert ref.result(timeout=10) == [6, "now", 12]
        assert system.history("pg-1").status is RunStatus.COMPLETED
    with ActorSystem.open(url, lease_ttl=1.0) as reopened:  # replayed from there
        assert reopened.ref("pg-1").result(timeout=5) == [6, "now", 12]
    assert _executed == Counter({"pg-1/1": 1, "pg-1/3": 1})


def test_a_client_starts_and_signals_runs_that_hosts_on_postgresql_drive(
    url: str,
) -> None:
    with (
        ActorSystem.open(url, lease_ttl=1.0) as a,
        ActorSystem.open(url, lease_ttl=1.0) as b,
        Client(url) as client,
    ):
        _wait_shared_out(a, b)
        ids = [f"c-{i}" for i in range(20)]
        for index, run_id in enumerate(ids):
            client.start(steps_and_signal, index, id=run_id)
        for run_id in ids:
            client.signal(run_id, "go", run_id)
        results = [client.result(run_id, timeout=20) for run_id in ids]
    assert results == [[2 * i, f"c-{i}", 4 * i] for i in range(20)]
    assert len(_executed) == 40
    assert set(_executed.values()) == {1}


def test_a_crashed_hosts_runs_move_to_the_other_once_its_leases_expire(
    url: str,
) -> None:
    a = ActorSystem.open(url, lease_ttl=1.0)
    b = ActorSystem.open(url, lease_ttl=1.0)
    try:
        _wait_shared_out(a, b)
        run_id = next(f"r-{i}" for i in range(1000) if b.drives(f"r-{i}"))
        ref = a.spawn(steps_and_signal, 5, id=run_id)  # b drives it
        deadline = time.monotonic() + 10
        while len(a.history(run_id).commands) < 2:  # b ran the step, now waits
            assert time.monotonic() < deadline
            time.sleep(0.02)
        _freeze(b)
        started = time.monotonic()
        ref.send("go", "later")  # queued: a takes the run when b's leases expire
        assert ref.result(timeout=15) == [10, "later", 20]
        assert time.monotonic() - started < 1.0 + 3.0
    finally:
        b.close()
        a.close()
    assert _executed[f"{run_id}/1"] == 1, _log


def test_a_named_host_restarted_takes_its_runs_back_at_once(url: str) -> None:
    """As DBOS recovers an executor's work when it restarts under its id: the
    killed life's leases (TTL 30 s) are taken when the name comes back."""
    first = ActorSystem.open(url, lease_ttl=30.0, host_name="worker-1")
    try:
        first.spawn(steps_and_signal, 3, id="named-1")
        deadline = time.monotonic() + 10
        while len(first.history("named-1").commands) < 2:  # the step ran; it waits
            assert time.monotonic() < deadline
            time.sleep(0.02)
        _freeze(first)
        started = time.monotonic()
        with ActorSystem.open(url, lease_ttl=30.0, host_name="worker-1") as again:
            assert again.stats().partitions_held == 64
            again.ref("named-1").send("go", "back")
            assert again.ref("named-1").result(timeout=10) == [6, "back", 12]
        assert time.monotonic() - started < 10  # not the 30 s of the leases
        with Client(url) as client:
            assert client.status("named-1") is RunStatus.COMPLETED
    finally:
        first.close()
    assert _executed["named-1/1"] == 1, _log


def test_another_name_waits_for_a_frozen_hosts_leases(url: str) -> None:
    first = ActorSystem.open(url, lease_ttl=30.0, host_name="worker-1")
    try:
        _freeze(first)
        with ActorSystem.open(url, lease_ttl=30.0, host_name="worker-2") as other:
            assert other.stats().partitions_held == 0
    finally:
        first.close()


@pytest.mark.parametrize("name", ["", "a#b", "x" * 101, 7])
def test_a_bad_host_name_is_refused_before_anything_is_opened(
    url: str, name: object
) -> None:
    with pytest.raises(LeaseSettingError, match="host_name"):
        ActorSystem.open(url, host_name=name)  # type: ignore[arg-type]
    with pytest.raises(JournalPathError, match="holds no chronik journal"):
        Client(url)


def _wait_shared_out(*hosts: ActorSystem) -> None:
    """Until the hosts hold every partition between them, each some: runs
    started from then on are not handed over while they work."""
    deadline = time.monotonic() + 15
    while True:
        held = [h.stats().partitions_held for h in hosts]
        if sum(held) == 64 and all(held):
            return
        assert time.monotonic() < deadline, f"the hosts never shared out: {held}"
        time.sleep(0.05)


def _freeze(system: ActorSystem) -> None:
    """As if the host's process stopped (a PostgreSQL journal's hosts have no
    presence lock: only their leases running out tells): no renewals, no
    deliveries from its inbox."""

    def frozen(*args: object, **kwargs: object) -> object:
        msg = "frozen for the test"
        raise RuntimeError(msg)

    system._ownership.tick = frozen  # type: ignore[method-assign]
    assert system._inbox is not None
    system._inbox.stop()


def test_a_client_on_a_database_with_no_journal_is_refused_and_writes_nothing(
    url: str,
) -> None:
    with pytest.raises(JournalPathError, match="holds no chronik journal"):
        Client(url)


def test_audit_and_the_replay_checker_read_a_postgresql_journal(url: str) -> None:
    with ActorSystem.open(url, lease_ttl=1.0) as system:
        ref = system.spawn(steps_and_signal, 1, id="audited")
        ref.send("go", "yes")
        assert ref.result(timeout=10) == [2, "yes", 4]
    with Audit(url) as audit:
        (summary,) = audit.runs()
        assert (summary.workflow_id, summary.status) == ("audited", RunStatus.COMPLETED)
        names = [type(e).__name__ for e in audit.history("audited")]
        assert names[0] == "Started"
        assert names[-1] == "Completed"
        assert audit.state("audited").result == [2, "yes", 4]
        verified = audit.verify()
        assert verified.ok, (verified.chain.problems, verified.replay.summary())
        assert verified.chain.events >= len(names)  # and the runs' index
    report = Replayer().replay_journal(url)
    assert report.ok, report.summary()
    assert report.count(ReplayStatus.OK) == 1


def test_the_chronik_command_takes_a_postgresql_url(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from actors.cli._app import main

    with ActorSystem.open(url, lease_ttl=1.0) as system:
        ref = system.spawn(steps_and_signal, 4, id="cli-1")
        deadline = time.monotonic() + 10
        while len(system.history("cli-1").commands) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        capsys.readouterr()
        assert main(["-j", url, "list", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [r["workflow_id"] for r in listed] == ["cli-1"]
        assert main(["-j", url, "signal", "cli-1", "go", '"from-cli"']) == 0
        assert "delivered" in capsys.readouterr().out  # a live host took it
        assert ref.result(timeout=10) == [8, "from-cli", 16]
        assert main(["-j", url, "show", "cli-1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert (
        main(["-j", url, "verify", "-m", "tests.actors.test_postgres_hosts", "--json"])
        == 0
    )
    verified = json.loads(capsys.readouterr().out)
    assert verified["ok"] is True, verified


def _with_port(url: str, port: int) -> str:
    split = urlsplit(url)
    netloc = f"{split.username}@{split.hostname}:{port}"
    return urlunsplit(split._replace(netloc=netloc))


def _with_user(url: str, user: str) -> str:
    split = urlsplit(url)
    netloc = f"{user}@{split.hostname}:{split.port}"
    return urlunsplit(split._replace(netloc=netloc))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda u: _with_port(u, 1), "refused"),
        (lambda u: _with_user(u, "no_such_role_x"), "does not exist"),
    ],
    ids=["server-down", "unknown-user"],
)
def test_a_server_that_is_down_or_refuses_the_login_is_named_as_such(
    url: str, change: Callable[[str], str], problem: str
) -> None:
    bad = change(url)
    with pytest.raises(JournalPathError, match="cannot be reached") as refused:
        ActorSystem.open(bad, lease_ttl=1.0)
    assert problem in str(refused.value)
    with pytest.raises(JournalPathError, match="cannot be reached"):
        Client(bad)
