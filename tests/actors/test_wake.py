"""Waking one host (``actors._wake``): a request wakes the host that drives its
run, not every host; a gone host is no error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors import ActorSystem, WorkflowContext, workflow
from actors._hostlock import host_is_present
from actors._wake import WakeChannel, wake_all, wake_host, wake_owner


def test_a_wake_reaches_only_the_host_named_and_many_wakes_make_one(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path)
    a = WakeChannel.listen(journal, "host-a")
    b = WakeChannel.listen(journal, "host-b")
    try:
        assert not a.wait(0.01)
        for _ in range(5):
            assert wake_host(journal, "host-a")
        assert a.wait(1.0)
        assert not a.wait(0.01)  # the five were consumed in one round
        assert not b.wait(0.01)
        wake_owner(journal, "host-b")
        assert b.wait(1.0)
        assert not a.wait(0.01)
        wake_owner(journal, None)  # no live owner: every host looks
        assert a.wait(1.0)
        assert b.wait(1.0)
        assert wake_all(journal) == 2
    finally:
        a.close()
        b.close()
    assert not wake_host(journal, "host-a")  # gone: nothing to do, no error
    assert wake_all(journal) == 0
    assert os.listdir(os.path.join(journal, "chronik-hosts")) == []


def test_a_pipe_that_nobody_reads_any_more_is_no_error(tmp_path: Path) -> None:
    journal = str(tmp_path)
    os.makedirs(tmp_path / "chronik-hosts")
    os.mkfifo(tmp_path / "chronik-hosts" / "dead.wake")  # its host was killed
    assert not wake_host(journal, "dead")
    a = WakeChannel.listen(journal, "dead")  # a host of that id replaces it
    try:
        assert wake_host(journal, "dead")
        assert a.wait(1.0)
    finally:
        a.close()


def test_a_full_pipe_means_a_wake_is_pending(tmp_path: Path) -> None:
    journal = str(tmp_path)
    a = WakeChannel.listen(journal, "busy")
    try:
        for _ in range(70_000):  # more than a pipe holds: never blocks
            wake_host(journal, "busy")
        assert a.wait(1.0)
        assert not a.wait(0.01)
    finally:
        a.close()


@workflow(name="tests.wake.wait_go")
async def wait_go(ctx: WorkflowContext) -> object:
    return await ctx.receive("go")


def test_a_run_started_and_signalled_through_another_host_ends_without_waiting_for_a_lease_round(  # noqa: E501
    path: str,
) -> None:
    # Lease rounds every 20 s: only the wakes can make this quick.
    with (
        ActorSystem.open(path, lease_ttl=60) as a,
        ActorSystem.open(path, lease_ttl=60) as b,
    ):
        # b joined after a took every partition; a gives back half at its
        # next round only, so hand them over now, as that round would.
        a._lease_round()
        b._lease_round()
        run_id = next(f"go-{i}" for i in range(100) if b.drives(f"go-{i}"))
        started = time.monotonic()
        ref = a.spawn(wait_go, id=run_id)  # b drives it: woken to start it
        ref.send("go", "now")  # queued for b, which is woken to deliver it
        assert ref.result(timeout=5) == "now"
        assert time.monotonic() - started < 3.0


_HOST = (
    "import sys, time; from actors import ActorSystem; "
    "s = ActorSystem.open(sys.argv[1]); print('READY', flush=True); time.sleep(60)"
)


@pytest.mark.multiprocess
def test_the_files_of_a_killed_host_are_swept_by_the_next_host_and_a_live_hosts_kept(
    path: str,
) -> None:
    hosts = os.path.join(path, "chronik-hosts")
    killed = subprocess.Popen(
        [sys.executable, "-c", _HOST, path], stdout=subprocess.PIPE, text=True
    )
    live = subprocess.Popen(
        [sys.executable, "-c", _HOST, path], stdout=subprocess.PIPE, text=True
    )
    try:
        for child in (killed, live):
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "READY"
        before = set(os.listdir(hosts))
        assert len(before) == 4  # a presence lock and a wake pipe each
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert set(os.listdir(hosts)) == before  # nobody cleaned up after it
        with ActorSystem.open(path):
            mine = {name for name in os.listdir(hosts) if name not in before}
            assert len(mine) == 2  # this host's own
            left = set(os.listdir(hosts)) - mine
            assert len(left) == 2  # the live host's, kept
        assert live.poll() is None  # still running, its files in place
        assert set(os.listdir(hosts)) == left
    finally:
        for child in (killed, live):
            if child.poll() is None:
                child.kill()
            child.wait()


def test_a_host_whose_presence_file_was_removed_makes_it_again_and_stays_present(
    path: str,
) -> None:
    with ActorSystem.open(path, lease_ttl=0.6) as system:
        hosts = os.path.join(path, "chronik-hosts")
        (lock,) = [n for n in os.listdir(hosts) if n.endswith(".lock")]
        os.unlink(os.path.join(hosts, lock))  # by hand, or a racing sweeper
        deadline = time.monotonic() + 5
        while lock not in os.listdir(hosts):  # made again at the next round
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert system.stats().partitions_held == 64
        host = system._ownership.host_id
        assert host_is_present(path, host)
