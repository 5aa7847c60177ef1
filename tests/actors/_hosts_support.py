"""What the tests of hosts as real processes share (``test_multihost.py`` on
LMDB, ``test_netns_hosts.py`` on PostgreSQL with a network namespace a host):
``_multihost_host`` processes and the cluster they form on one journal, the
waits, and the three scenarios both backends run with the same assertions:
runs shared while nothing fails, a SIGKILLed host, and a host isolated past
its lease TTL (frozen with SIGSTOP, or its link cut) that is fenced out and
rejoins.

Every step execution is a line ``"<idempotency key> <pid>"`` of the count file
(written by the hosts as the step begins), so a test counts executions across
processes and sees which host made each.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from actors import Client, RunStatus
from aggregates import CommandKind, Completed, RunEvent, StepCompleted
from journal import PARTITIONS, partition_of
from tests.actors._multihost_host import (
    CLOSED,
    ONE_STEP,
    READY,
    STEP_SIGNAL_STEP,
    expected_result,
)

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0  # seconds a lease holds without renewal: renewed every TTL / 3
# The seqs of step_signal_step's steps (its receive is seq 2).
FIRST_STEP, SECOND_STEP = 1, 3


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.02)


def host_command(location: str, count_file: Path) -> list[str]:
    """The command of a host process on the journal at ``location``."""
    return [
        sys.executable,
        "-m",
        "tests.actors._multihost_host",
        location,
        str(TTL),
        str(count_file),
    ]


class Host:
    """One host process running ``command``; its stdout and stderr go to
    files in ``root``."""

    terminate_timeout = 15.0  # seconds a host may take to close

    def __init__(
        self,
        root: Path,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.out = root / f"{name}.out"
        self.err = root / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=err
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

    def stopped(self) -> bool:
        """Whether the process is stopped by a signal (state T in /proc)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] in ("T", "t")

    def terminate(self) -> int:
        """SIGTERM: the host closes its system; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=self.terminate_timeout)

    def end(self) -> None:
        """Whatever state it is in (even stopped), make sure it is gone."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                self.process.kill()
        self.process.wait(timeout=15)


class Cluster(abc.ABC):
    """Host processes on the journal at ``location`` (an LMDB directory or a
    PostgreSQL URL), and the test's own ``Client`` of it. A backend's cluster
    says how its hosts start and how it sees who holds which lease."""

    def __init__(self, root: Path, location: str) -> None:
        self.root = root
        self.location = location
        self.count_file = root / "executions"
        self.hosts: list[Host] = []
        self._client: Client | None = None

    @abc.abstractmethod
    def start_hosts(self, count: int) -> Sequence[Host]:
        """Start ``count`` hosts; return once they share the partitions
        evenly."""

    @abc.abstractmethod
    def held(self) -> dict[int, int]:
        """Partition -> pid of the host holding its lease now."""

    @abc.abstractmethod
    def hold_alone(self, hosts: Sequence[Host]) -> bool:
        """Whether ``hosts`` have taken the partitions of the others."""

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.location)
        return self._client

    def balanced(self, hosts: Sequence[Host]) -> bool:
        held = Counter(self.held().values())
        share = math.ceil(PARTITIONS / len(hosts))
        return sum(held.values()) == PARTITIONS and all(
            0 < held[h.pid] <= share for h in hosts
        )

    def events(self, ids: list[str]) -> dict[str, Sequence[RunEvent]]:
        """The events of runs ``ids``."""
        return {run_id: self.client.events(run_id) for run_id in ids}

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


def pid_of(host_id: str) -> int:
    """The pid in a host id (``<host name>:<pid>:<random>``)."""
    return int(host_id.rsplit(":", 2)[1])


def results(client: Client, ids: list[str], timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    return {
        run_id: client.result(run_id, timeout=max(0.0, deadline - time.monotonic()))
        for run_id in ids
    }


def waiting_for_go(client: Client, ids: list[str]) -> Callable[[], bool]:
    """Whether every run of ``ids`` waits in its receive of ``go``."""

    def waiting() -> bool:
        return all(
            any(c.kind is CommandKind.RECEIVE for c in client.history(i).open_commands)
            for i in ids
        )

    return waiting


def step_keys(client: Client, ids: list[str]) -> set[str]:
    """The idempotency keys of every step the runs' histories hold."""
    return {
        f"{run_id}/{command.seq}"
        for run_id in ids
        for command in client.history(run_id).commands
        if command.kind is CommandKind.STEP
    }


def check_clean(hosts: Sequence[Host]) -> None:
    for host in hosts:
        log = host.log()
        assert "EventConflictError" not in log, log
        assert "FencedOutError" not in log, log


@attrs.frozen
class Calm:
    """Runs shared by three hosts while nothing failed."""

    ids: list[str]
    elapsed: float  # seconds from the first start to the last end
    per_host: Counter[int]  # pid -> the steps that host executed


def check_runs_shared_and_each_step_executed_once(
    cluster: Cluster, count: int, timeout: float
) -> Calm:
    """Three hosts drive ``count`` runs, each to its end within ``timeout``
    seconds: each step runs once, every host runs some, and the hosts close
    cleanly."""
    hosts = cluster.start_hosts(3)
    client = cluster.client
    ids = [f"calm-{i}" for i in range(count)]
    began = time.monotonic()
    for index, run_id in enumerate(ids):
        assert client.start(STEP_SIGNAL_STEP, index, 0.0, id=run_id) is (
            RunStatus.RUNNING
        )
    for index, run_id in enumerate(ids):
        client.signal(run_id, "go", index % 7, signal_id=f"go-{run_id}")
    finished = results(client, ids, timeout=timeout)
    elapsed = time.monotonic() - began
    completed = {s.workflow_id for s in client.list(status=RunStatus.COMPLETED)}
    keys = step_keys(client, ids)
    exits = [host.terminate() for host in hosts]

    assert finished == {i: expected_result(n, n % 7) for n, i in enumerate(ids)}
    assert completed == set(ids)
    assert len(keys) == 2 * len(ids)
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(keys, 1)
    # Every host executed steps: the runs were spread over the three.
    per_host = Counter(pid for _, pid in executions)
    assert set(per_host) == {h.pid for h in hosts}, per_host
    check_clean(hosts)
    assert [h.out.read_text().split()[-1] for h in hosts] == [CLOSED] * 3
    assert exits == [0, 0, 0]
    return Calm(ids, elapsed, per_host)


@attrs.frozen
class Kill:
    """A host SIGKILLed while every run waited for its signal ``go``, and
    the runs' ends."""

    victim: Host
    survivors: Sequence[Host]
    ids: list[str]
    orphans: list[str]  # the runs the victim drove
    acknowledged: dict[str, str]  # run -> the id of its signal
    recovery: float  # seconds from the kill to every run's end


def kill_a_host_with_runs_waiting(cluster: Cluster, timeout: float) -> Kill:
    """Of three hosts driving 90 runs, SIGKILL one while every run waits for
    its signal; signal each, and check every run ends within ``timeout``
    seconds with the result the signal makes, once."""
    hosts = cluster.start_hosts(3)
    victim, survivors = hosts[0], hosts[1:]
    client = cluster.client
    ids = [f"kill-{i}" for i in range(90)]
    for index, run_id in enumerate(ids):
        client.start(STEP_SIGNAL_STEP, index, 0.0, id=run_id)
    wait(waiting_for_go(client, ids), 30, "every run waits for its signal")
    held = cluster.held()
    orphans = [i for i in ids if held.get(partition_of(i)) == victim.pid]
    assert orphans, "the host to kill drives none of the runs"

    victim.process.kill()
    victim.process.wait(timeout=15)
    killed = time.monotonic()
    # Acknowledged (durable) as each call returns, wherever the run is driven.
    acknowledged = {i: client.signal(i, "go", 3, signal_id=f"go-{i}") for i in ids}
    finished = results(client, ids, timeout=timeout)
    recovery = time.monotonic() - killed

    assert finished == {i: expected_result(n, 3) for n, i in enumerate(ids)}
    for run_id, events in cluster.events(ids).items():
        ends = [e for e in events if isinstance(e, Completed)]
        assert len(ends) == 1, (run_id, ends)
    return Kill(victim, survivors, ids, orphans, acknowledged, recovery)


def check_orphans_finished_on_the_survivors(cluster: Cluster, kill: Kill) -> None:
    """No step was in flight at the kill: each ran once, the orphans' second
    steps on the hosts still up, which now hold every partition and close
    cleanly."""
    executions = cluster.executions()
    assert Counter(key for key, _ in executions) == dict.fromkeys(
        step_keys(cluster.client, kill.ids), 1
    )
    second_steps = {
        key: pid for key, pid in executions if key.endswith(f"/{SECOND_STEP}")
    }
    survivors = {h.pid for h in kill.survivors}
    assert {second_steps[f"{i}/{SECOND_STEP}"] for i in kill.orphans} <= survivors
    assert set(cluster.held().values()) <= survivors
    check_clean(kill.survivors)
    assert [host.terminate() for host in kill.survivors] == [0, 0]


@attrs.frozen
class Isolation:
    """How a test cuts a host off from the journal past its lease TTL, and
    how long each stage around it may take on its backend (seconds)."""

    name: str  # "freeze": the runs' ids start with it
    participle: str  # "frozen": how messages name the isolated host
    isolated: Callable[[Host], AbstractContextManager[None]]
    taken_over: float  # until the others hold its partitions
    finished: float  # past the second step's nap, until every run ends
    fenced: float  # from its return, until its late commits are refused
    rejoined: float  # until it holds its share again
    fresh: float  # until new runs on its partitions end


@attrs.frozen
class Isolated:
    """A host isolated while it ran some runs' second steps; what the test
    saw of it."""

    isolation: Isolation
    hosts: Sequence[Host]
    victim: Host
    survivors: Sequence[Host]
    ids: list[str]
    mid_step: list[str]  # the victim's runs in their second step at the time
    acknowledged: dict[str, str]  # run -> the id of its signal
    isolated_at: datetime
    returned_at: datetime


def isolate_a_host_mid_step(cluster: Cluster, isolation: Isolation) -> Isolated:
    """Of three hosts driving 45 runs, isolate one while half of its runs
    are in their second step and half wait for their signal: the others take
    its partitions and finish every run, with the results their signals
    make."""
    hosts = cluster.start_hosts(3)
    victim, survivors = hosts[0], hosts[1:]
    client = cluster.client
    nap = 2.0  # the second step's: long enough to be in flight at the time
    ids = [f"{isolation.name}-{i}" for i in range(45)]
    for index, run_id in enumerate(ids):
        client.start(STEP_SIGNAL_STEP, index, nap, id=run_id)
    wait(waiting_for_go(client, ids), 30, "every run waits for its signal")
    held = cluster.held()
    theirs = [i for i in ids if held.get(partition_of(i)) == victim.pid]
    assert len(theirs) >= 2, f"the host to {isolation.name} drives too few of the runs"
    # Half of the victim's runs are mid-step when it is isolated, half wait.
    mid_step, waiting = theirs[::2], theirs[1::2]
    acknowledged = {
        i: client.signal(i, "go", 5, signal_id=f"go-{i}")
        for i in ids
        if i not in waiting
    }

    def victim_runs_mid_step() -> bool:
        began = {key for key, pid in cluster.executions() if pid == victim.pid}
        return all(f"{i}/{SECOND_STEP}" in began for i in mid_step)

    wait(victim_runs_mid_step, 10, "the victim runs its second steps")
    with isolation.isolated(victim):
        isolated_at = datetime.now(UTC)
        # Its leases expire; the others take its partitions and finish its runs.
        wait(
            lambda: cluster.hold_alone(survivors),
            isolation.taken_over,
            f"the others took the {isolation.participle} host's partitions",
        )
        for run_id in waiting:
            acknowledged[run_id] = client.signal(
                run_id, "go", 5, signal_id=f"go-{run_id}"
            )
        finished = results(client, ids, timeout=nap + isolation.finished)
    returned_at = datetime.now(UTC)

    assert finished == {i: expected_result(n, 5) for n, i in enumerate(ids)}
    return Isolated(
        isolation,
        hosts,
        victim,
        survivors,
        ids,
        mid_step,
        acknowledged,
        isolated_at,
        returned_at,
    )


def check_fenced_out_and_rejoined(cluster: Cluster, isolated: Isolated) -> list[str]:
    """Back, the isolated host's steps in flight end and their commits are
    refused; it rejoins and drives new runs; each step's outcome is recorded
    once, none of its work after it was isolated. The runs whose second step
    it ran twice, taken over by another host."""
    client = cluster.client
    isolation, victim, hosts = isolated.isolation, isolated.victim, isolated.hosts
    wait(
        lambda: "FencedOutError" in victim.log(),
        isolation.fenced,
        "the victim is fenced out",
    )
    assert victim.process.poll() is None, victim.log()
    # It rejoins: it holds partitions again after a few lease rounds...
    wait(
        lambda: cluster.balanced(hosts),
        isolation.rejoined,
        f"the {isolation.participle} host holds its share again",
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
    assert results(client, fresh, timeout=isolation.fresh) == {
        i: 2 * n for n, i in enumerate(fresh)
    }

    by_key: dict[str, list[int]] = {}
    for key, pid in cluster.executions():
        by_key.setdefault(key, []).append(pid)
    assert {by_key[f"{i}/1"][0] for i in fresh} == {victim.pid}
    # Each step's outcome is recorded once; nothing the victim did after it
    # was isolated is recorded (its step results name it).
    taken_over = []
    for run_id, events in cluster.events(isolated.ids).items():
        completed = [e for e in events if isinstance(e, StepCompleted)]
        assert sorted(e.seq for e in completed) == [FIRST_STEP, SECOND_STEP]
        assert len([e for e in events if isinstance(e, Completed)]) == 1
        for event in completed:
            if event.result["pid"] == victim.pid:
                assert event.timestamp < isolated.isolated_at, (run_id, event)
        second = next(e for e in completed if e.seq == SECOND_STEP)
        pids = by_key[f"{run_id}/{SECOND_STEP}"]
        if victim.pid in pids and second.result["pid"] != victim.pid:
            taken_over.append(run_id)
            # Recorded by its new owner.
            assert second.timestamp < isolated.returned_at
    # The isolation caught steps in flight: run twice, recorded once.
    assert taken_over
    assert set(taken_over) <= set(isolated.mid_step)
    assert all(len(by_key[f"{i}/{SECOND_STEP}"]) == 2 for i in taken_over)
    assert max(len(pids) for pids in by_key.values()) <= 2
    check_clean(isolated.survivors)
    return taken_over
