"""Hosts of one journal (each ``ActorSystem.open`` on it): they split its runs
by partition leases, each step of a run is executed by one host, a crashed
host's runs finish on the others, and any host reaches any run."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from actors import ActorSystem, WorkflowContext, activity, workflow
from aggregates import RunStatus
from journal import PARTITIONS, Leases, partition_of
from tests.actors._ownership_support import as_crashed

TTL = 0.6
_executions: Counter[str] = Counter()
_lock = threading.Lock()


_tokens: dict[str, list[int | None]] = {}


@activity(name="tests.shared.work")
def work(host_hint: str, x: int) -> int:
    info = activity.info()
    with _lock:
        _executions[info.idempotency_key] += 1
        _tokens.setdefault(info.workflow_id, []).append(info.fencing_token)
    return x * 2


@workflow(name="tests.shared.two_steps")
async def two_steps(ctx: WorkflowContext, x: int) -> int:
    a = await ctx.call(work, "a", x)
    b = await ctx.call(work, "b", a)
    return int(b)


@workflow(name="tests.shared.nap_then_step")
async def nap_then_step(ctx: WorkflowContext, x: int) -> int:
    await ctx.sleep(0.4)
    return int(await ctx.call(work, "n", x))


@pytest.fixture(autouse=True)
def _reset() -> None:
    _executions.clear()
    _tokens.clear()


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not reached in time: {condition}"
        time.sleep(0.02)


def _held(system: ActorSystem) -> frozenset[int]:
    assert system._ownership is not None
    return system._ownership.held


def _settled(*systems: ActorSystem) -> Callable[[], bool]:
    class Settled:
        def __call__(self) -> bool:
            return settled()

        def __repr__(self) -> str:  # what the hosts hold, when it fails
            return f"partitions held {[len(_held(s)) for s in systems]}"

    def settled() -> bool:
        held = [_held(s) for s in systems]
        share = -(-PARTITIONS // len(systems))
        return sum(len(h) for h in held) == PARTITIONS and all(
            0 < len(h) <= share for h in held
        )

    return Settled()


def _completed(system: ActorSystem, ids: list[str]) -> Callable[[], bool]:
    return lambda: all(system.history(i).status is RunStatus.COMPLETED for i in ids)


def test_shared_hosts_split_the_runs_and_each_step_runs_once(path: str) -> None:
    with (
        ActorSystem.open(path, lease_ttl=TTL) as a,
        ActorSystem.open(path, lease_ttl=TTL) as b,
    ):
        _wait(_settled(a, b))
        assert not _held(a) & _held(b)
        ids = [f"split-{i}" for i in range(40)]
        for index, run_id in enumerate(ids):
            (a if index % 2 else b).spawn(two_steps, index, id=run_id)
        _wait(_completed(a, ids))
        results = [a.history(i).result for i in ids]
        owners = {partition_of(i) in _held(a) for i in ids}
        leases = Leases(a._app.recorder.journal).read()  # type: ignore[attr-defined]

    assert results == [4 * i for i in range(40)]
    assert owners == {True, False}  # both hosts drove runs
    assert len(_executions) == 80
    assert set(_executions.values()) == {1}  # each step key executed once
    # Each step saw the token of the lease its run's host held.
    assert {i: _tokens[i] for i in ids} == {
        i: [leases[partition_of(i)].token] * 2 for i in ids
    }


def test_a_crashed_hosts_runs_finish_on_the_host_still_alive(path: str) -> None:
    a = ActorSystem.open(path, lease_ttl=TTL)
    try:
        with ActorSystem.open(path, lease_ttl=TTL) as b:
            _wait(_settled(a, b))
            ids = [f"nap-{i}" for i in range(30)]
            for index, run_id in enumerate(ids):
                b.spawn(nap_then_step, index, id=run_id)
            orphaned = [i for i in ids if partition_of(i) in _held(a)]
            assert orphaned  # some runs are the crashing host's
            leases = Leases(a._app.recorder.journal)  # type: ignore[attr-defined]
            before = {p: lease.token for p, lease in leases.read().items()}
            as_crashed(a)  # a's process "dies": b takes its partitions at once
            _wait(lambda: _held(b) == frozenset(range(PARTITIONS)), timeout=5)
            taken = {p: lease.token for p, lease in leases.read().items()}
            _wait(_completed(b, ids))
            results = [b.history(i).result for i in ids]
    finally:
        a.close()

    assert results == [2 * i for i in range(30)]
    # A step may run twice only if the crashed host had it in flight; its
    # outcome is recorded once (the stale host's commit is fenced out).
    assert set(_executions) == {f"{i}/2" for i in ids}
    assert max(_executions.values()) <= 2
    # The runs taken over ran their step under the new owner's, larger token.
    # (The crashed host may have run one too, with its old token, before it
    # noticed: a store that checks the token refuses that one's write.)
    for run_id in orphaned:
        old, new = before[partition_of(run_id)], taken[partition_of(run_id)]
        assert new > old
        assert new in _tokens[run_id]
        assert set(_tokens[run_id]) <= {old, new}


@workflow(name="tests.shared.wait_go")
async def wait_go(ctx: WorkflowContext) -> object:
    return await ctx.receive("go")


def test_a_signal_to_a_run_another_host_drives_goes_through_the_journal(
    path: str,
) -> None:
    with (
        ActorSystem.open(path, lease_ttl=TTL) as a,
        ActorSystem.open(path, lease_ttl=TTL) as b,
    ):
        _wait(_settled(a, b))
        ids = [f"wait-{i}" for i in range(20)]
        refs = {run_id: a.spawn(wait_go, id=run_id) for run_id in ids}
        elsewhere = [i for i in ids if not a.drives(i)]
        assert elsewhere  # b drives these
        for index, run_id in enumerate(ids):
            signal_id = refs[run_id].send("go", index)  # durable when it returns
            assert signal_id
        _wait(_completed(a, ids))
        results = [a.history(i).result for i in ids]
        signals = [len(a.history(i).signal_ids) for i in ids]

    assert results == list(range(20))
    assert signals == [1] * 20  # each delivered once


@workflow(name="tests.shared.counting")
async def counting(ctx: WorkflowContext) -> int:
    seen: list[object] = []
    ctx.set_query("seen", lambda: list(seen))
    while (item := await ctx.receive("item")) is not None:
        seen.append(item)
    return len(seen)


def test_any_host_queries_a_run_another_drives_and_its_result_waits_for_the_end(
    path: str,
) -> None:
    with (
        ActorSystem.open(path, lease_ttl=TTL) as a,
        ActorSystem.open(path, lease_ttl=TTL) as b,
    ):
        _wait(_settled(a, b))
        run_id = next(f"count-{i}" for i in range(100) if b.drives(f"count-{i}"))
        ref = a.spawn(counting, id=run_id)  # started here, driven by b
        ref.send("item", "x")
        ref.send("item", "y")
        _wait(lambda: len(a.history(run_id).signal_ids) == 2)
        # Replayed read-only here from the journal: the state b has reached.
        assert ref.query("seen") == ["x", "y"]
        assert ref.status() is RunStatus.RUNNING
        assert a.live_runs == 0  # nothing of it is driven here
        ref.send("item", None)
        assert ref.result(timeout=10) == 2  # the end b recorded
        assert ref.status() is RunStatus.COMPLETED
        assert ref.query("seen") == ["x", "y"]
    assert _executions == Counter()  # no step: nothing to run twice


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf"), "5"])
def test_a_bad_lease_ttl_is_refused_before_anything_is_written(
    path: str, ttl: object
) -> None:
    with pytest.raises(ValueError, match="lease_ttl="):
        ActorSystem.open(path, lease_ttl=ttl)  # type: ignore[arg-type]
    assert not os.path.exists(path)


def test_two_hosts_spawning_at_once_run_each_step_once(path: str) -> None:
    """Found by the W5 duplicates benchmark: a wake or lease round that resumed
    a run between its spawn's commit and the spawn's own start made a second
    actor run its steps again."""
    with (
        ActorSystem.open(path, lease_ttl=TTL) as a,
        ActorSystem.open(path, lease_ttl=TTL) as b,
    ):
        _wait(_settled(a, b))

        def spawn_all(system: ActorSystem, prefix: str) -> None:
            for i in range(150):
                system.spawn(two_steps, i, id=f"{prefix}-{i}")

        threads = [
            threading.Thread(target=spawn_all, args=(s, p))
            for s, p in ((a, "ra"), (b, "rb"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [f"{p}-{i}" for p in ("ra", "rb") for i in range(150)]
        results = [a.ref(i).result(timeout=30) for i in ids]
    assert results == [i * 4 for i in range(150)] * 2
    assert len(_executions) == 600
    assert set(_executions.values()) == {1}


_gate = threading.Event()
_blocking_calls: list[int] = []


@activity(name="tests.shared.blocking_once")
def blocking_once(x: int) -> int:
    _blocking_calls.append(x)
    if len(_blocking_calls) == 1:
        _gate.wait(20)  # the first host's execution hangs: it "dies" mid-step
    return x + 1


@workflow(name="tests.shared.one_blocking_step")
async def one_blocking_step(ctx: WorkflowContext, x: int) -> int:
    return int(await ctx.call(blocking_once, x))


def test_a_host_resumes_a_run_it_spawned_for_another_host_when_it_takes_the_run_over(
    path: str,
) -> None:
    """Found by the multi-process harness: a host that held a handle of a run
    (it spawned it, another host drove it) skipped it when it took the run's
    partition over, and the run stayed unfinished."""
    _gate.clear()
    _blocking_calls.clear()
    a = ActorSystem.open(path, lease_ttl=TTL)
    b = ActorSystem.open(path, lease_ttl=TTL)
    try:
        _wait(_settled(a, b))
        run_id = next(f"r-{i}" for i in range(1000) if b.drives(f"r-{i}"))
        ref = a.spawn(one_blocking_step, 1, id=run_id)  # a keeps its handle
        _wait(lambda: len(_blocking_calls) == 1)  # b runs the step, and hangs
        as_crashed(b)
        _wait(lambda: a.drives(run_id))
        assert ref.result(timeout=10) == 2  # a ran the step again and ended it
        assert len(_blocking_calls) == 2
    finally:
        _gate.set()
        b.close()
        a.close()


@workflow(name="tests.shared.step_wait_step")
async def step_wait_step(ctx: WorkflowContext, x: int) -> list[object]:
    first = await ctx.call(work, "s", x)
    go = await ctx.receive("go")
    return [first, go, await ctx.call(work, "t", first)]


def test_a_host_that_takes_over_a_waiting_run_it_spawned_replays_it_as_it_is_now(
    path: str,
) -> None:
    """Found on PostgreSQL: a host kept the state it read when it spawned a run
    another host drove; taking the run over, a signal activated it from that
    stale state and its first step ran again."""
    a = ActorSystem.open(path, lease_ttl=TTL)
    b = ActorSystem.open(path, lease_ttl=TTL)
    try:
        _wait(_settled(a, b))
        run_id = next(f"w-{i}" for i in range(1000) if b.drives(f"w-{i}"))
        ref = a.spawn(step_wait_step, 5, id=run_id)  # a keeps its handle
        _wait(lambda: len(a.history(run_id).commands) == 2)  # b ran it, waits
        as_crashed(b)
        _wait(lambda: a.drives(run_id))
        ref.send("go", "on")
        assert ref.result(timeout=10) == [10, "on", 20]
    finally:
        b.close()
        a.close()
    assert _executions[f"{run_id}/1"] == 1
