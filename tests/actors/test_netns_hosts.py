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

The scenarios, their assertions and the count of step executions (the
namespaces share the file system) are shared with the hosts on LMDB
(``_hosts_support``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

psycopg = pytest.importorskip("psycopg")

from psycopg.sql import SQL, Identifier  # noqa: E402

from actors import export_histories  # noqa: E402
from aggregates import RunEvent, SignalConsumed, SignalReceived  # noqa: E402
from journal import PARTITIONS, PostgresLocation, parse_location  # noqa: E402
from tests._netns import Forwarder, Link, links, unavailable  # noqa: E402
from tests._postgres_server import connection_settings, journal_url  # noqa: E402
from tests.actors import _hosts_support as support  # noqa: E402

pytestmark = pytest.mark.multiprocess

CUT = 4 * support.TTL  # how long a link stays cut, at least


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


class MachineHost(support.Host):
    """One host process on a machine of its own. Its sessions on the server
    carry its ``application_name``."""

    terminate_timeout = 30.0

    def __init__(self, cluster: PostgresCluster, machine: Machine, name: str) -> None:
        self.machine = machine
        self.application = f"{cluster.schema}-{name}"
        command = support.host_command(machine.url, cluster.count_file)
        super().__init__(
            cluster.root,
            name,
            machine.link.command(command),
            env={**os.environ, "PGAPPNAME": self.application},
        )


class PostgresCluster(support.Cluster):
    """Machines with a host each on one journal, the test's own ``Client`` of
    it, and a connection of the test's to the server to look at the leases
    and at the hosts' sessions."""

    def __init__(self, root: Path, dsn: str, url: str, links: list[Link]) -> None:
        super().__init__(root, url)
        location = parse_location(url)
        assert isinstance(location, PostgresLocation)
        self.schema = location.schema
        self.machines = [Machine(link, url, _server_of(dsn)) for link in links]
        self._monitor = psycopg.connect(autocommit=True, **connection_settings(dsn))

    def start_hosts(self, count: int) -> list[MachineHost]:
        """A host on each of ``count`` machines, one after the other: two
        ``ActorSystem.open`` at once on one PostgreSQL journal may fail
        (``tuple concurrently updated``: each runs the recorder's ``CREATE OR
        REPLACE FUNCTION``, journal/_pg_append.py). Return once they share the
        partitions evenly."""
        hosts: list[MachineHost] = []
        for index, machine in enumerate(self.machines[:count]):
            host = MachineHost(self, machine, f"host-{index}")
            self.hosts.append(host)
            hosts.append(host)
            support.wait(host.ready, 30, f"host {host.name} opened the journal")
        support.wait(lambda: self.balanced(hosts), 15, "the hosts share the partitions")
        return hosts

    def held(self) -> dict[int, int]:
        query = SQL(
            "SELECT partition, owner FROM {}.chronik_leases WHERE expires_at > %s"
        ).format(Identifier(self.schema))
        rows = self._monitor.execute(query, (time.time(),)).fetchall()
        return {int(partition): support.pid_of(owner) for partition, owner in rows}

    def hold_alone(self, hosts: Sequence[support.Host]) -> bool:
        """Whether ``hosts`` hold every partition between them, each some."""
        held = self.held()
        return len(held) == PARTITIONS and set(held.values()) == {h.pid for h in hosts}

    def in_transaction(self, host: MachineHost) -> bool:
        """Whether a session of ``host`` is in a transaction (or a statement)
        on the server now."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND state IS DISTINCT FROM 'idle'"
        )
        row = self._monitor.execute(query, (host.application,)).fetchone()
        return row is not None and row[0] > 0

    def listening(self, host: MachineHost) -> bool:
        """Whether a session of ``host`` listens for wakes (its last
        statement was a ``LISTEN``)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND query LIKE 'LISTEN %%'"
        )
        row = self._monitor.execute(query, (host.application,)).fetchone()
        return row is not None and row[0] > 0

    def events(self, ids: list[str]) -> dict[str, Sequence[RunEvent]]:
        """The events of runs ``ids``, read in one go."""
        return {h.workflow_id: h.events for h in export_histories(self.location, ids)}

    def close(self) -> None:
        super().close()
        self._monitor.close()
        for machine in self.machines:
            machine.forwarder.close()


def _server_of(dsn: str) -> tuple[str, int] | str:
    """Where the server of ``dsn`` listens: (host, port), or a Unix socket."""
    settings = connection_settings(dsn)
    host, port = settings["host"], int(settings["port"])
    return f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)


@pytest.fixture
def cluster(postgres_dsn: str, tmp_path: Path) -> Iterator[PostgresCluster]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with journal_url(postgres_dsn, "chronik_netns") as url, links(3) as made:
        cluster = PostgresCluster(tmp_path, postgres_dsn, url, made)
        try:
            yield cluster
        finally:
            cluster.close()


def _check_each_signal_taken_once(
    cluster: PostgresCluster, acknowledged: dict[str, str]
) -> None:
    """Each run recorded its signal (``acknowledged``: run -> signal id) once
    and consumed it once."""
    for run_id, events in cluster.events(list(acknowledged)).items():
        signal_id = acknowledged[run_id]
        received = [e for e in events if isinstance(e, SignalReceived)]
        consumed = [e for e in events if isinstance(e, SignalConsumed)]
        assert [e.signal_id for e in received] == [signal_id], (run_id, received)
        assert [e.signal_id for e in consumed] == [signal_id], (run_id, consumed)


def test_three_hosts_on_three_machines_share_150_runs_and_execute_each_step_once(
    cluster: PostgresCluster,
) -> None:
    calm = support.check_runs_shared_and_each_step_executed_once(
        cluster, 150, timeout=60
    )
    print(
        f"150 runs on 3 machines in {calm.elapsed:.1f} s, "
        f"steps per host {calm.per_host}"
    )


def test_a_sigkilled_hosts_runs_finish_on_the_other_machines_with_every_signal(
    cluster: PostgresCluster,
) -> None:
    kill = support.kill_a_host_with_runs_waiting(cluster, timeout=support.TTL + 15)
    _check_each_signal_taken_once(cluster, kill.acknowledged)
    support.check_orphans_finished_on_the_survivors(cluster, kill)
    print(
        f"{len(kill.orphans)} orphaned runs; "
        f"all 90 ended {kill.recovery:.2f} s after the kill"
    )


def _check_no_stale_actor_committed(log: str) -> None:
    """No ``EventConflictError``: a fenced commit makes the next lease round
    leave every run of that partition (``Ownership.forget``), before the host
    may take it again, so no actor commits from a stale state."""
    assert "EventConflictError" not in log, log


def _cut_between_transactions(cluster: PostgresCluster, host: MachineHost) -> None:
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


@contextmanager
def _cut_off(cluster: PostgresCluster, host: support.Host) -> Iterator[None]:
    """``host``'s link cut meanwhile, for CUT seconds at least."""
    assert isinstance(host, MachineHost)
    _cut_between_transactions(cluster, host)
    cut_began = time.monotonic()
    try:
        yield
        time.sleep(max(0.0, CUT - (time.monotonic() - cut_began)))
    finally:
        host.machine.link.restore()


def test_a_host_cut_off_past_its_ttl_is_fenced_out_and_rejoins_when_its_link_is_back(
    cluster: PostgresCluster,
) -> None:
    # Its connections go on once its link is back (so it is fenced out later
    # than a frozen host): its steps' commits, queued meanwhile, are refused.
    cut = support.Isolation(
        name="cut",
        participle="cut-off",
        isolated=lambda host: _cut_off(cluster, host),
        taken_over=support.TTL * 4,
        finished=15,
        fenced=20,
        rejoined=30,
        fresh=15,
    )
    cut_off = support.isolate_a_host_mid_step(cluster, cut)
    taken_over = support.check_fenced_out_and_rejoined(cluster, cut_off)
    _check_each_signal_taken_once(cluster, cut_off.acknowledged)
    _check_no_stale_actor_committed(cut_off.victim.log())
    # The host cut off is a sound host still: it closes as the others do.
    assert [host.terminate() for host in cut_off.hosts] == [0, 0, 0], (
        cut_off.victim.log()
    )
    print(f"{len(taken_over)} steps in flight at the cut were taken over")


def _cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used so far (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_host_whose_connections_were_reset_listens_again_and_idles(
    cluster: PostgresCluster,
) -> None:
    (host,) = cluster.start_hosts(1)
    assert cluster.listening(host)
    host.machine.forwarder.reset()  # as a restarted proxy or NAT would
    time.sleep(3 * support.TTL)  # a few lease rounds: broken connections are replaced
    used = _cpu_seconds(host.pid)
    time.sleep(2.0)
    busy = (_cpu_seconds(host.pid) - used) / 2.0
    # An idle host renews its leases and little else: about 1% of a core.
    assert busy < 0.1, f"the idle host used {busy:.0%} of a core"
    assert cluster.listening(host)
    assert host.terminate() == 0
