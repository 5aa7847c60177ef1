"""Hosts of one journal as real processes: three ``ActorSystem`` processes
(``_multihost_host``) drive the runs, the test process reaches them only as a
``Client``. Each step is executed once while nothing fails; a SIGKILLed host's
runs finish on the others, with every acknowledged signal; a host frozen past
its lease TTL (SIGSTOP) is fenced out when it wakes, nothing of its late work
is recorded, and it rejoins as a host.

Every step execution is a line ``"<idempotency key> <pid>"`` of the count file
(written by the hosts as the step begins), so the test counts executions across
processes and sees which host made each.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors import Client, RunStatus
from aggregates import CommandKind, Completed, StepCompleted
from journal import PARTITIONS, Journal, Leases, partition_of
from tests.actors._multihost_host import (
    CLOSED,
    ONE_STEP,
    READY,
    STEP_SIGNAL_STEP,
    expected_result,
)

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0  # seconds a lease holds without renewal: renewed every TTL / 3
# The seqs of step_signal_step's steps (its receive is seq 2).
FIRST_STEP, SECOND_STEP = 1, 3


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.02)


class Host:
    """One host process; its stdout and stderr go to files."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.name = name
        self.out = cluster.root / f"{name}.out"
        self.err = cluster.root / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.actors._multihost_host",
                    cluster.journal_path,
                    str(TTL),
                    str(cluster.count_file),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.err.read_text()

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"host {self.name} exited early:\n{self.log()}")
        return self.out.read_text().startswith(READY)

    def stopped(self) -> bool:
        """Whether the process is stopped by a signal (state T in /proc)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] in ("T", "t")

    def terminate(self) -> int:
        """SIGTERM: the host closes its system; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)

    def end(self) -> None:
        """Whatever state it is in (even stopped), make sure it is gone."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                self.process.kill()
        self.process.wait(timeout=15)


class Cluster:
    """Host processes on one journal, and the test's own ``Client`` of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.journal_path = str(root / "journal")
        self.count_file = root / "executions"
        self.hosts: list[Host] = []
        self._client: Client | None = None
        self._journal: Journal | None = None

    def start_hosts(self, count: int) -> list[Host]:
        """Start ``count`` hosts (the first alone: it creates the journal);
        return once they share the partitions evenly."""
        hosts = [Host(self, "host-0")]
        _wait(hosts[0].ready, 30, "the first host opened the journal")
        hosts += [Host(self, f"host-{i}") for i in range(1, count)]
        self.hosts += hosts
        _wait(lambda: all(h.ready() for h in hosts), 30, "every host is ready")
        _wait(lambda: self.balanced(hosts), 15, "the hosts share the partitions")
        return hosts

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.journal_path)
        return self._client

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal.open(self.journal_path)
        return self._journal

    def held(self) -> dict[int, int]:
        """Partition -> pid of the host holding its lease now."""
        now = time.time()
        return {
            partition: _pid_of(lease.owner)
            for partition, lease in Leases(self.journal).read().items()
            if lease.held(now)
        }

    def balanced(self, hosts: list[Host]) -> bool:
        held = Counter(self.held().values())
        share = math.ceil(PARTITIONS / len(hosts))
        return sum(held.values()) == PARTITIONS and all(
            0 < held[h.pid] <= share for h in hosts
        )

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
        if self._journal is not None:
            self._journal.close()


def _pid_of(host_id: str) -> int:
    """The pid in a host id (``<host name>:<pid>:<random>``)."""
    return int(host_id.rsplit(":", 2)[1])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
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


def test_three_host_processes_share_300_runs_and_execute_each_step_once(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts(3)
    client = cluster.client
    ids = [f"calm-{i}" for i in range(300)]
    began = time.monotonic()
    for index, run_id in enumerate(ids):
        assert client.start(STEP_SIGNAL_STEP, index, 0.0, id=run_id) is (
            RunStatus.RUNNING
        )
    for index, run_id in enumerate(ids):
        client.signal(run_id, "go", index % 7, signal_id=f"go-{run_id}")
    results = _results(client, ids, timeout=40)
    elapsed = time.monotonic() - began
    completed = {s.workflow_id for s in client.list(status=RunStatus.COMPLETED)}
    statuses = {client.status(i) for i in ids}
    keys = _step_keys(client, ids)
    exits = [host.terminate() for host in hosts]

    assert results == {i: expected_result(n, n % 7) for n, i in enumerate(ids)}
    assert completed == set(ids)
    assert statuses == {RunStatus.COMPLETED}
    assert len(keys) == 2 * len(ids)
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(keys, 1)
    # Every host executed steps: the runs were spread over the three.
    per_host = Counter(pid for _, pid in executions)
    assert set(per_host) == {h.pid for h in hosts}, per_host
    for host in hosts:
        log = host.log()
        assert "EventConflictError" not in log, log
        assert "FencedOutError" not in log, log
        assert host.out.read_text().split()[-1] == CLOSED
    assert exits == [0, 0, 0]
    print(f"300 runs on 3 hosts in {elapsed:.1f} s, steps per host {per_host}")


def test_a_sigkilled_hosts_runs_finish_on_the_others_with_every_acknowledged_signal(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts(3)
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
    results = _results(client, ids, timeout=TTL + 5)
    recovery = time.monotonic() - killed

    assert results == {i: expected_result(n, 3) for n, i in enumerate(ids)}
    assert recovery < TTL + 5
    for run_id in ids:
        run = client.history(run_id)
        assert acknowledged[run_id] in run.signal_ids
        assert run.status is RunStatus.COMPLETED
        ends = [e for e in client.events(run_id) if isinstance(e, Completed)]
        assert len(ends) == 1, (run_id, ends)
    # No step was in flight at the kill: each ran once, the orphans' second
    # steps on the hosts still alive, which now hold every partition.
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(
        _step_keys(client, ids), 1
    )
    second_steps = {
        key: pid for key, pid in executions if key.endswith(f"/{SECOND_STEP}")
    }
    assert {second_steps[f"{i}/{SECOND_STEP}"] for i in orphans} <= {
        h.pid for h in survivors
    }
    assert set(cluster.held().values()) <= {h.pid for h in survivors}
    for host in survivors:
        assert "FencedOutError" not in host.log(), host.log()
        assert "EventConflictError" not in host.log(), host.log()
    assert [host.terminate() for host in survivors] == [0, 0]
    print(f"{len(orphans)} orphaned runs; all 90 ended {recovery:.2f} s after the kill")


def _freeze(cluster: Cluster, host: Host) -> None:
    """SIGSTOP ``host`` at a moment it holds no write transaction of the
    journal: LMDB has one writer at a time, so a host frozen inside one would
    stop every host's writes until it is thawed (and leases could not help).
    A write of the test's own that gets through proves the lock is free; one
    that does not within a fraction of the TTL (so that no lease expires
    meanwhile) means the host holds it: thaw it and try again."""
    for _ in range(10):
        os.kill(host.pid, signal.SIGSTOP)
        _wait(host.stopped, 5, f"host {host.name} stopped")
        probe = threading.Thread(
            target=cluster.journal.store.write, args=(lambda context: None,)
        )
        probe.start()
        probe.join(timeout=TTL / 4)
        if not probe.is_alive():
            return
        os.kill(host.pid, signal.SIGCONT)  # try again a moment later
        probe.join()
        time.sleep(0.05)
    pytest.fail(f"host {host.name} was frozen inside a write transaction 10 times")


def test_a_host_frozen_past_its_ttl_is_fenced_out_when_it_wakes_and_rejoins(
    cluster: Cluster,
) -> None:
    hosts = cluster.start_hosts(3)
    victim, survivors = hosts[0], hosts[1:]
    client = cluster.client
    nap = 2.0  # the second step's: long enough to be in flight at the freeze
    ids = [f"freeze-{i}" for i in range(45)]
    for index, run_id in enumerate(ids):
        client.start(STEP_SIGNAL_STEP, index, nap, id=run_id)
    _wait(_waiting_for_go(client, ids), 30, "every run waits for its signal")
    held = cluster.held()
    theirs = [i for i in ids if held.get(partition_of(i)) == victim.pid]
    assert len(theirs) >= 2, "the host to freeze drives too few of the runs"
    # Half of the victim's runs are mid-step when it freezes, half wait.
    mid_step, waiting = theirs[::2], theirs[1::2]
    for run_id in [i for i in ids if i not in waiting]:
        client.signal(run_id, "go", 5, signal_id=f"go-{run_id}")

    def victim_runs_mid_step() -> bool:
        began = {key for key, pid in cluster.executions() if pid == victim.pid}
        return all(f"{i}/{SECOND_STEP}" in began for i in mid_step)

    _wait(victim_runs_mid_step, 10, "the victim runs its second steps")
    _freeze(cluster, victim)
    frozen_at = datetime.now(UTC)
    try:
        # Its leases expire; the others take its partitions and finish its runs.
        _wait(
            lambda: set(cluster.held().values()) == {h.pid for h in survivors},
            TTL * 3,
            "the others took the frozen host's partitions",
        )
        for run_id in waiting:
            client.signal(run_id, "go", 5, signal_id=f"go-{run_id}")
        results = _results(client, ids, timeout=nap + 10)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    thawed_at = datetime.now(UTC)

    assert results == {i: expected_result(n, 5) for n, i in enumerate(ids)}
    # Woken, its steps in flight end and their commits are refused.
    _wait(lambda: "FencedOutError" in victim.log(), 10, "the victim is fenced out")
    assert victim.process.poll() is None, victim.log()
    # It rejoins: it holds partitions again after a few lease rounds...
    _wait(
        lambda: cluster.balanced(hosts),
        TTL * 10,
        "the thawed host holds its share again",
    )
    # ... and drives new runs of them.
    held = cluster.held()
    fresh = [
        run_id
        for run_id in (f"after-{i}" for i in range(200))
        if held.get(partition_of(run_id)) == victim.pid
    ][:5]
    for index, run_id in enumerate(fresh):
        client.start(ONE_STEP, index, id=run_id)
    assert _results(client, fresh, timeout=10) == {
        i: 2 * n for n, i in enumerate(fresh)
    }

    executions = cluster.executions()
    by_key: dict[str, list[int]] = {}
    for key, pid in executions:
        by_key.setdefault(key, []).append(pid)
    assert {by_key[f"{i}/1"][0] for i in fresh} == {victim.pid}
    # Each step's outcome is recorded once; nothing the victim did after it
    # was frozen is recorded (its step results name it).
    taken_over = []
    for run_id in ids:
        events = client.events(run_id)
        completed = [e for e in events if isinstance(e, StepCompleted)]
        assert sorted(e.seq for e in completed) == [FIRST_STEP, SECOND_STEP]
        assert len([e for e in events if isinstance(e, Completed)]) == 1
        for event in completed:
            if event.result["pid"] == victim.pid:
                assert event.timestamp < frozen_at, (run_id, event)
        second = next(e for e in completed if e.seq == SECOND_STEP)
        pids = by_key[f"{run_id}/{SECOND_STEP}"]
        if victim.pid in pids and second.result["pid"] != victim.pid:
            taken_over.append(run_id)
            assert second.timestamp < thawed_at  # recorded by its new owner
    # The freeze caught steps in flight: run twice, recorded once.
    assert taken_over
    assert set(taken_over) <= set(mid_step)
    assert all(len(by_key[f"{i}/{SECOND_STEP}"]) == 2 for i in taken_over)
    assert max(len(pids) for pids in by_key.values()) <= 2
    for host in survivors:
        assert "FencedOutError" not in host.log(), host.log()
        assert "EventConflictError" not in host.log(), host.log()
    # The thawed host is a sound host still: it closes as the others do.
    assert [host.terminate() for host in hosts] == [0, 0, 0], victim.log()
    print(f"{len(taken_over)} steps in flight at the freeze were taken over")
