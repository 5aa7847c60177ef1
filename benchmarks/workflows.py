"""Workflow benchmarks: chronik's runtime on the peers' four workloads, fsync on.

    .venv/bin/python benchmarks/workflows.py           # the peers' sizes, a minute
    .venv/bin/python benchmarks/workflows.py --quick   # smoke run, a few seconds
    .venv/bin/python benchmarks/workflows.py --peers /tmp/peer-results  # + peers
    .venv/bin/python benchmarks/workflows.py --big     # + 10k active, 100k reopened
    .venv/bin/python benchmarks/workflows.py --hosts   # + W5 (benchmarks/hosts.py)
    CHRONIK_BENCH_CODE=/path/to/old/checkout .venv/bin/python benchmarks/workflows.py

W1-W4 and the fsync probe are defined exactly as in the peer harness
(``/work/shared/peers/README.md``, sizes and step bodies in its
``common/benchlib.py``): W1 20 sequential steps returning ``{"i": i, "t":
time.time()}``, 10 runs after a warm-up, median of the 190 gaps between stamps;
W2 500 runs of 3 such steps started one by one, first start to last completion,
CPU of every process; W3 a signal after a seeded random pause of 0.3-1.3 s, send
to completion; W4 SIGKILL with 200 runs waiting, t0 just before the new process
is spawned, the 200 signals sent at once from this process through the journal
(a ``Client``, as ``chronik signal`` sends them), t1 when all completed.

Prints machine facts, then one table: each figure of chronik, the reference its
target is stated against (one durable single-put commit of bare LMDB measured in
this run, or the best peer's figure read with ``--peers`` from the JSON files the
peer harness wrote in the same sitting), their ratio, the target and whether it was
met ("-" when the reference is missing). All data lives in one temporary directory
on the repository's filesystem (or under --tmp-dir), removed at exit.

``CHRONIK_BENCH_CODE``: a checkout whose ``actors``/``journal``/``aggregates``
are measured instead of this one's (the benchmark's own code stays this one's);
options an older checkout lacks are left out.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import queue
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import lmdb

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where benchmarks/
# journal.py would shadow the journal package: resolve imports from the repo root.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))
# This checkout's benchmarks package, before another checkout's code goes first:
import benchmarks  # noqa: E402, F401

_CODE = os.environ.get("CHRONIK_BENCH_CODE", "")
if _CODE:
    sys.path.insert(0, os.path.realpath(_CODE))
    for _package in ("journal", "aggregates", "actors"):
        sys.modules.pop(_package, None)

from eventsourcing.application import Application  # noqa: E402

import actors  # noqa: E402
from actors import ActorSystem, Client  # noqa: E402
from aggregates import WorkflowRun  # noqa: E402
from benchmarks._recovery_child import HOST_NAME_VARIABLE, READY, run_id  # noqa: E402
from benchmarks._workloads import (  # noqa: E402
    GO,
    one_async_sleep,
    stamped_steps,
    wait_for_go,
)
from benchmarks.journal import machine_info  # noqa: E402

_BARE_MAP_SIZE = 1 << 30
_RESULT_TIMEOUT = 120.0  # seconds: far beyond any sane figure, short of a hang
_CHILD_TIMEOUT = 600.0
_SCALE_TIMEOUT = 300.0  # a scale row that takes longer is reported as such
_MIB = 1 << 20
_THREADS_SLACK = 32  # the "constant" of the threads target: housekeeping threads
# The peers' W3 pauses (benchlib.W3_PRE_SIGNAL_PAUSES): the same seed, the same draws.
_W3_RNG = random.Random(12345)
W3_PRE_SIGNAL_PAUSES = [0.3 + _W3_RNG.uniform(0.0, 1.0) for _ in range(100)]
FSYNC_CALLS = ("fsync", "fdatasync", "msync", "sync_file_range")


@attrs.frozen
class Scale:
    sequential_steps: int  # W1: steps of each run
    sequential_runs: int  # W1: runs back to back, after one warm-up run
    commits_per_run: int  # bare LMDB commits timed just before each W1 run
    concurrent_runs: int  # W2: runs started one by one
    concurrent_steps: int  # W2: steps of each run
    signal_runs: int  # W3: runs signalled one at a time, after one warm-up run
    pause_factor: float  # W3: the peers' pauses times this (1 but for --quick)
    recovery_runs: int  # W4: runs waiting when the process is killed
    rounds: int  # W2 and W4 are run this many times (median taken)
    probe_steps: int  # the fsync probe's workflow
    async_runs: int  # runs of one 100 ms async step, started one by one
    active_runs: int  # runs waiting at once, idle_timeout=None (0: skipped)
    reopen_runs: int  # waiting runs in a journal reopened (0: skipped)


DEFAULT = Scale(
    sequential_steps=20,
    sequential_runs=10,
    commits_per_run=20,
    concurrent_runs=500,
    concurrent_steps=3,
    signal_runs=20,
    pause_factor=1.0,
    recovery_runs=200,
    rounds=3,
    probe_steps=20,
    async_runs=1000,
    active_runs=0,
    reopen_runs=0,
)
QUICK = Scale(
    sequential_steps=5,
    sequential_runs=2,
    commits_per_run=5,
    concurrent_runs=20,
    concurrent_steps=3,
    signal_runs=3,
    pause_factor=0.05,
    recovery_runs=10,
    rounds=1,
    probe_steps=5,
    async_runs=20,
    active_runs=0,
    reopen_runs=0,
)
BIG = {"active_runs": 10_000, "reopen_runs": 100_000}


@attrs.frozen
class Target:
    """A bound on chronik / reference (``on_ratio``), else on chronik's figure."""

    bound: float
    at_least: bool
    on_ratio: bool
    text: str = ""  # how it reads, if not the plain bound

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        if self.text:
            return self.text
        op = ">=" if self.at_least else "<="
        return f"{op} {self.bound:g}x"


@attrs.frozen
class Row:
    measurement: str
    chronik: float | None  # None: not measured (why: in ``detail``)
    unit: str  # "s" (shown in ms or s), "steps/s", "MiB", "threads", "/step"
    reference: float | None  # what the target is a ratio of; None: none here
    reference_name: str  # e.g. "bare LMDB commit", "restate"
    target: Target | None
    detail: str = ""  # shown after chronik's figure

    @property
    def ratio(self) -> float | None:
        if self.chronik is None or not self.reference:
            return None
        return self.chronik / self.reference

    @property
    def met(self) -> bool | None:
        """None: no target, or nothing to judge it on."""
        if self.target is None or self.chronik is None:
            return None
        if not self.target.on_ratio:
            return self.target.met(self.chronik)
        return None if self.ratio is None else self.target.met(self.ratio)


# -- the baseline: one durable commit of bare LMDB -----------------------------------


class BareCommits:
    """LMDB with fsync on, one small put per write transaction, nothing else."""

    def __init__(self, path: Path) -> None:
        self.env = lmdb.open(
            str(path), map_size=_BARE_MAP_SIZE, sync=True, metasync=True
        )
        self.count = 0

    def timed(self, commits: int) -> list[float]:
        """Seconds of each of ``commits`` one-put commits."""
        samples = []
        for _ in range(commits):
            self.count += 1
            key = struct.pack(">Q", self.count)
            began = time.perf_counter()
            with self.env.begin(write=True) as txn:
                txn.put(key, b"x" * 32, append=True)
            samples.append(time.perf_counter() - began)
        return samples

    def close(self) -> None:
        self.env.close()


# -- W1: one run of sequential steps, and the fsync probe ----------------------------


@attrs.frozen
class Sequential:
    gaps: list[float]  # seconds between consecutive steps' stamps, every run's
    latency: list[float]  # seconds from the spawn call to the result, run by run
    commits: list[float]  # seconds per bare commit, all of them
    probe: dict[str, Any]  # the fsync probe: syscall counts, or why there are none


def sequential(root: Path, scale: Scale) -> Sequential:
    """Bare commits timed between runs, so that drift in the disk's speed hits
    both alike; then the fsync probe, one more run under strace."""
    bare = BareCommits(root / "bare-lmdb")
    gaps: list[float] = []
    latency: list[float] = []
    commits: list[float] = []
    steps = scale.sequential_steps
    try:
        with ActorSystem.open(root / "sequential") as system:
            for index in range(scale.sequential_runs + 1):  # run 0 warms up
                samples = bare.timed(scale.commits_per_run)
                began = time.perf_counter()
                ref = system.spawn(stamped_steps, steps, id=f"sequential-{index}")
                stamps = ref.result(timeout=_RESULT_TIMEOUT)
                elapsed = time.perf_counter() - began
                expect(len(stamps) == steps, f"run {index} returned {stamps!r}")
                if index > 0:
                    gaps.extend(b - a for a, b in itertools.pairwise(stamps))
                    latency.append(elapsed)
                    commits.extend(samples)
            probe = fsync_probe(system, root / "strace.txt", scale)
    finally:
        bare.close()
    return Sequential(gaps, latency, commits, probe)


def fsync_probe(system: ActorSystem, log: Path, scale: Scale) -> dict[str, Any]:
    """As the peers count it: ``strace -f -c`` on this process (it persists the
    state) while one more ``probe_steps``-step run runs; also the journal's own
    count of commits meanwhile, each one fdatasync of LMDB."""
    if shutil.which("strace") is None:
        return {"error": "no strace on this machine"}
    tracer = subprocess.Popen(
        [
            *("strace", "-f", "-c", "-e", "trace=" + ",".join(FSYNC_CALLS)),
            *("-p", str(os.getpid()), "-o", str(log)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(1.0 if scale.probe_steps >= 20 else 0.3)  # attach to every thread
        if tracer.poll() is not None:
            return {"error": f"strace exited {tracer.returncode} (ptrace not allowed?)"}
        groups = commit_groups(system)
        ref = system.spawn(stamped_steps, scale.probe_steps, id="fsync-probe")
        ref.result(timeout=_RESULT_TIMEOUT)
        after = commit_groups(system)
    finally:
        if tracer.poll() is None:
            os.kill(tracer.pid, signal.SIGINT)
        tracer.wait(timeout=30)
    counts: dict[str, int] = {}
    pattern = re.compile(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")
    for line in log.read_text(encoding="utf-8").splitlines():
        found = pattern.match(line)
        if found and found.group(2) in FSYNC_CALLS:
            counts[found.group(2)] = int(found.group(1))
    report: dict[str, Any] = {"counts": counts, "steps": scale.probe_steps}
    if groups is not None and after is not None:
        report["commits"] = after - groups
    return report


def commit_groups(system: ActorSystem) -> int | None:
    """The journal's commits in this process so far (None if the code lacks it)."""
    stats = getattr(system, "stats", None)
    commits = getattr(stats(), "commits", None) if stats is not None else None
    return None if commits is None else int(commits.groups)


# -- the floor: what the chosen libraries alone cost, no engine ----------------------


@attrs.frozen
class Floor:
    """The events and commits of W1 and W2, made with the libraries alone:
    ``aggregates.WorkflowRun`` (eventsourcing's aggregate events), eventsourcing's
    mapper with chronik's msgpack transcoder, chronik's LMDB recorder (hash
    chains, group committer), fsync on; one thread, no actors, no coroutine, no
    step execution. Whatever chronik's engine does, a step costs at least this."""

    w2_cpu: float  # CPU seconds per step, W2's shape: start, 3 x (outcome + next)
    w2_wall: float  # seconds per step of the same, one commit after another
    w1_step: float  # median seconds of one W1 step: outcome + next, one commit


def floor(path: Path, scale: Scale) -> Floor:
    app: Application[str] = Application(
        {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(path)}
    )
    recorder, mapper = app.recorder, app.mapper
    name, step = "benchmarks._workloads:stamped_steps", "benchmarks._workloads:stamp"

    def commit(run: WorkflowRun) -> None:
        stored = [mapper.to_stored_event(e) for e in run.collect_events()]
        recorder.insert_events(stored)

    def steps(run: WorkflowRun, count: int, timed: list[float] | None) -> None:
        run.schedule_step(1, step, [0], at=datetime.now(UTC))
        for i in range(count):
            began = time.perf_counter()
            result = {"i": i, "t": time.time()}
            run.complete_step(i + 1, result, at=datetime.now(UTC))
            if i + 1 < count:
                run.schedule_step(i + 2, step, [i + 1], at=datetime.now(UTC))
            else:
                run.complete([result["t"]], at=datetime.now(UTC))
            commit(run)
            if timed is not None:
                timed.append(time.perf_counter() - began)

    try:
        runs, count = scale.concurrent_runs, scale.concurrent_steps
        before, began = os.times(), time.perf_counter()
        for index in range(runs):
            run = WorkflowRun.start(f"w2-{index}", name, [count], at=datetime.now(UTC))
            commit(run)
            steps(run, count, None)
        wall, after = time.perf_counter() - began, os.times()
        cpu = (after.user - before.user) + (after.system - before.system)
        w1: list[float] = []
        for index in range(scale.sequential_runs):
            run = WorkflowRun.start(f"w1-{index}", name, [20], at=datetime.now(UTC))
            commit(run)
            steps(run, scale.sequential_steps, w1)
    finally:
        app.close()
    total = runs * count
    return Floor(cpu / total, wall / total, statistics.median(w1))


# -- W2: many runs, started one by one ----------------------------------------------


@attrs.frozen
class Concurrent:
    seconds: float  # just before the first start to the last completion
    starting: float  # just before the first start to the last start's return
    cpu: float  # CPU seconds of this process (the only one involved), all threads
    commits: int | None  # the journal's commits meanwhile


def concurrent(path: Path, scale: Scale, *, batch: bool = False) -> Concurrent:
    """``batch``: the extra row, every start in one ``spawn_many`` commit."""
    runs, steps = scale.concurrent_runs, scale.concurrent_steps
    with ActorSystem.open(path) as system:
        ids = [f"concurrent-{i}" for i in range(runs)]
        groups = commit_groups(system)
        cpu = time.process_time()
        began = time.perf_counter()
        if batch:
            refs = system.spawn_many(stamped_steps, [(i, [steps]) for i in ids])
        else:
            refs = [system.spawn(stamped_steps, steps, id=i) for i in ids]
        started = time.perf_counter()
        results = [ref.result(timeout=_RESULT_TIMEOUT) for ref in refs]
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        after = commit_groups(system)
    wrong = [r for r in results if len(r) != steps]
    expect(not wrong, f"{len(wrong)} of {runs} concurrent runs returned {wrong[:3]}")
    commits = None if groups is None or after is None else after - groups
    return Concurrent(ended - began, started - began, cpu, commits)


# -- W3: a signal to a waiting run ----------------------------------------------------


@attrs.frozen
class Signalled:
    to_result: list[float]  # send call start to result available, run by run
    to_ack: list[float]  # send call start to send's return (the signal is durable)


def signalled(path: Path, scale: Scale) -> Signalled:
    """As the peers: start a run, pause (the peers' seeded 0.3-1.3 s), signal it,
    time from the send to the result; one run at a time, the first warms up."""
    to_result: list[float] = []
    to_ack: list[float] = []
    with ActorSystem.open(path) as system:
        for index in range(scale.signal_runs + 1):  # run 0 warms up
            ref = system.spawn(wait_for_go, id=f"signal-{index}")
            time.sleep(W3_PRE_SIGNAL_PAUSES[index] * scale.pause_factor)
            began = time.perf_counter()
            ref.send(GO, index)
            acked = time.perf_counter()
            result = ref.result(timeout=_RESULT_TIMEOUT)
            ended = time.perf_counter()
            expect(result == index, f"run {ref.id} returned {result!r}, not {index}")
            if index > 0:
                to_result.append(ended - began)
                to_ack.append(acked - began)
    return Signalled(to_result, to_ack)


# -- W4: recovery after SIGKILL --------------------------------------------------------


def child_command(module: str, *args: str) -> list[str]:
    """A fresh interpreter running ``module`` of this checkout's benchmarks, with
    the code under test (``CHRONIK_BENCH_CODE``, if set) first on its path."""
    boot = (
        "import os, runpy, sys; sys.path.insert(0, os.environ['CHRONIK_BENCH_REPO']); "
        "import benchmarks; code = os.environ.get('CHRONIK_BENCH_CODE'); "
        "code and sys.path.insert(0, os.path.realpath(code)); "
        "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__')"
    )
    return [sys.executable, "-c", boot, module, *args]


def child_env() -> dict[str, str]:
    """The environment of a fresh interpreter: its imports read the bytecode
    ``compile_code`` wrote, as an installed package's do (pip compiles at
    install time), even where ``PYTHONDONTWRITEBYTECODE`` is set."""
    env = dict(os.environ, CHRONIK_BENCH_REPO=str(_REPO))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_code() -> None:
    """Write the bytecode of the code under test and of these benchmarks."""
    for root in {Path(actors.__file__).resolve().parent.parent, _REPO}:
        for name in ("actors", "aggregates", "journal", "supervision", "benchmarks"):
            if (root / name).is_dir():
                compileall.compile_dir(root / name, quiet=2)
        for module in root.glob("*.py"):
            compileall.compile_file(module, quiet=2)


def recovery(
    root: Path,
    runs: int,
    journal: str | None = None,
    *,
    lease_ttl: float | None = None,
    dead_leases: Callable[[], float] | None = None,
    host_name: str | None = None,
) -> dict[str, float]:
    """Kill a process holding ``runs`` waiting runs; t0 just before a new process
    is spawned, the signals sent at once from here through the journal's operator
    inbox (a ``Client``'s, as ``chronik signal`` sends them), t1 when the new
    process has every result. Checks every run finished right and ran its step
    once. Returns seconds from t0: ``total`` (t1), the new process's ``open``,
    ``took_over`` (it drives every run), ``signals_sent``, ``first_done``, and
    ``dead_leases`` if given (when the killed host's leases run out, read once it
    is dead).

    ``journal``: an LMDB directory or a ``postgresql://`` URL (default: a
    directory in ``root``, which holds the side file and the logs);
    ``lease_ttl``: both processes' (None: chronik's default); ``host_name``:
    both processes' (the new one is the killed host restarted)."""
    root.mkdir()
    journal = str(root / "journal") if journal is None else journal
    side_file = root / "executions.txt"
    ttl = [] if lease_ttl is None else [repr(lease_ttl)]
    env = child_env()
    if host_name is not None:
        env[HOST_NAME_VARIABLE] = host_name
    with open(root / "start.err", "w+", encoding="utf-8") as errors:
        child = subprocess.Popen(
            child_command(
                "benchmarks._recovery_child",
                *("start", journal, str(side_file), str(runs), *ttl),
            ),
            cwd=_REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            line = _first_line(child, _CHILD_TIMEOUT)
            expect(line == READY, f"the start child said {line!r}: {_tail(errors)}")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=_CHILD_TIMEOUT)
            if child.stdout is not None:
                child.stdout.close()
    ids = [run_id(i) for i in range(runs)]
    expires = None if dead_leases is None else dead_leases()
    # The sender is set up before t0, as the peers create their client first.
    with Client(journal, origin=f"benchmarks W4 (pid {os.getpid()})") as client:
        began = time.time()  # t0
        resumed = subprocess.Popen(
            child_command(
                "benchmarks._recovery_child", "resume", journal, str(runs), *ttl
            ),
            cwd=_REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, workflow_id in enumerate(ids):
            client.signal(workflow_id, GO, index, signal_id=str(uuid.uuid4()))
        sent = time.time()
        out, err = resumed.communicate(timeout=_CHILD_TIMEOUT)
    expect(resumed.returncode == 0, f"the resume child failed: {err}")
    report: dict[str, Any] = json.loads(out.splitlines()[-1])
    expect(report["results_ok"], f"resumed runs returned wrong results: {report}")
    check_executed_once(side_file, ids)
    stamps = {  # phase -> the new process's time.time() stamp of it
        "total": "done_at",
        "open": "opened_at",
        "took_over": "took_over_at",
        "first_done": "first_done_at",
    }
    phases = {k: report[v] - began for k, v in stamps.items() if report.get(v)}
    phases["signals_sent"] = sent - began
    if expires is not None:
        phases["dead_leases"] = expires - began
    return phases


def check_executed_once(side_file: Path, ids: Sequence[str]) -> None:
    counts = Counter(side_file.read_text(encoding="utf-8").split())
    again = {i: n for i, n in counts.items() if n != 1}
    missing = set(ids) - set(counts)
    stray = set(counts) - set(ids)
    if again or missing or stray:
        # The kill came after every step's outcome was durable: a second execution
        # means the reopened system re-ran a recorded step.
        msg = (
            f"first steps did not run exactly once each in {side_file}: ran more "
            f"than once {again}, never ran {sorted(missing)[:5]}, unknown ids "
            f"{sorted(stray)[:5]}"
        )
        raise RuntimeError(msg)


def _first_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line ("" at end of file or after ``timeout``)."""
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    stdout = child.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


def _tail(errors: Any) -> str:
    errors.seek(0)
    return str(errors.read()[-2000:]) or "(no stderr)"


def expect(condition: object, message: str) -> None:
    if not condition:
        raise RuntimeError(f"{message}: the benchmark is not measuring what it says")


# -- the extra rows ------------------------------------------------------------


def async_steps(path: Path, runs: int) -> float:
    """Seconds from just before the start to the last of ``runs`` results, each
    run awaiting one async step that sleeps 100 ms. The runs start in one
    ``spawn_many`` commit: the row is about the steps (1,000 one-by-one starts
    are 1,000 fsyncs, W2's business)."""
    with ActorSystem.open(path) as system:
        began = time.perf_counter()
        refs = system.spawn_many(
            one_async_sleep, [(f"async-{i}", []) for i in range(runs)]
        )
        results = [ref.result(timeout=_RESULT_TIMEOUT) for ref in refs]
        ended = time.perf_counter()
    expect(results == [1] * runs, f"async runs returned {set(results)}")
    return ended - began


def scale_child(mode: str, journal: Path, runs: int) -> dict[str, Any]:
    """One mode of ``benchmarks._scale_child`` in a fresh process; its report, or
    ``{"error": ...}`` if it failed (an older checkout may not cope)."""
    try:
        done = subprocess.run(
            child_command("benchmarks._scale_child", mode, str(journal), str(runs)),
            cwd=_REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=None if mode == "build" else _SCALE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{mode} took over {_SCALE_TIMEOUT:g} s"}
    if done.returncode != 0 or not done.stdout.strip():
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"{mode} exited {done.returncode}: {tail[0][:200]}"}
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


# -- the peers' figures ------------------------------------------------------------


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _cpu_per_step(d: dict[str, Any]) -> float | None:
    total = _get(d, "W2", "cpu_s", "total")
    runs, steps = _get(d, "W2", "workflows"), _get(d, "W2", "steps_per_workflow")
    return None if total is None or not runs or not steps else total / (runs * steps)


def _fsync_per_step(d: dict[str, Any]) -> float | None:
    counts = _get(d, "fsync_probe", "during_one_w1_workflow")
    return None if counts is None else sum(counts.values()) / 20.0


def _ms(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def read(d: dict[str, Any]) -> float | None:
        value = _get(d, *path)
        return None if value is None else value / 1e3

    return read


# metric -> (how to read it from a peer's JSON, in this script's units;
# whether higher is better)
PEER_METRICS: dict[str, tuple[Callable[[dict[str, Any]], float | None], bool]] = {
    "w1_gap": (_ms("W1", "per_step_gap", "median_ms"), False),
    "w1_latency_per_step": (_ms("W1", "per_step_latency_div_steps_ms"), False),
    "w2_steps_per_s": (lambda d: _get(d, "W2", "steps_per_s"), True),
    "w2_cpu_per_step": (_cpu_per_step, False),
    "w3_median": (_ms("W3", "signal_to_completion", "median_ms"), False),
    "w3_p90": (_ms("W3", "signal_to_completion", "p90_ms"), False),
    "w4_total": (lambda d: _get(d, "W4", "restart_to_all_completed_s"), False),
    "fsync_per_step": (_fsync_per_step, False),
}


@attrs.frozen
class Peers:
    figures: dict[str, dict[str, float]]  # peer tag -> metric -> median over its runs
    source: str

    def best(self, metric: str) -> tuple[float | None, str]:
        higher = PEER_METRICS[metric][1]
        found = [(f[metric], tag) for tag, f in self.figures.items() if metric in f]
        if not found:
            return None, "-"
        return max(found) if higher else min(found)


def read_peers(directory: Path) -> Peers:
    """Every ``<peer>.json`` under ``directory`` (``runN/`` of the peer harness);
    a peer's figure is the median over its repetitions. A peer whose W4 did not
    complete every run exactly once gives no W4 figure."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and ("W1" in data or "W2" in data or "W4" in data):
            runs.setdefault(path.stem, []).append(data)
    figures: dict[str, dict[str, float]] = {}
    for tag, datas in runs.items():
        for metric, (read, _) in PEER_METRICS.items():
            values = []
            for d in datas:
                if metric == "w4_total" and not (
                    _get(d, "W4", "exactly_once") and _get(d, "W4", "all_completed")
                ):
                    continue
                value = read(d)
                if isinstance(value, int | float):
                    values.append(float(value))
            if values:
                figures.setdefault(tag, {})[metric] = statistics.median(values)
    return Peers(figures, str(directory))


# -- the run -------------------------------------------------------------------------


@attrs.frozen
class Results:
    rows: list[Row]
    floor: Floor | None
    sequential: Sequential
    concurrent: list[Concurrent]
    batch: list[Concurrent]
    signalled: Signalled
    recovery: list[dict[str, float]]
    async_s: float
    active: dict[str, Any] | None
    reopened: dict[str, Any] | None


def run(
    root: Path, scale: Scale, peers: Peers | None, built: Path | None = None
) -> Results:
    """``built``: a journal of ``scale.reopen_runs`` waiting runs built beforehand
    (``--build-reopen``), copied here and reopened; else built here."""
    seq = sequential(root, scale)
    ground = floor(root / "floor", scale)
    rounds = [concurrent(root / f"concurrent-{i}", scale) for i in range(scale.rounds)]
    batch = [
        concurrent(root / f"batch-{i}", scale, batch=True) for i in range(scale.rounds)
    ]
    sig = signalled(root / "signal", scale)
    compile_code()  # W4 times a new process, imports included
    recovered = [
        recovery(root / f"recovery-{i}", scale.recovery_runs)
        for i in range(scale.rounds)
    ]
    async_s = async_steps(root / "async", scale.async_runs)
    active = None
    if scale.active_runs:
        active = scale_child("active", root / "active", scale.active_runs)
    reopened = None
    if scale.reopen_runs:
        if built is None:
            building = scale_child("build", root / "reopen", scale.reopen_runs)
        else:
            shutil.copytree(built, root / "reopen")
            building = {"built_beforehand": str(built)}
        reopened = (
            building
            if "error" in building
            else {
                **building,
                **scale_child("reopen", root / "reopen", scale.reopen_runs),
            }
        )
    results = Results(
        [], ground, seq, rounds, batch, sig, recovered, async_s, active, reopened
    )
    return attrs.evolve(results, rows=rows(results, scale, peers))


def rows(r: Results, scale: Scale, peers: Peers | None) -> list[Row]:
    def peer(metric: str) -> tuple[float | None, str]:
        if peers is None:
            return None, "no --peers"
        value, tag = peers.best(metric)
        return value, (f"best peer: {tag}" if value is not None else "no peer figure")

    commit = statistics.median(r.sequential.commits)
    gap = statistics.median(r.sequential.gaps)
    steps = scale.concurrent_runs * scale.concurrent_steps

    def median_of(rounds: list[Concurrent], fn: Callable[[Concurrent], float]) -> float:
        return statistics.median(fn(c) for c in rounds)

    w2_rate = median_of(r.concurrent, lambda c: steps / c.seconds)
    w2_cpu = median_of(r.concurrent, lambda c: c.cpu / steps)
    batch_rate = median_of(r.batch, lambda c: steps / c.seconds)
    commits = [c.commits for c in r.concurrent if c.commits is not None]
    w2_commits = statistics.median(commits) / steps if commits else None
    probe = r.sequential.probe
    fsyncs = (
        None
        if "counts" not in probe
        else sum(probe["counts"].values()) / probe["steps"]
    )
    w3 = statistics.median(r.signalled.to_result)
    w4 = statistics.median(x["total"] for x in r.recovery)
    third, tenth, fifth, fifteenth = 1 / 3, 1 / 10, 1 / 5, 1 / 15
    n1, n2, n3 = scale.sequential_steps, scale.concurrent_runs, scale.signal_runs
    out = [
        Row(
            f"W1: per-step gap, median of {len(r.sequential.gaps)}, vs 1 bare LMDB "
            "commit",
            gap,
            "s",
            commit,
            "bare LMDB commit",
            Target(2, at_least=False, on_ratio=True),
        ),
        Row(
            "W1: per-step gap vs the best peer's",
            gap,
            "s",
            *peer("w1_gap"),
            Target(third, at_least=False, on_ratio=True, text="<= 1/3x"),
        ),
        Row(
            f"W1: latency/{n1} (spawn to result of {n1} steps) vs the best peer's",
            statistics.median(r.sequential.latency) / n1,
            "s",
            *peer("w1_latency_per_step"),
            None,
        ),
        Row(
            f"W2: {n2} runs x {scale.concurrent_steps} steps started one by one: "
            "steps/s vs the best peer's",
            w2_rate,
            "steps/s",
            *peer("w2_steps_per_s"),
            Target(10, at_least=True, on_ratio=True),
            detail=f"({w2_rate / scale.concurrent_steps:,.0f} runs/s)",
        ),
        Row(
            "W2: CPU per step, every process, vs the best peer's",
            w2_cpu,
            "s",
            *peer("w2_cpu_per_step"),
            Target(fifteenth, at_least=False, on_ratio=True, text="<= 1/15x"),
        ),
        *_floor_rows(r, commit, peer),
        Row(
            "W2: fsync per step (journal commits / steps; 1 fdatasync each)",
            w2_commits,
            "/step",
            None,
            "-",
            Target(0.5, at_least=False, on_ratio=False, text="<= 0.5"),
            detail="" if w2_commits is not None else "(code counts no commits)",
        ),
        Row(
            f"W2 extra: the {n2} starts in one spawn_many commit: steps/s vs the "
            "best peer's",
            batch_rate,
            "steps/s",
            *peer("w2_steps_per_s"),
            None,
        ),
        Row(
            f"W3: signal -> completion, median of {n3}, vs the best peer's",
            w3,
            "s",
            *peer("w3_median"),
            Target(tenth, at_least=False, on_ratio=True, text="<= 1/10x"),
        ),
        Row(
            f"W4: SIGKILL, {scale.recovery_runs} runs waiting: new process spawned "
            "-> all completed, vs the best peer's",
            w4,
            "s",
            *peer("w4_total"),
            Target(fifth, at_least=False, on_ratio=True, text="<= 1/5x"),
        ),
        Row(
            f"fsync per step (strace -f -c, one {scale.probe_steps}-step run) vs the "
            "best peer's",
            fsyncs,
            "/step",
            *peer("fsync_per_step"),
            None,
            detail="" if fsyncs is not None else f"({probe.get('error')})",
        ),
        Row(
            f"{scale.async_runs:,} runs each awaiting one async step (100 ms sleep), "
            "started in one spawn_many: wall time",
            r.async_s,
            "s",
            None,
            "-",
            Target(1.0, at_least=False, on_ratio=False, text="<= 1 s"),
        ),
    ]
    if r.active is not None:
        a = r.active
        pool = (a.get("dispatcher_threads") or 0) + (a.get("max_workers") or 0)
        limit = pool + _THREADS_SLACK
        error = f"({a['error']})" if "error" in a else ""
        out += [
            Row(
                f"{scale.active_runs:,} active runs waiting on a signal "
                "(idle_timeout=None): threads",
                a.get("threads"),
                "threads",
                None,
                "-",
                Target(limit, at_least=False, on_ratio=False, text=f"<= {limit}"),
                detail=error,
            ),
            Row(
                f"{scale.active_runs:,} active runs waiting on a signal: RSS",
                None if "rss" not in a else a["rss"] / _MIB,
                "MiB",
                None,
                "-",
                Target(150, at_least=False, on_ratio=False, text="<= 150 MiB"),
                detail=error,
            ),
        ]
    if r.reopened is not None:
        o = r.reopened
        error = f"({o['error']})" if "error" in o else ""
        out += [
            Row(
                f"{scale.reopen_runs:,} runs waiting on signals, reopened: open time",
                o.get("open_s"),
                "s",
                None,
                "-",
                Target(5.0, at_least=False, on_ratio=False, text="<= 5 s"),
                detail=error,
            ),
            Row(
                f"{scale.reopen_runs:,} runs waiting on signals, reopened: RSS",
                None if "rss" not in o else max(o["rss"], o["rss_2s"]) / _MIB,
                "MiB",
                None,
                "-",
                Target(300, at_least=False, on_ratio=False, text="<= 300 MiB"),
                detail=error,
            ),
        ]
    return out


# -- output ----------------------------------------------------------------------


def _floor_rows(
    r: Results, commit: float, peer: Callable[[str], tuple[float | None, str]]
) -> list[Row]:
    """What the libraries alone cost (``Floor``), against the same targets:
    where the floor misses a target, no engine on these libraries meets it."""
    if r.floor is None:
        return []
    return [
        Row(
            "floor, no engine (the libraries alone, W1's events and commit): one "
            "step vs 1 bare LMDB commit",
            r.floor.w1_step,
            "s",
            commit,
            "bare LMDB commit",
            Target(2, at_least=False, on_ratio=True),
        ),
        Row(
            "floor, no engine (W2's events and commits, one thread): CPU per "
            "step vs the best peer's",
            r.floor.w2_cpu,
            "s",
            *peer("w2_cpu_per_step"),
            Target(1 / 15, at_least=False, on_ratio=True, text="<= 1/15x"),
        ),
    ]


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        ms = value * 1e3
        if ms >= 1000:
            return f"{value:,.2f} s"
        decimals = 3 if ms < 1 else 2 if ms < 10 else 1 if ms < 100 else 0
        return f"{ms:,.{decimals}f} ms"
    if unit == "/step":
        return f"{value:.2f} /step"
    return f"{value:,.0f} {unit}"


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.3f}x"


def table(rows: Sequence[Row]) -> list[str]:
    header = ("measurement", "chronik", "reference", "ratio", "target", "met")
    cells = [
        (
            row.measurement,
            " ".join(filter(None, [figure(row.chronik, row.unit), row.detail])),
            "-"
            if row.reference is None
            else f"{figure(row.reference, row.unit)} ({row.reference_name})",
            ratio_text(row.ratio),
            "-" if row.target is None else str(row.target),
            {True: "yes", False: "no", None: "-"}[row.met],
        )
        for row in rows
    ]
    widths = [
        max(len(line[i]) for line in [header, *cells]) for i in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]


def ms_list(samples: Sequence[float]) -> str:
    return ", ".join(f"{s * 1e3:.2f}" for s in samples)


def footnotes(results: Results, scale: Scale, peers: Peers | None) -> list[str]:
    seq, sig = results.sequential, results.signalled
    starting = statistics.median(r.starting for r in results.concurrent)
    batch_start = statistics.median(r.starting for r in results.batch)
    steps = scale.concurrent_runs * scale.concurrent_steps
    notes = [
        f"code measured: {Path(actors.__file__).resolve().parent.parent}"
        + (" (CHRONIK_BENCH_CODE)" if _CODE else " (this checkout)"),
        "fsync on everywhere: the journal at its defaults (LMDB_SYNC=yes), bare LMDB "
        "with sync=True, metasync=True. ratio = chronik / reference.",
        f"W1: gaps between the time.time() stamps of consecutive steps, "
        f"{scale.sequential_runs} runs after a warm-up; gap p90 "
        f"{quantile(seq.gaps, 0.9) * 1e3:.3f} ms; latency/{scale.sequential_steps} "
        "run by run (ms): "
        f"{ms_list([x / scale.sequential_steps for x in seq.latency])}."
        f" Baseline: median of {len(seq.commits)} one-put commits, "
        f"{scale.commits_per_run} before each run.",
        "W2: just before the first spawn call to the last result; the one-by-one "
        f"starts took {starting * 1e3:.0f} ms (median). Steps/s round by round: "
        + ", ".join(f"{steps / r.seconds:,.0f}" for r in results.concurrent)
        + "; CPU ms/step: "
        + ", ".join(f"{r.cpu / steps * 1e3:.2f}" for r in results.concurrent)
        + " (time.process_time of this process, the only one involved); commits: "
        + ", ".join(str(r.commits) for r in results.concurrent)
        + f". Extra (spawn_many): starts took {batch_start * 1e3:.0f} ms; steps/s "
        + ", ".join(f"{steps / r.seconds:,.0f}" for r in results.batch)
        + ".",
        *(
            []
            if results.floor is None
            else [
                "floor: the libraries alone (aggregates.WorkflowRun's events, "
                "eventsourcing's mapper, chronik's msgpack transcoder and LMDB "
                "recorder), one thread, fsync on, no engine: W2's shape "
                f"{results.floor.w2_cpu * 1e3:.3f} ms CPU and "
                f"{results.floor.w2_wall * 1e3:.3f} ms wall per step (one commit "
                "after another); W1's step (outcome + next step, one commit) "
                f"{results.floor.w1_step * 1e3:.3f} ms. Where the floor misses a "
                "target, no engine built on these libraries meets it.",
            ]
        ),
        f"W3: the peers' pauses (seed 12345) x {scale.pause_factor:g} before each "
        f"send; send returned (signal durable) after "
        f"{statistics.median(sig.to_ack) * 1e3:.3f} ms median; p90 "
        f"{quantile(sig.to_result, 0.9) * 1e3:.2f} ms; ms run by run: "
        f"{ms_list(sig.to_result)}.",
        recovery_note(results.recovery, scale.recovery_runs),
        "fsync probe: " + json.dumps(seq.probe) + " (LMDB also writes its meta page "
        "through an O_DSYNC descriptor, which strace does not count as a sync call).",
    ]
    if results.active is not None:
        notes.append(f"active runs: {json.dumps(results.active)}")
    if results.reopened is not None:
        notes.append(f"reopened runs: {json.dumps(results.reopened)}")
    if peers is not None:
        notes.append(f"peers read from {peers.source}:")
        notes += [
            f"  {tag}: "
            + ", ".join(
                f"{m} {v * 1e3:.3f} ms"
                if m not in ("w2_steps_per_s", "fsync_per_step")
                else f"{m} {v:.2f}"
                for m, v in figures.items()
            )
            for tag, figures in sorted(peers.figures.items())
        ]
    return notes


def recovery_note(recovered: Sequence[dict[str, float]], runs: int) -> str:
    """How W4 was measured (``recovery``), and its phases round by round."""
    phases = "; ".join(
        ", ".join(f"{k} {v * 1e3:.0f}" for k, v in r.items()) for r in recovered
    )
    return (
        f"W4: a child process spawns {runs} runs (one step appending the run id to "
        "a side file, then ctx.receive) and is SIGKILLed once every step's outcome "
        "is durable; t0 just before a new process is spawned, this process then "
        "sends one signal per run through a Client (as `chronik signal` does: the "
        "journal's operator inbox, then a wake of the run's owner), the new process "
        "opens the journal (resuming the runs), takes the signals from the inbox "
        "and stamps t1 at its last result; the new process imports from bytecode "
        "written beforehand (as from an installed package: pip compiles at "
        "install). Checked: all results right, each step ran exactly once. Median "
        f"of {len(recovered)} round(s); ms from t0 (open: the new process's open "
        "returned; took_over: it drives every run; first_done: the first result), "
        f"round by round: {phases}."
    )


def quantile(samples: Sequence[float], q: float) -> float:
    """As the peers' ``pct``: linear between the closest ranks."""
    xs = sorted(samples)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def hosts_benchmark(root: Path, *, quick: bool) -> tuple[list[Row], list[str]]:
    """The rows and notes of ``benchmarks/hosts.py`` (W5), at its sizes."""
    # Run as a script this module is __main__: benchmarks.hosts, which imports
    # benchmarks.workflows, must get this module, not run a second copy of it.
    sys.modules.setdefault("benchmarks.workflows", sys.modules[__name__])
    from benchmarks import hosts

    return hosts.measure(root, hosts.scale_from(quick))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--rounds", type=int, help="W2 and W4 rounds (median taken)")
    parser.add_argument("--concurrent-runs", type=int, help="W2 runs")
    parser.add_argument("--recovery-runs", type=int, help="W4 runs")
    parser.add_argument("--async-runs", type=int, help="runs of one async step")
    parser.add_argument(
        "--active-runs", type=int, help="runs waiting at once, idle_timeout=None"
    )
    parser.add_argument("--reopen-runs", type=int, help="waiting runs reopened")
    parser.add_argument(
        "--big",
        action="store_true",
        help=f"--active-runs {BIG['active_runs']} --reopen-runs {BIG['reopen_runs']}"
        " (minutes)",
    )
    parser.add_argument(
        "--build-reopen",
        type=Path,
        metavar="DIR",
        help="only build a journal of --reopen-runs (default 100,000) waiting runs "
        "in DIR, for --reopen-journal, and exit",
    )
    parser.add_argument(
        "--reopen-journal",
        type=Path,
        metavar="DIR",
        help="reopen a copy of this journal (built by --build-reopen with the same "
        "code and --reopen-runs) instead of building one in the run",
    )
    parser.add_argument(
        "--peers",
        type=Path,
        help="a directory of the peer harness's results ($RESULTS_BASE: runN/"
        "<peer>.json), measured in the same sitting",
    )
    parser.add_argument(
        "--json", type=Path, help="also write the rows and raw figures here"
    )
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
    parser.add_argument(
        "--hosts",
        action="store_true",
        help="also run benchmarks/hosts.py (W5: several hosts of one journal) and "
        "append its rows",
    )
    return parser.parse_args(argv)


def scale_from(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else DEFAULT
    if args.big:
        scale = attrs.evolve(scale, **BIG)
    overrides = {
        "rounds": args.rounds,
        "concurrent_runs": args.concurrent_runs,
        "recovery_runs": args.recovery_runs,
        "async_runs": args.async_runs,
        "active_runs": args.active_runs,
        "reopen_runs": args.reopen_runs,
    }
    return attrs.evolve(scale, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_from(args)
    if args.build_reopen is not None:
        runs = scale.reopen_runs or BIG["reopen_runs"]
        print(json.dumps(scale_child("build", args.build_reopen, runs)))
        return 0
    if args.reopen_journal is not None and not scale.reopen_runs:
        scale = attrs.evolve(scale, reopen_runs=BIG["reopen_runs"])
    peers = None if args.peers is None else read_peers(args.peers)
    root = Path(tempfile.mkdtemp(prefix=".bench-workflows-", dir=args.tmp_dir))
    host_notes: list[str] = []
    try:
        print("\n".join(machine_info(root)), end="\n\n", flush=True)
        results = run(root, scale, peers, args.reopen_journal)
        if args.hosts:
            host_rows, host_notes = hosts_benchmark(root, quick=args.quick)
            results = attrs.evolve(results, rows=[*results.rows, *host_rows])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(table(results.rows)))
    print()
    print("\n".join(f"* {note}" for note in footnotes(results, scale, peers)))
    print("\n".join(f"* {note}" for note in host_notes), end="\n" if host_notes else "")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "code": str(Path(actors.__file__).resolve().parent.parent),
                    "rows": [
                        {
                            "measurement": row.measurement,
                            "chronik": row.chronik,
                            "unit": row.unit,
                            "reference": row.reference,
                            "reference_name": row.reference_name,
                            "ratio": row.ratio,
                            "target": None if row.target is None else str(row.target),
                            "met": row.met,
                        }
                        for row in results.rows
                    ],
                    "active": results.active,
                    "reopened": results.reopened,
                    "probe": results.sequential.probe,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    missed = [row.measurement for row in results.rows if row.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
