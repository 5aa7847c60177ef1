"""Hosts of one journal as real processes: three ``ActorSystem`` processes
(``_multihost_host``) drive the runs, the test process reaches them only as a
``Client``. Each step is executed once while nothing fails; a SIGKILLed host's
runs finish on the others, with every acknowledged signal; a host frozen past
its lease TTL (SIGSTOP) is fenced out when it wakes, nothing of its late work
is recorded, and it rejoins as a host.

The scenarios, their assertions and the count of step executions are shared
with the hosts on PostgreSQL (``_hosts_support``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from actors import RunStatus
from journal import Journal, Leases
from tests.actors import _hosts_support as support

pytestmark = pytest.mark.multiprocess


class LMDBCluster(support.Cluster):
    """Host processes on one LMDB journal, and the test's own ``Client`` of
    it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, str(root / "journal"))
        self._journal: Journal | None = None

    def start_hosts(self, count: int) -> list[support.Host]:
        """Start ``count`` hosts (the first alone: it creates the journal);
        return once they share the partitions evenly."""
        hosts = [self._host("host-0")]
        support.wait(hosts[0].ready, 30, "the first host opened the journal")
        hosts += [self._host(f"host-{i}") for i in range(1, count)]
        self.hosts += hosts
        support.wait(lambda: all(h.ready() for h in hosts), 30, "every host is ready")
        support.wait(lambda: self.balanced(hosts), 15, "the hosts share the partitions")
        return hosts

    def _host(self, name: str) -> support.Host:
        return support.Host(
            self.root, name, support.host_command(self.location, self.count_file)
        )

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal.open(self.location)
        return self._journal

    def held(self) -> dict[int, int]:
        now = time.time()
        return {
            partition: support.pid_of(lease.owner)
            for partition, lease in Leases(self.journal).read().items()
            if lease.held(now)
        }

    def hold_alone(self, hosts: Sequence[support.Host]) -> bool:
        """Whether only ``hosts`` hold leases now: the others' have lapsed."""
        return set(self.held().values()) == {h.pid for h in hosts}

    def close(self) -> None:
        super().close()
        if self._journal is not None:
            self._journal.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LMDBCluster]:
    cluster = LMDBCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


def test_three_host_processes_share_300_runs_and_execute_each_step_once(
    cluster: LMDBCluster,
) -> None:
    calm = support.check_runs_shared_and_each_step_executed_once(
        cluster, 300, timeout=40
    )
    assert {cluster.client.status(i) for i in calm.ids} == {RunStatus.COMPLETED}
    print(
        f"300 runs on 3 hosts in {calm.elapsed:.1f} s, steps per host {calm.per_host}"
    )


def test_a_sigkilled_hosts_runs_finish_on_the_others_with_every_acknowledged_signal(
    cluster: LMDBCluster,
) -> None:
    kill = support.kill_a_host_with_runs_waiting(cluster, timeout=support.TTL + 5)
    assert kill.recovery < support.TTL + 5
    for run_id in kill.ids:
        run = cluster.client.history(run_id)
        assert kill.acknowledged[run_id] in run.signal_ids
        assert run.status is RunStatus.COMPLETED
    support.check_orphans_finished_on_the_survivors(cluster, kill)
    print(
        f"{len(kill.orphans)} orphaned runs; "
        f"all 90 ended {kill.recovery:.2f} s after the kill"
    )


def _freeze(cluster: LMDBCluster, host: support.Host) -> None:
    """SIGSTOP ``host`` at a moment it holds no write transaction of the
    journal: LMDB has one writer at a time, so a host frozen inside one would
    stop every host's writes until it is thawed (and leases could not help).
    A write of the test's own that gets through proves the lock is free; one
    that does not within a fraction of the TTL (so that no lease expires
    meanwhile) means the host holds it: thaw it and try again."""
    for _ in range(10):
        os.kill(host.pid, signal.SIGSTOP)
        support.wait(host.stopped, 5, f"host {host.name} stopped")
        probe = threading.Thread(
            target=cluster.journal.store.write, args=(lambda context: None,)
        )
        probe.start()
        probe.join(timeout=support.TTL / 4)
        if not probe.is_alive():
            return
        os.kill(host.pid, signal.SIGCONT)  # try again a moment later
        probe.join()
        time.sleep(0.05)
    pytest.fail(f"host {host.name} was frozen inside a write transaction 10 times")


@contextmanager
def _frozen(cluster: LMDBCluster, host: support.Host) -> Iterator[None]:
    """``host`` stopped (SIGSTOP) meanwhile."""
    _freeze(cluster, host)
    try:
        yield
    finally:
        os.kill(host.pid, signal.SIGCONT)


def test_a_host_frozen_past_its_ttl_is_fenced_out_when_it_wakes_and_rejoins(
    cluster: LMDBCluster,
) -> None:
    freeze = support.Isolation(
        name="freeze",
        participle="frozen",
        isolated=lambda host: _frozen(cluster, host),
        taken_over=support.TTL * 3,
        finished=10,
        fenced=10,
        rejoined=support.TTL * 10,
        fresh=10,
    )
    frozen = support.isolate_a_host_mid_step(cluster, freeze)
    taken_over = support.check_fenced_out_and_rejoined(cluster, frozen)
    # The thawed host is a sound host still: it closes as the others do.
    assert [host.terminate() for host in frozen.hosts] == [0, 0, 0], frozen.victim.log()
    print(f"{len(taken_over)} steps in flight at the freeze were taken over")
