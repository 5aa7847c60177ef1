"""Hosts on several machines share one PostgreSQL journal (issue 14).

Each host is a process (``_multihost_host``) in a network namespace of its own,
reaching the server over TCP through its veth link and a forwarder in the test
process (``tests._netns``); the test process is a ``Client`` of the journal in
the root namespace. As on one machine (``test_multihost.py``), each step runs
once while nothing fails and a SIGKILLed host's runs finish on the others. And
what only several machines show: a host whose link is cut past its lease TTL
loses its runs to the others while its connections stall, its late commits are
refused once the link is back (``FencedOutError``), nothing is recorded twice,
and it rejoins as a host. A host whose connections are reset (a proxy or NAT
restarting) listens for wakes again and idles.

Every step execution is a line ``"<idempotency key> <pid>"`` of the count file
(the namespaces share the file system), so the test counts executions across
processes and sees which host made each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

psycopg = pytest.importorskip("psycopg")

from psycopg.sql import SQL, Identifier  # noqa: E402

from actors import Client, RunStatus, export_histories  # noqa: E402
from aggregates import (  # noqa: E402
    CommandKind,
    Completed,
    RunEvent,
    SignalConsumed,
    SignalReceived,
    StepCompleted,
)
from journal import (  # noqa: E402
    PARTITIONS,
    PostgresLocation,
    parse_location,
    partition_of,
)
from tests._netns import Forwarder, Link, links, unavailable  # noqa: E402
from tests._postgres_server import connection_settings, journal_url  # noqa: E402
from tests.actors._multihost_host import (  # noqa: E402
    CLOSED,
    ONE_STEP,
    READY,
    STEP_SIGNAL_STEP,
    expected_result,
)

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0  # seconds a lease holds without renewal: renewed every TTL / 3
CUT = 4 * TTL  # how long a link stays cut, at least
# The seqs of step_signal_step's steps (its receive is seq 2).
FIRST_STEP, SECOND_STEP = 1, 3


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.02)


class Machine:
    """A namespace, and the journal's URL as its processes reach it: the
    forwarder on the root end of its link."""

    def __init__(self, link: Link, url: str, server: tuple[str, int] | str) -> None:
        self.link = link
        self.forwarder = Forwarder(link.outer_address, server)
        split = urlsplit(url)
        user = split.netloc.rpartition("@")[0]
        netloc = f"{user}@{link.outer_address}:{self.forwarder.port}"
        self.url = urlunsplit(split._replace(netloc=netloc))


class Host:
    """One host process on a machine of its own; its stdout and stderr go to
    files. Its sessions on the server carry its ``application_name``."""

    def __init__(self, cluster: Cluster, machine: Machine, name: str) -> None:
        self.name = name
        self.machine = machine
        self.application = f"{cluster.schema}-{name}"
        self.out = cluster.root / f"{name}.out"
        self.err = cluster.root / f"{name}.err"
        command = [
            sys.executable,
            "-m",
            "tests.actors._multihost_host",
            machine.url,
            str(TTL),
            str(cluster.count_file),
        ]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                machine.link.command(command),
                cwd=ROOT,
                env={**os.environ, "PGAPPNAME": self.application},
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid  # ``ip netns exec`` execs the host in place

    def log(self) -> str:
        return self.err.read_text()

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"host {self.name} exited early:\n{self.log()}")
        return self.out.read_text().startswith(READY)

    def terminate(self) -> int:
        """SIGTERM: the host closes its system; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def end(self) -> None:
        """Whatever state it is in, make sure it is gone."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)


class Cluster:
    """Machines with a host each on one journal, the test's own ``Client`` of
    it, and a connection of the test's to the server to look at the leases
    and at the hosts' sessions."""

    def __init__(self, root: Path, dsn: str, url: str, links: list[Link]) -> None:
        self.root = root
        self.url = url
        location = parse_location(url)
        assert isinstance(location, PostgresLocation)
        self.schema = location.schema
        self.count_file = root / "executions"
        self.machines = [Machine(link, url, _server_of(dsn)) for link in links]
        self.hosts: list[Host] = []
        self._monitor = psycopg.connect(autocommit=True, **connection_settings(dsn))
        self._client: Client | None = None

    def start_hosts(self, count: int = 3) -> list[Host]:
        """A host on each of ``count`` machines, one after the other: two
        ``ActorSystem.open`` at once on one PostgreSQL journal may fail
        (``tuple concurrently updated``: each runs the recorder's ``CREATE OR
        REPLACE FUNCTION``, journal/_pg_append.py). Return once they share the
        partitions evenly."""
        hosts = []
        for index, machine in enumerate(self.machines[:count]):
            host = Host(self, machine, f"host-{index}")
            self.hosts.append(host)
            hosts.append(host)
            _wait(host.ready, 30, f"host {host.name} opened the journal")
        _wait(lambda: self.balanced(hosts), 15, "the hosts share the partitions")
        return hosts

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url)
        return self._client

    def held(self) -> dict[int, int]:
        """Partition -> pid of the host holding its lease now."""
        query = SQL(
            "SELECT partition, owner FROM {}.chronik_leases WHERE expires_at > %s"
        ).format(Identifier(self.schema))
        rows = self._monitor.execute(query, (time.time(),)).fetchall()
        return {int(partition): _pid_of(owner) for partition, owner in rows}

    def balanced(self, hosts: list[Host]) -> bool:
        held = Counter(self.held().values())
        share = -(-PARTITIONS // len(hosts))
        return sum(held.values()) == PARTITIONS and all(
            0 < held[h.pid] <= share for h in hosts
        )

    def hold_everything(self, hosts: list[Host]) -> bool:
        """Whether ``hosts`` hold every partition between them, each some."""
        held = self.held()
        return len(held) == PARTITIONS and set(held.values()) == {h.pid for h in hosts}

    def in_transaction(self, host: Host) -> bool:
        """Whether a session of ``host`` is in a transaction (or a statement)
        on the server now."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND state IS DISTINCT FROM 'idle'"
        )
        row = self._monitor.execute(query, (host.application,)).fetchone()
        return row is not None and row[0] > 0

    def listening(self, host: Host) -> bool:
        """Whether a session of ``host`` listens for wakes (its last
        statement was a ``LISTEN``)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND query LIKE 'LISTEN %%'"
        )
        row = self._monitor.execute(query, (host.application,)).fetchone()
        return row is not None and row[0] > 0

    def events(self, ids: list[str]) -> dict[str, tuple[RunEvent, ...]]:
        """The events of runs ``ids``, read in one go."""
        return {h.workflow_id: h.events for h in export_histories(self.url, ids)}

    def executions(self) -> list[tuple[str, int]]:
        """Every step execution so far: (idempotency key, pid)."""
        if not self.count_file.exists():
            return []
        lines = self.count_file.read_text().splitlines()
        return [(key, int(pid)) for key, pid in (line.split() for line in lines)]

    def close(self) -> None:
        for host in self.hosts:
            host.end()
        if self._client is not None:
            self._client.close()
        self._monitor.close()
        for machine in self.machines:
            machine.forwarder.close()


def _server_of(dsn: str) -> tuple[str, int] | str:
    """Where the server of ``dsn`` listens: (host, port), or a Unix socket."""
    settings = connection_settings(dsn)
    host, port = settings["host"], int(settings["port"])
    return f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)


def _pid_of(host_id: str) -> int:
    """The pid in a host id (``<host name>:<pid>:<random>``)."""
    return int(host_id.rsplit(":", 2)[1])


@pytest.fixture
def cluster(postgres_dsn: str, tmp_path: Path) -> Iterator[Cluster]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with journal_url(postgres_dsn, "chronik_netns") as url, links(3) as made:
        cluster = Cluster(tmp_path, postgres_dsn, url, made)
        try:
            yield cluster
        finally:
            cluster.close()


def _results(client: Client, ids: list[str], timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    return {
        run_id: client.result(run_id, timeout=max(0.0, deadline - time.monotonic()))
        for run_id in ids
    }


def _waiting_for_go(client: Client, ids: list[str]) -> Callable[[], bool]:
    """Whether every run of ``ids`` waits in its receive of ``go``."""

    def waiting() -> bool:
        return all(
            any(c.kind is CommandKind.RECEIVE for c in client.history(i).open_commands)
            for i in ids
        )

    return waiting


def _step_keys(client: Client, ids: list[str]) -> set[str]:
    """The idempotency keys of every step the runs' histories hold."""
    return {
        f"{run_id}/{command.seq}"
        for run_id in ids
        for command in client.history(run_id).commands
        if command.kind is CommandKind.STEP
    }


def _check_signal_taken_once(
    run_id: str, events: tuple[RunEvent, ...], signal_id: str
) -> None:
    """The run recorded signal ``signal_id`` once and consumed it once."""
    received = [e for e in events if isinstance(e, SignalReceived)]
    consumed = [e for e in events if isinstance(e, SignalConsumed)]
    assert [e.signal_id for e in received] == [signal_id], (run_id, received)
    assert [e.signal_id for e in consumed] == [signal_id], (run_id, consumed)


def _check_clean(hosts: list[Host]) -> None:
    for host in hosts:
        log = host.log()
        assert "EventConflictError" not in log, log
        assert "FencedOutError" not in log, log


def test_three_hosts_on_three_machines_share_150_runs_and_execute_each_step_once(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts()
    client = cluster.client
    ids = [f"calm-{i}" for i in range(150)]
    began = time.monotonic()
    for index, run_id in enumerate(ids):
        assert client.start(STEP_SIGNAL_STEP, index, 0.0, id=run_id) is (
            RunStatus.RUNNING
        )
    for index, run_id in enumerate(ids):
        client.signal(run_id, "go", index % 7, signal_id=f"go-{run_id}")
    results = _results(client, ids, timeout=60)
    elapsed = time.monotonic() - began
    completed = {s.workflow_id for s in client.list(status=RunStatus.COMPLETED)}
    keys = _step_keys(client, ids)
    exits = [host.terminate() for host in hosts]

    assert results == {i: expected_result(n, n % 7) for n, i in enumerate(ids)}
    assert completed == set(ids)
    assert len(keys) == 2 * len(ids)
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(keys, 1)
    per_host = Counter(pid for _, pid in executions)
    assert set(per_host) == {h.pid for h in hosts}, per_host
    _check_clean(hosts)
    assert [h.out.read_text().split()[-1] for h in hosts] == [CLOSED] * 3
    assert exits == [0, 0, 0]
    print(f"150 runs on 3 machines in {elapsed:.1f} s, steps per host {per_host}")


def test_a_sigkilled_hosts_runs_finish_on_the_other_machines_with_every_signal(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts()
    victim, survivors = hosts[0], hosts[1:]
    client = cluster.client
    ids = [f"kill-{i}" for i in range(90)]
    for index, run_id in enumerate(ids):
        client.start(STEP_SIGNAL_STEP, index, 0.0, id=run_id)
    _wait(_waiting_for_go(client, ids), 30, "every run waits for its signal")
    held = cluster.held()
    orphans = [i for i in ids if held.get(partition_of(i)) == victim.pid]
    assert orphans, "the host to kill drives none of the runs"

    victim.process.kill()
    victim.process.wait(timeout=15)
    killed = time.monotonic()
    # Acknowledged (durable) as each call returns, wherever the run is driven.
    acknowledged = {i: client.signal(i, "go", 3, signal_id=f"go-{i}") for i in ids}
    results = _results(client, ids, timeout=TTL + 15)
    recovery = time.monotonic() - killed

    assert results == {i: expected_result(n, 3) for n, i in enumerate(ids)}
    for run_id, events in cluster.events(ids).items():
        _check_signal_taken_once(run_id, events, acknowledged[run_id])
        ends = [e for e in events if isinstance(e, Completed)]
        assert len(ends) == 1, (run_id, ends)
    # No step was in flight at the kill: each ran once, the orphans' second
    # steps on the machines still up, whose hosts now hold every partition.
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(
        _step_keys(client, ids), 1
    )
    second_steps = dict(executions)
    assert {second_steps[f"{i}/{SECOND_STEP}"] for i in orphans} <= {
        h.pid for h in survivors
    }
    assert set(cluster.held().values()) <= {h.pid for h in survivors}
    _check_clean(survivors)
    assert [host.terminate() for host in survivors] == [0, 0]
    print(f"{len(orphans)} orphaned runs; all 90 ended {recovery:.2f} s after the kill")


def _check_no_stale_actor_committed(log: str) -> None:
    """No ``EventConflictError``: a fenced commit makes the next lease round
    leave every run of that partition (``Ownership.forget``), before the host
    may take it again, so no actor commits from a stale state."""
    assert "EventConflictError" not in log, log


def _cut_between_transactions(cluster: Cluster, host: Host) -> None:
    """Cut ``host``'s link at a moment it has no transaction open on the
    server: a session cut off inside one keeps its locks (the events table's,
    the lease table's) until the server ends it (after eventsourcing's
    ``idle_in_transaction_session_timeout``, 5 s), and every host's writes
    wait meanwhile, past the TTL. What the host sent before the cut reaches
    the server within a moment; if a session of it is then not idle, restore
    the link at once (its leases hold meanwhile) and try again."""
    link = host.machine.link
    for _ in range(20):
        link.cut()
        time.sleep(0.15)
        if not cluster.in_transaction(host):
            return
        link.restore()
        time.sleep(0.1)
    pytest.fail(f"host {host.name} was inside a transaction at 20 tries to cut it")


def test_a_host_cut_off_past_its_ttl_is_fenced_out_and_rejoins_when_its_link_is_back(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts()
    victim, survivors = hosts[0], hosts[1:]
    client = cluster.client
    nap = 2.0  # the second step's: long enough to be in flight at the cut
    ids = [f"cut-{i}" for i in range(45)]
    for index, run_id in enumerate(ids):
        client.start(STEP_SIGNAL_STEP, index, nap, id=run_id)
    _wait(_waiting_for_go(client, ids), 30, "every run waits for its signal")
    held = cluster.held()
    theirs = [i for i in ids if held.get(partition_of(i)) == victim.pid]
    assert len(theirs) >= 2, "the host to cut off drives too few of the runs"
    # Half of the victim's runs are mid-step when it is cut off, half wait.
    mid_step, waiting = theirs[::2], theirs[1::2]
    acknowledged = {
        i: client.signal(i, "go", 5, signal_id=f"go-{i}")
        for i in ids
        if i not in waiting
    }

    def victim_runs_mid_step() -> bool:
        began = {key for key, pid in cluster.executions() if pid == victim.pid}
        return all(f"{i}/{SECOND_STEP}" in began for i in mid_step)

    _wait(victim_runs_mid_step, 10, "the victim runs its second steps")
    _cut_between_transactions(cluster, victim)
    cut_at, cut_began = datetime.now(UTC), time.monotonic()
    try:
        # Its leases expire; the others take its partitions and finish its runs.
        _wait(
            lambda: cluster.hold_everything(survivors),
            TTL * 4,
            "the others took the cut-off host's partitions",
        )
        for run_id in waiting:
            acknowledged[run_id] = client.signal(
                run_id, "go", 5, signal_id=f"go-{run_id}"
            )
        results = _results(client, ids, timeout=nap + 15)
        time.sleep(max(0.0, CUT - (time.monotonic() - cut_began)))
    finally:
        victim.machine.link.restore()
    restored_at = datetime.now(UTC)

    assert results == {i: expected_result(n, 5) for n, i in enumerate(ids)}
    # Its connections go on: its steps' commits, queued meanwhile, are refused.
    _wait(lambda: "FencedOutError" in victim.log(), 20, "the victim is fenced out")
    assert victim.process.poll() is None, victim.log()
    # It rejoins: it holds partitions again after a few lease rounds...
    _wait(lambda: cluster.balanced(hosts), 30, "the victim holds its share again")
    # ... and drives new runs of them.
    held = cluster.held()
    fresh = [
        run_id
        for run_id in (f"after-{i}" for i in range(200))
        if held.get(partition_of(run_id)) == victim.pid
    ][:5]
    for index, run_id in enumerate(fresh):
        client.start(ONE_STEP, index, id=run_id)
    assert _results(client, fresh, timeout=15) == {
        i: 2 * n for n, i in enumerate(fresh)
    }

    by_key: dict[str, list[int]] = {}
    for key, pid in cluster.executions():
        by_key.setdefault(key, []).append(pid)
    assert {by_key[f"{i}/1"][0] for i in fresh} == {victim.pid}
    # Each step's outcome is recorded once, each signal taken once; nothing
    # the victim did after it was cut off is recorded (its results name it).
    taken_over = []
    for run_id, events in cluster.events(ids).items():
        _check_signal_taken_once(run_id, events, acknowledged[run_id])
        completed = [e for e in events if isinstance(e, StepCompleted)]
        assert sorted(e.seq for e in completed) == [FIRST_STEP, SECOND_STEP]
        assert len([e for e in events if isinstance(e, Completed)]) == 1
        for event in completed:
            if event.result["pid"] == victim.pid:
                assert event.timestamp < cut_at, (run_id, event)
        second = next(e for e in completed if e.seq == SECOND_STEP)
        pids = by_key[f"{run_id}/{SECOND_STEP}"]
        if victim.pid in pids and second.result["pid"] != victim.pid:
            taken_over.append(run_id)
            assert second.timestamp < restored_at  # recorded by its new owner
    # The cut caught steps in flight: run twice, recorded once.
    assert taken_over
    assert set(taken_over) <= set(mid_step)
    assert all(len(by_key[f"{i}/{SECOND_STEP}"]) == 2 for i in taken_over)
    assert max(len(pids) for pids in by_key.values()) <= 2
    _check_clean(survivors)
    _check_no_stale_actor_committed(victim.log())
    # The host cut off is a sound host still: it closes as the others do.
    assert [host.terminate() for host in hosts] == [0, 0, 0], victim.log()
    print(f"{len(taken_over)} steps in flight at the cut were taken over")


def _cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_host_whose_connections_were_reset_listens_again_and_idles(
    cluster: Cluster,
) -> None:
    (host,) = cluster.start_hosts(1)
    assert cluster.listening(host)
    host.machine.forwarder.reset()  # as a restarted proxy or NAT would
    time.sleep(3 * TTL)  # a few lease rounds: broken connections are replaced
    used = _cpu_seconds(host.pid)
    time.sleep(2.0)
    busy = (_cpu_seconds(host.pid) - used) / 2.0
    # An idle host renews its leases and little else: about 1% of a core.
    assert busy < 0.1, f"the idle host used {busy:.0%} of a core"
    assert cluster.listening(host)
    assert host.terminate() == 0
