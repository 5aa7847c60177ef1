"""``chronik run``, ``signal`` and ``cancel``, each in a process of its own.

The host is ``chronik run tests/cli_ops/hosted.py``; signals and cancels reach
its runs only through the journal's operator inbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import ActorSystem, export_history
from actors._hostlock import host_is_live
from actors._inbox import INBOX_ID
from aggregates import (
    Cancelled,
    CommandKind,
    Completed,
    Failed,
    RunEvent,
    SignalReceived,
)
from journal import JournalReader
from tests.cli_ops.hosted import finish_at_once, wait_for_approval

pytestmark = pytest.mark.multiprocess

CHRONIK = Path(sys.executable).parent / "chronik"
ROOT = Path(__file__).resolve().parents[2]
HOSTED = "tests/cli_ops/hosted.py"
DEADLINE = 20.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
    env.update(extra)
    return env


def chronik(journal: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHRONIK), "-j", journal, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


class Host:
    """``chronik run`` in a subprocess, started once its banner is printed."""

    def __init__(
        self,
        journal: str,
        module: str = HOSTED,
        spawn: str = "",
        options: tuple[str, ...] = (),
    ) -> None:
        self.process = subprocess.Popen(
            [str(CHRONIK), "-j", journal, "run", module, *options],
            cwd=ROOT,
            env=_env(CHRONIK_TEST_SPAWN=spawn),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(DEADLINE, self.process.kill)
        watchdog.start()
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        watchdog.cancel()
        assert self.banner.startswith("chronik: hosting"), self.stop()

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, out, err


@pytest.fixture
def journal(journal_location: str) -> str:
    """A fresh journal on each backend: ``chronik run`` hosts either."""
    return journal_location


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    started: list[Host] = []
    yield started
    for host in started:  # a failed test leaves no process behind
        if host.process.poll() is None:
            host.process.kill()
            host.process.communicate()


def spawn_waiting(journal: str, *run_ids: str) -> None:
    """Start runs of ``wait_for_approval`` and leave them waiting for a signal."""
    with ActorSystem.open(journal) as system:
        for run_id in run_ids:
            system.spawn(wait_for_approval, run_id, id=run_id)
        deadline = time.monotonic() + DEADLINE
        while not all(_waiting(system, run_id) for run_id in run_ids):
            assert time.monotonic() < deadline
            time.sleep(0.01)


def _waiting(system: ActorSystem, run_id: str) -> bool:
    commands = system.history(run_id).open_commands
    return any(record.kind is CommandKind.RECEIVE for record in commands)


def wait_for_end(journal: str, run_id: str) -> RunEvent:
    deadline = time.monotonic() + DEADLINE
    while True:
        last = export_history(journal, run_id).events[-1]
        if isinstance(last, Completed | Failed | Cancelled):
            return last
        assert time.monotonic() < deadline, f"{run_id} did not end: {last}"
        time.sleep(0.05)


def test_a_signal_from_another_process_completes_the_hosted_run(
    journal: str, hosts: list[Host]
) -> None:
    hosts.append(host := Host(journal, spawn="order-1"))

    sent = chronik(journal, "signal", "order-1", "approval", '{"approved": true}')

    assert (sent.returncode, sent.stderr) == (0, "")
    assert sent.stdout.startswith("delivered signal 'approval'")
    end = wait_for_end(journal, "order-1")
    assert isinstance(end, Completed)
    assert end.result == {
        "order": "order-1",
        "ticket": "ticket-order-1",
        "decision": {"approved": True},
    }
    code, out, _ = host.stop(signal.SIGTERM)
    assert code == 0
    assert "stopped" in out


def test_a_signal_queued_while_no_host_runs_is_delivered_when_a_host_starts(
    journal: str, hosts: list[Host]
) -> None:
    spawn_waiting(journal, "order-2")

    sent = chronik(journal, "signal", "order-2", "approval", '"yes"')
    assert sent.returncode == 0
    assert sent.stdout.startswith("queued signal 'approval'")
    assert "chronik run" in sent.stdout
    hosts.append(host := Host(journal))

    assert "1 unfinished run resumed" in host.banner
    end = wait_for_end(journal, "order-2")
    assert isinstance(end, Completed)
    assert end.result["decision"] == "yes"
    assert host.stop()[0] == 0


def test_one_request_delivered_by_two_hosts_is_recorded_once(
    journal: str, hosts: list[Host]
) -> None:
    spawn_waiting(journal, "order-3")
    hosts.append(Host(journal, HOSTED))
    hosts.append(Host(journal, "tests.cli_ops.hosted"))

    sent = chronik(journal, "signal", "order-3", "approval", "7", "--id", "sig-3")

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("delivered")
    assert isinstance(wait_for_end(journal, "order-3"), Completed)
    received = [
        event
        for event in export_history(journal, "order-3").events
        if isinstance(event, SignalReceived)
    ]
    assert [event.signal_id for event in received] == ["sig-3"]
    assert [host.stop()[0] for host in hosts] == [0, 0]
    again = chronik(journal, "signal", "order-3", "approval", "7", "--id", "sig-3")
    assert again.returncode == 0
    assert "already delivered" in again.stdout


def test_cancel_cancels_a_waiting_run(journal: str, hosts: list[Host]) -> None:
    spawn_waiting(journal, "order-4")
    hosts.append(host := Host(journal))

    done = chronik(journal, "cancel", "order-4", "--reason", "customer left")

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("delivered cancel of run order-4")
    end = wait_for_end(journal, "order-4")
    assert isinstance(end, Cancelled)
    assert end.reason == "customer left"
    assert host.stop()[0] == 0
    again = chronik(journal, "cancel", "order-4")
    assert again.returncode == 0
    assert "already had a cancel request; it is cancelled" in again.stdout


def test_sigint_stops_the_host_with_exit_0_and_its_run_resumes_in_the_next_host(
    journal: str, hosts: list[Host]
) -> None:
    hosts.append(first := Host(journal, spawn="order-6"))
    code, out, err = first.stop(signal.SIGINT)
    assert code == 0, err
    assert "stopped; unfinished runs resume" in out

    hosts.append(second := Host(journal))
    assert "1 unfinished run resumed" in second.banner
    sent = chronik(journal, "signal", "order-6", "approval", "true")
    assert sent.stdout.startswith("delivered"), sent.stderr
    assert wait_for_end(journal, "order-6").result["decision"] is True
    assert second.stop()[0] == 0


def test_a_host_killed_and_restarted_under_its_name_takes_its_runs_back_at_once(
    journal: str, hosts: list[Host]
) -> None:
    """On PostgreSQL nothing else tells that a host died: a new host of no name
    would wait for the killed one's leases (5 s); under the same name it takes
    them at its open."""
    named = ("--host-name", "worker-1")
    hosts.append(first := Host(journal, spawn="order-7", options=named))
    first.process.kill()
    first.process.communicate()
    started = time.monotonic()
    hosts.append(second := Host(journal, options=named))
    sent = chronik(journal, "signal", "order-7", "approval", "true")
    assert sent.stdout.startswith("delivered"), sent.stderr
    assert wait_for_end(journal, "order-7").result["decision"] is True
    assert time.monotonic() - started < 4.0  # the leases' 5 s were not waited for
    assert second.stop()[0] == 0


def test_a_bad_host_name_is_bad_usage_and_touches_no_journal(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal")
    done = chronik(journal, "run", HOSTED, "--host-name", "a#b")
    assert done.returncode == 2
    assert "host_name" in done.stderr
    assert not os.path.exists(journal)


@pytest.fixture(scope="module")
def usage_journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("usage") / "journal")
    spawn_waiting(path, "waiting")
    with ActorSystem.open(path) as system:
        assert system.spawn(finish_at_once, 5, id="done").result(timeout=10) == 5
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["signal", "nope", "approval", "1"], "no run 'nope'", id="unknown-run"
        ),
        pytest.param(
            ["signal", "waiting", "approval", '{"a": }'],
            "is not JSON: Expecting value at line 1 column 7",
            id="bad-json",
        ),
        pytest.param(
            ["signal", "done", "approval", "1"],
            "run 'done' has finished (completed) and takes no signals",
            id="finished-run",
        ),
        pytest.param(
            ["cancel", "done"],
            "run 'done' has finished (completed) and cannot be cancelled",
            id="cancel-finished-run",
        ),
        pytest.param(
            ["run", "tests.cli_ops.no_such_module"],
            "no module named 'tests.cli_ops.no_such_module'",
            id="missing-module",
        ),
        pytest.param(
            ["run", "tests/cli_ops/no_such_file.py"],
            "is not a .py file",
            id="missing-file",
        ),
        pytest.param(
            ["-j", "no/such/journal", "signal", "waiting", "approval", "1"],
            "holds no journal",
            id="not-a-journal",
        ),
    ],
)
def test_bad_usage_exits_2_with_a_one_line_error_and_queues_nothing(
    usage_journal: str, args: list[str], expected: str
) -> None:
    done = chronik(usage_journal, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("chronik: error: ")
    assert expected in done.stderr
    with JournalReader(usage_journal) as reader:
        assert list(reader.stream(INBOX_ID)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "raise RuntimeError('boom')\n",
            "importing {file} failed: RuntimeError: boom",
            id="import-fails",
        ),
        pytest.param(
            "def configure(system):\n    raise ValueError('no config')\n",
            "broken.configure(system) raised ValueError: no config",
            id="configure-fails",
        ),
    ],
)
def test_a_module_that_fails_exits_2_naming_the_error(
    tmp_path: Path, source: str, expected: str
) -> None:
    file = tmp_path / "code" / "broken.py"  # outside the current directory
    file.parent.mkdir()
    file.write_text(source)
    journal = str(tmp_path / "journal")

    done = chronik(journal, "run", str(file))

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert expected.format(file=file) in done.stderr
    assert not host_is_live(journal)
