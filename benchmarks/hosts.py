"""Host benchmarks (the W5 rows of issue 13): several hosts of one journal, fsync on.

    .venv/bin/python benchmarks/hosts.py                 # full size, about a minute
    .venv/bin/python benchmarks/hosts.py --quick         # smoke run, a few seconds
    .venv/bin/python benchmarks/hosts.py --lease-ttl 2   # hosts' lease TTL (5 s)
    .venv/bin/python benchmarks/workflows.py --hosts     # these rows after W1-W4

Every host is an ``ActorSystem.open(journal, lease_ttl=TTL)`` in a process of its
own (``benchmarks._host_child``), the journal at its defaults (fsync on). This
process drives no run: it starts, signals and watches runs through an
``actors.Client`` only. A run's completion time is the timestamp of its last
event in the journal (stamped by the host that completed it, on this machine's
clock), so how often this process looks does not enter the figures.

W5 failover: 3 hosts, once they share the partitions out, run runs that each
append their id to a side file in one step, then wait on a signal; t0 just before
the host driving the most of them is SIGKILLed, then every run is signalled
through the client; t1 the last completion. W2 on 2 hosts vs 1 host: W2 (500 runs
of 3 stamped steps, started one by one through the client) on 1 host, then on 2
hosts sharing the partitions out; first start to last completion, median of the
rounds. Duplicates: a W2-like load on 3 hosts started as soon as they are open
(while they still hand partitions over), each step appending its idempotency key
to a side file (O_APPEND); extra executions counted. Idle: one host with 100 runs
waiting on signals and nothing else happening; its journal read transactions
counted by wrapping the store's one read entry point in the host process.

Prints machine facts, then a table in the style of ``benchmarks/workflows.py``,
then notes. All data lives in one temporary directory on the repository's
filesystem (or under --tmp-dir), removed at exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import attrs

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where benchmarks/
# journal.py would shadow the journal package: resolve imports from the repo root.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))
# First: it puts the code under test (CHRONIK_BENCH_CODE) ahead of this checkout's.
from benchmarks import workflows as bench  # noqa: E402

# isort: split

from actors import Client  # noqa: E402
from aggregates import WorkflowRun  # noqa: E402
from benchmarks._host_child import COUNTED_STEPS, READY, w2_id  # noqa: E402
from benchmarks._recovery_child import wait_until_waiting  # noqa: E402
from benchmarks._workloads import (  # noqa: E402
    GO,
    stamped_steps,
    step_then_wait,
    wait_for_go,
)
from benchmarks.journal import machine_info  # noqa: E402
from journal import PARTITIONS, Journal, Leases, partition_of  # noqa: E402

_TIMEOUT = 120.0  # seconds: far beyond any sane figure, short of a hang
_CLOSE_TIMEOUT = 30.0
_LOOK = 0.02  # seconds between two looks at a run that is not finished yet


@attrs.frozen
class HostScale:
    failover_runs: int  # W5 failover: runs waiting when one of 3 hosts is killed
    concurrent_runs: int  # W2 on 1 and on 2 hosts: runs started one by one
    concurrent_steps: int  # and steps of each
    rounds: int  # W2 on 1 and on 2 hosts is run this many times (median taken)
    duplicate_runs: int  # the W2-like load on 3 hosts
    idle_runs: int  # runs waiting on the idle host
    idle_seconds: float  # how long the idle host's reads are counted
    settle: float  # seconds the idle host is left alone before counting
    lease_ttl: float  # every host's lease_ttl


DEFAULT = HostScale(
    failover_runs=300,
    concurrent_runs=500,
    concurrent_steps=3,
    rounds=3,
    duplicate_runs=500,
    idle_runs=100,
    idle_seconds=5.0,
    settle=1.0,
    lease_ttl=5.0,
)
QUICK = HostScale(
    failover_runs=20,
    concurrent_runs=30,
    concurrent_steps=3,
    rounds=1,
    duplicate_runs=30,
    idle_runs=10,
    idle_seconds=1.0,
    settle=0.3,
    lease_ttl=1.0,
)


# -- hosts: processes of their own ----------------------------------------------------


class Host:
    """One ``benchmarks._host_child`` process and the lines it prints."""

    def __init__(
        self, journal: Path, lease_ttl: float, log: Path, *, count_reads: bool
    ):
        self._log: IO[str] = open(log, "w+", encoding="utf-8")  # noqa: SIM115
        options = ["--lease-ttl", repr(lease_ttl)]
        self.process = subprocess.Popen(
            bench.child_command(
                "benchmarks._host_child",
                str(journal),
                *options,
                *(["--count-reads"] if count_reads else []),
            ),
            cwd=_REPO,
            env=bench.child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.killed = False
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # end of file

    def _line(self, timeout: float) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return ""

    def wait_ready(self) -> None:
        line = self._line(_TIMEOUT)
        bench.expect(line == READY, f"host {self.pid} said {line!r}: {self.tail()}")

    def stats(self) -> dict[str, Any]:
        """The host's counters now (``benchmarks._host_child.report``)."""
        self.send("stats")
        return self.reply()

    def send(self, command: str) -> None:
        """Send a command (``benchmarks._host_child``); ``reply`` reads its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def reply(self) -> dict[str, Any]:
        line = self._line(_TIMEOUT)
        bench.expect(
            line.startswith("{"), f"host {self.pid} said {line!r}: {self.tail()}"
        )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.killed = True
        self.process.wait(timeout=_CLOSE_TIMEOUT)

    def close(self) -> int | None:
        """Close the host (SIGKILL if it does not close in time); its exit code,
        None if it was killed."""
        if self.process.poll() is None:
            try:
                self.send("close")
                self.process.wait(timeout=_CLOSE_TIMEOUT)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.killed = True
                self.process.wait(timeout=_CLOSE_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        return None if self.killed else self.process.returncode

    def tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:] or "(no stderr)"

    def release(self) -> None:
        self._log.close()


@contextmanager
def running_hosts(
    journal: Path, count: int, lease_ttl: float, *, count_reads: bool = False
) -> Iterator[list[Host]]:
    """``count`` hosts of ``journal``, open; closed on the way out (a host that
    did not close cleanly is an error, unless one is on its way already)."""

    def host(index: int) -> Host:
        log = journal.parent / f"host-{index}.err"
        return Host(journal, lease_ttl, log, count_reads=count_reads)

    hosts: list[Host] = []
    try:
        hosts.append(host(0))
        hosts[0].wait_ready()  # it creates the journal; the others join it together
        hosts += [host(i) for i in range(1, count)]
        for started in hosts[1:]:
            started.wait_ready()
        yield hosts
    except BaseException:
        for started in hosts:
            started.close()
            started.release()
        raise
    codes = [started.close() for started in hosts]
    try:
        for started, code in zip(hosts, codes, strict=True):
            bench.expect(
                code in (0, None), f"host {started.pid} exited {code}: {started.tail()}"
            )
    finally:
        for started in hosts:
            started.release()


@contextmanager
def lease_table(journal: Path) -> Iterator[Leases]:
    """The journal's lease table, read from this process (which holds none)."""
    handle = Journal.open(str(journal))
    try:
        yield Leases(handle)
    finally:
        handle.close()


def owner_pids(leases: Leases) -> dict[int, int]:
    """partition -> the pid of the host holding it now (a host id is
    ``host:pid:random``, ``actors._ownership.new_host_id``)."""
    now = time.time()
    return {
        p: int(lease.owner.split(":")[-2])
        for p, lease in leases.read().items()
        if lease.held(now)
    }


def wait_shared_out(leases: Leases, hosts: int) -> float:
    """Wait until ``hosts`` hosts hold every partition, none above its share;
    the seconds it took."""
    share = math.ceil(PARTITIONS / hosts)
    began = time.monotonic()
    while True:
        held = Counter(owner_pids(leases).values())
        if (
            len(held) == hosts
            and sum(held.values()) == PARTITIONS
            and max(held.values()) <= share
        ):
            return time.monotonic() - began
        bench.expect(
            time.monotonic() - began < _TIMEOUT,
            f"{hosts} hosts did not share the partitions out within {_TIMEOUT:g} s "
            f"(held: {dict(held)})",
        )
        time.sleep(0.05)


def wait_done(client: Client, ids: Sequence[str]) -> list[WorkflowRun]:
    """Each run once it is finished, looking at one run at a time (the runs
    finish in about the order they started)."""
    deadline = time.monotonic() + _TIMEOUT
    done = []
    for run_id in ids:
        while not (run := client.history(run_id)).is_finished:
            if time.monotonic() > deadline:
                msg = f"run {run_id} is not finished after {_TIMEOUT:g} s"
                raise TimeoutError(msg)
            time.sleep(_LOOK)
        done.append(run)
    return done


def completed_at(runs: Sequence[WorkflowRun]) -> float:
    """When the last of ``runs`` completed: its last event's timestamp."""
    return max(run.modified_on.timestamp() for run in runs)


def extra_executions(side_file: Path) -> tuple[int, Counter[str]]:
    """Executions beyond the first of each key in ``side_file`` (a line per
    execution), and the count of each key."""
    counts = Counter(side_file.read_text(encoding="utf-8").split())
    return sum(n - 1 for n in counts.values()), counts


# -- W5 failover: SIGKILL one of 3 hosts, then signal every run ---------------------


@attrs.frozen
class Failover:
    seconds: float  # the SIGKILL to the last completion
    signalled: float  # the SIGKILL to the last signal durable (client returned)
    observed: float  # the SIGKILL to this process seeing the last completion
    victim_runs: int  # runs of the partitions the killed host held
    victim_partitions: int
    shared_out: float  # seconds the 3 hosts took to share the partitions out
    extra: int  # executions of the first steps beyond one each


def failover(root: Path, scale: HostScale) -> Failover:
    root.mkdir()
    journal, side_file = root / "journal", root / "executions.txt"
    runs = scale.failover_runs
    ids = [f"failover-{i:05d}" for i in range(runs)]
    with (
        running_hosts(journal, 3, scale.lease_ttl) as hosts,
        Client(journal) as client,
        lease_table(journal) as leases,
    ):
        shared_out = wait_shared_out(leases, 3)
        for run_id in ids:
            client.start(step_then_wait, str(side_file), id=run_id)
        wait_until_waiting(str(journal), ids, _TIMEOUT)
        owners = owner_pids(leases)
        by_host = Counter(owners[partition_of(i)] for i in ids)
        victim = max(hosts, key=lambda h: by_host[h.pid])
        began = time.time()  # t0
        victim.kill()
        for index, run_id in enumerate(ids):
            client.signal(run_id, GO, index)
        signalled = time.time()
        done = wait_done(client, ids)
        observed = time.time()
    results = [run.result for run in done]
    bench.expect(results == list(range(runs)), f"failover runs returned {results}")
    extra, counts = extra_executions(side_file)
    bench.expect(sorted(counts) == ids, f"failover steps never ran: {counts}")
    return Failover(
        seconds=completed_at(done) - began,
        signalled=signalled - began,
        observed=observed - began,
        victim_runs=by_host[victim.pid],
        victim_partitions=sum(1 for pid in owners.values() if pid == victim.pid),
        shared_out=shared_out,
        extra=extra,
    )


# -- W2 on 1 host and on 2 hosts ------------------------------------------------------


@attrs.frozen
class Throughput:
    hosts: int
    seconds: float  # just before the first start to the last completion
    starting: float  # just before the first start to the last start's return
    host_cpu: float  # CPU seconds of every host process meanwhile
    client_cpu: float  # CPU seconds of this process (the client) meanwhile
    steps_by_host: list[int]  # steps each host completed


def throughput(
    root: Path, hosts: int, scale: HostScale, *, in_hosts: bool = False
) -> Throughput:
    """W2 once the hosts have shared out the partitions: ``concurrent_runs``
    runs of ``concurrent_steps`` stamped steps started one by one, through the
    client; or (``in_hosts``) by the hosts, each spawning its share of the runs
    one by one, as ``benchmarks.workflows`` W2 does in its one process."""
    root.mkdir()
    journal = root / "journal"
    runs, steps = scale.concurrent_runs, scale.concurrent_steps
    ids = [w2_id(i) for i in range(runs)]
    with (
        running_hosts(journal, hosts, scale.lease_ttl) as started,
        Client(journal) as client,
        lease_table(journal) as leases,
    ):
        wait_shared_out(leases, hosts)
        before = [h.stats() for h in started]
        cpu = time.process_time()
        began = time.time()
        if in_hosts:
            ends = spawn_in_hosts(started, runs, steps)
            began = min(e["began"] for e in ends)
            starting = max(e["ended"] for e in ends) - began
        else:
            for run_id in ids:
                client.start(stamped_steps, steps, id=run_id)
            starting = time.time() - began
        done = wait_done(client, ids)
        cpu = time.process_time() - cpu
        after = [h.stats() for h in started]
    wrong = [run.result for run in done if len(run.result) != steps]
    bench.expect(not wrong, f"{len(wrong)} of {runs} W2 runs returned {wrong[:3]}")
    return Throughput(
        hosts=hosts,
        seconds=completed_at(done) - began,
        starting=starting,
        host_cpu=sum(a["cpu"] - b["cpu"] for a, b in zip(after, before, strict=True)),
        client_cpu=cpu,
        steps_by_host=[
            a["steps_completed"] - b["steps_completed"]
            for a, b in zip(after, before, strict=True)
        ],
    )


def spawn_in_hosts(
    hosts: list[Host], runs: int, steps: int, side_file: Path | None = None
) -> list[dict[str, Any]]:
    """Each host spawns an equal share of runs ``w2_id(0)`` ..., all hosts at
    once (``counted_steps`` with ``side_file``, else W2's); when each began and
    ended, by its ``time.time()``."""
    per = math.ceil(runs / len(hosts))
    for index, host in enumerate(hosts):
        first = index * per
        command = f"spawn {first} {min(per, runs - first)} {steps}"
        host.send(command if side_file is None else f"{command} {side_file}")
    return [host.reply() for host in hosts]


# -- duplicate step executions, 3 hosts, no faults ----------------------------------


@attrs.frozen
class Duplicates:
    extra: int  # executions beyond one per idempotency key, both loads
    extra_client: int  # of the runs started through the client
    extra_spawned: int  # of the runs the hosts spawned
    keys: int  # idempotency keys seen (every step's)
    partitions_moved: int  # leases that changed hands during the loads
    steps_by_host: list[int]  # steps each host completed


def duplicates(root: Path, scale: HostScale) -> Duplicates:
    """A W2-like load on 3 hosts that have shared out the partitions, no fault:
    first the runs started through the client, then as many spawned by the
    hosts themselves (each its third, one by one, all at once)."""
    root.mkdir()
    journal, side_file = root / "journal", root / "executions.txt"
    runs, steps = scale.duplicate_runs, scale.concurrent_steps
    by_client = [f"dup-{i:05d}" for i in range(runs)]
    by_hosts = [w2_id(i) for i in range(runs)]
    with (
        running_hosts(journal, 3, scale.lease_ttl) as hosts,
        Client(journal) as client,
        lease_table(journal) as leases,
    ):
        wait_shared_out(leases, 3)
        tokens = leases.last_token()
        for run_id in by_client:
            client.start(COUNTED_STEPS, str(side_file), steps, id=run_id)
        done = wait_done(client, by_client)
        spawn_in_hosts(hosts, runs, steps, side_file)
        done += wait_done(client, by_hosts)
        moved = leases.last_token() - tokens
        stats = [h.stats() for h in hosts]
    results = [run.result for run in done]
    bench.expect(results == [steps] * 2 * runs, f"duplicate-load runs: {results}")
    extra, counts = extra_executions(side_file)
    ids = {k.split("/")[0] for k in counts}
    bench.expect(
        len(counts) == 2 * runs * steps and ids == {*by_client, *by_hosts},
        f"{len(counts)} idempotency keys in {side_file}, not {2 * runs * steps}",
    )
    extra_client = sum(n - 1 for k, n in counts.items() if k.startswith("dup-"))
    return Duplicates(
        extra=extra,
        extra_client=extra_client,
        extra_spawned=extra - extra_client,
        keys=len(counts),
        partitions_moved=moved,
        steps_by_host=[s["steps_completed"] for s in stats],
    )


# -- an idle host's reads -----------------------------------------------------------


@attrs.frozen
class Idle:
    reads: int  # read transactions of the host's journal while idle
    seconds: float  # how long that was (the host's monotonic clock)
    commits: int  # its write transactions meanwhile (lease renewals)


def idle(root: Path, scale: HostScale) -> Idle:
    """One host with ``idle_runs`` runs waiting on a signal, left alone."""
    root.mkdir()
    journal = root / "journal"
    ids = [f"idle-{i:05d}" for i in range(scale.idle_runs)]
    with (
        running_hosts(journal, 1, scale.lease_ttl, count_reads=True) as (host,),
        Client(journal) as client,
    ):
        for run_id in ids:
            client.start(wait_for_go, id=run_id)
        wait_until_waiting(str(journal), ids, _TIMEOUT)
        time.sleep(scale.settle)  # the wakes of the starts are handled
        first = host.stats()
        time.sleep(scale.idle_seconds)
        last = host.stats()
    bench.expect(
        first["reads"] is not None, "the host counted no reads (no --count-reads?)"
    )
    return Idle(
        reads=last["reads"] - first["reads"],
        seconds=last["at"] - first["at"],
        commits=last["commits"] - first["commits"],
    )


# -- the run ---------------------------------------------------------------------------


# -- the floor: W2's commits with the libraries alone, 1 process vs 2 ----------------


_FLOOR_THREADS = 16  # a process's committing threads (a host: 8 + 16 of its own)


def floor_scaling(root: Path, processes: int, scale: HostScale) -> float:
    """Steps/s of W2's events and commits made with the libraries alone (no
    engine) by ``processes`` processes at once on one journal, from
    ``_FLOOR_THREADS`` threads each (their group commit merges within a process,
    never across: LMDB has one writer at a time); first begin to last end."""
    root.mkdir()
    journal = root / "journal"
    Journal.open(str(journal)).close()
    runs, steps = scale.concurrent_runs, scale.concurrent_steps
    per = math.ceil(runs / processes)
    children = [
        subprocess.Popen(
            bench.child_command(
                "benchmarks._floor_child",
                str(journal),
                str(index * per),
                str(min(per, runs - index * per)),
                str(_FLOOR_THREADS),
                str(steps),
            ),
            env=bench.child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            bench.expect(child.stdout.readline().strip() == "READY", "floor child")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        ends = []
        for child in children:
            assert child.stdout is not None
            ends.append(json.loads(child.stdout.readline()))
            child.wait(_TIMEOUT)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    seconds = float(max(e["ended"] for e in ends) - min(e["began"] for e in ends))
    return runs * steps / seconds


@attrs.frozen
class Results:
    failover: Failover
    one_host: list[Throughput]  # W2 started through the client, round by round
    two_hosts: list[Throughput]
    one_host_spawning: list[Throughput]  # W2 spawned by the hosts themselves
    two_hosts_spawning: list[Throughput]
    duplicates: Duplicates
    idle: Idle
    floor_one: list[float]  # steps/s of the floor in 1 process, round by round
    floor_two: list[float]  # and in 2 processes at once


def steps_per_s(rounds: list[Throughput], scale: HostScale) -> float:
    steps = scale.concurrent_runs * scale.concurrent_steps
    return statistics.median(steps / r.seconds for r in rounds)


def run(root: Path, scale: HostScale) -> Results:
    """Every measurement, in ``root`` (which must not exist)."""
    root.mkdir()
    bench.compile_code()  # hosts import from bytecode, as from an installed package
    w2: dict[tuple[int, bool], list[Throughput]] = {}
    floors: dict[int, list[float]] = {1: [], 2: []}
    for index in range(scale.rounds):  # alternated: drift hits each alike
        for processes in (1, 2):
            name = f"floor-{processes}-{index}"
            floors[processes].append(floor_scaling(root / name, processes, scale))
        for hosts, in_hosts in [(1, False), (2, False), (1, True), (2, True)]:
            name = f"w2-{hosts}-{'spawning' if in_hosts else 'client'}-{index}"
            found = throughput(root / name, hosts, scale, in_hosts=in_hosts)
            w2.setdefault((hosts, in_hosts), []).append(found)
    return Results(
        failover=failover(root / "failover", scale),
        one_host=w2[1, False],
        two_hosts=w2[2, False],
        one_host_spawning=w2[1, True],
        two_hosts_spawning=w2[2, True],
        duplicates=duplicates(root / "duplicates", scale),
        idle=idle(root / "idle", scale),
        floor_one=floors[1],
        floor_two=floors[2],
    )


def rows(r: Results, scale: HostScale) -> list[bench.Row]:
    ttl = scale.lease_ttl
    n, steps = scale.concurrent_runs, scale.concurrent_steps
    one, two = steps_per_s(r.one_host, scale), steps_per_s(r.two_hosts, scale)
    return [
        bench.Row(
            f"W5 failover: 3 hosts, {scale.failover_runs} runs waiting on a signal, "
            "SIGKILL one, signal all through a Client: SIGKILL -> all completed",
            r.failover.seconds,
            "s",
            ttl,
            "lease TTL",
            bench.Target(
                ttl + 0.5, at_least=False, on_ratio=False, text="<= TTL + 0.5 s"
            ),
        ),
        bench.Row(
            f"W5 scaling: W2 ({n} runs x {steps} steps started one by one through "
            "a Client) on 2 hosts vs on 1 host: steps/s",
            two,
            "steps/s",
            one,
            "1 host",
            bench.Target(1.6, at_least=True, on_ratio=True),
        ),
        bench.Row(
            f"floor, no engine (the libraries alone, W2's events and commits from "
            f"{_FLOOR_THREADS} threads a process): 2 processes vs 1 on one journal: "
            "steps/s",
            statistics.median(r.floor_two),
            "steps/s",
            statistics.median(r.floor_one),
            "1 process",
            bench.Target(1.6, at_least=True, on_ratio=True),
        ),
        bench.Row(
            f"W5 duplicates: 3 hosts, no faults, 2 x {scale.duplicate_runs} runs x "
            f"{steps} steps: step executions beyond one per idempotency key",
            r.duplicates.extra,
            "extra",
            None,
            "-",
            bench.Target(0, at_least=False, on_ratio=False, text="0"),
            detail=f"(client-started {r.duplicates.extra_client}, host-spawned "
            f"{r.duplicates.extra_spawned})",
        ),
        bench.Row(
            f"W5 idle host: {scale.idle_runs} runs waiting, nothing happening: "
            "journal read transactions per second",
            r.idle.reads / r.idle.seconds,
            "reads/s",
            None,
            "-",
            bench.Target(10, at_least=False, on_ratio=False, text="<= 10"),
            detail=f"({r.idle.reads} in {r.idle.seconds:.1f} s)",
        ),
    ]


def footnotes(r: Results, scale: HostScale) -> list[str]:
    f, d, i = r.failover, r.duplicates, r.idle
    spread_one = steps_per_s(r.one_host_spawning, scale)
    spread_two = steps_per_s(r.two_hosts_spawning, scale)
    steps = scale.concurrent_runs * scale.concurrent_steps

    def rounds(found: list[Throughput]) -> str:
        return "; ".join(
            f"{steps / t.seconds:,.0f} steps/s (starts {t.starting:.2f} s, host CPU "
            f"{t.host_cpu / steps * 1e3:.2f} ms/step, client CPU "
            f"{t.client_cpu / steps * 1e3:.2f} ms/step, steps by host "
            f"{t.steps_by_host})"
            for t in found
        )

    return [
        f"hosts: each an ActorSystem.open(journal, lease_ttl={scale.lease_ttl:g}) in "
        "a process of its own (benchmarks._host_child), the journal at its defaults "
        "(fsync on); this process only starts, signals and watches runs through an "
        "actors.Client; a run's completion time is its last event's timestamp in the "
        "journal. The machine's cores are shared by the hosts and the client.",
        f"W5 failover: the 3 hosts shared the partitions out in {f.shared_out:.1f} s; "
        f"the killed host held {f.victim_partitions} partitions and "
        f"{f.victim_runs} of the {scale.failover_runs} runs (the most of the three); "
        f"from the SIGKILL: every signal durable at {f.signalled * 1e3:.0f} ms, the "
        f"last completion at {f.seconds * 1e3:.0f} ms (seen here at "
        f"{f.observed * 1e3:.0f} ms). The survivors take the dead host's partitions "
        f"at their next lease round (every TTL/3 = {scale.lease_ttl / 3:.2f} s). "
        f"First steps run beyond once: {f.extra}.",
        f"W5 scaling: median of {scale.rounds} round(s), each configuration in "
        "turn; started through the client: 1 host: "
        f"{rounds(r.one_host)}. 2 hosts: {rounds(r.two_hosts)}.",
        "W5 scaling, the starts spread over the hosts instead (each host spawns "
        "its half of the runs one by one, as benchmarks/workflows.py's W2 does, "
        "so that no single client's start rate bounds the figure): 2 hosts "
        f"{spread_two:,.0f} steps/s vs 1 host {spread_one:,.0f} steps/s, ratio "
        f"{spread_two / spread_one:.2f}x; "
        f"1 host: {rounds(r.one_host_spawning)}. 2 hosts: "
        f"{rounds(r.two_hosts_spawning)}.",
        f"W5 duplicates: {d.keys} idempotency keys, each step appending its key to "
        "a side file (O_APPEND) per execution; once the 3 hosts had shared out the "
        f"partitions, {scale.duplicate_runs} runs started through the client, then "
        f"{scale.duplicate_runs} spawned one by one by the hosts (a third each, at "
        f"once; a run lands on the host of its partition). {d.partitions_moved} "
        f"leases changed hands meanwhile; steps completed by host {d.steps_by_host} "
        f"(the journal's steps: {d.keys}).",
        f"floor: W2's events and commits with the libraries alone (eventsourcing's "
        "mapper, chronik's LMDB recorder and group commit; no engine), from "
        f"{_FLOOR_THREADS} threads in each process (benchmarks._floor_child); "
        "steps/s round by round: 1 process "
        + ", ".join(f"{x:,.0f}" for x in r.floor_one)
        + "; 2 processes at once on one journal "
        + ", ".join(f"{x:,.0f}" for x in r.floor_two)
        + ". What two processes lose here (one LMDB writer at a time, each "
        "process grouping and fsyncing only its own commits) no engine gets back.",
        f"W5 idle host: {i.reads} read transactions in {i.seconds:.2f} s, counted by "
        "wrapping journal._store._Store.reading (where every LMDB read transaction "
        f"of the journal begins) in the host process; {i.commits} write "
        f"transactions meanwhile (lease renewals every {scale.lease_ttl / 3:.2f} s); "
        f"left alone {scale.settle:g} s before counting.",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--lease-ttl",
        type=float,
        help=f"every host's lease_ttl (default {DEFAULT.lease_ttl:g} s, "
        f"{QUICK.lease_ttl:g} s with --quick)",
    )
    parser.add_argument("--rounds", type=int, help="rounds of W2 on 1 and 2 hosts")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=_REPO,
        help="where the temporary directory goes (default: the repository, so the "
        "data sits on the repository's filesystem)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed"
    )
    return parser.parse_args(argv)


def scale_from(quick: bool, **overrides: Any) -> HostScale:
    scale = QUICK if quick else DEFAULT
    return attrs.evolve(scale, **{k: v for k, v in overrides.items() if v is not None})


def measure(tmp_dir: Path, scale: HostScale) -> tuple[list[bench.Row], list[str]]:
    """Run everything in a temporary directory under ``tmp_dir``; the rows and
    the notes (``benchmarks.workflows --hosts`` appends them to its own)."""
    root = Path(tempfile.mkdtemp(prefix=".bench-hosts-", dir=tmp_dir))
    try:
        results = run(root / "hosts", scale)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows(results, scale), footnotes(results, scale)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_from(args.quick, lease_ttl=args.lease_ttl, rounds=args.rounds)
    print("\n".join(machine_info(args.tmp_dir)), end="\n\n", flush=True)
    found, notes = measure(args.tmp_dir, scale)
    print("\n".join(bench.table(found)))
    print()
    print("\n".join(f"* {note}" for note in notes))
    missed = [row.measurement for row in found if row.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
