"""``Client``: a process that reaches the runs of a journal without driving
any: start, signal, cancel, query, status, result, list and history."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors import (
    ActorSystem,
    Client,
    RunCancelledError,
    RunConflictError,
    RunStatus,
    UnknownRunError,
    WorkflowContext,
    activity,
    workflow,
)
from aggregates import RunFinishedError
from journal import JournalPathError, UnencodableValueError

_executed: Counter[str] = Counter()
_lock = threading.Lock()


@activity(name="tests.client.double")
def double(x: int) -> int:
    with _lock:
        _executed[activity.info().idempotency_key] += 1
    return x * 2


@workflow(name="tests.client.collect")
async def collect(ctx: WorkflowContext, start: int) -> list[object]:
    seen: list[object] = [await ctx.call(double, start)]
    ctx.set_query("seen", lambda: list(seen))
    while (item := await ctx.receive("item")) is not None:
        seen.append(item)
    return seen


@pytest.fixture(autouse=True)
def _reset() -> None:
    _executed.clear()


def _log_end(host: ActorSystem) -> int:
    """The position of the journal's last event, read through ``host``."""
    return host._app.recorder.max_notification_id() or 0


def test_a_client_starts_signals_queries_and_waits_for_a_run_a_host_drives(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location) as host, Client(journal_location) as client:
        assert client.start("tests.client.collect", 4, id="c-1") is RunStatus.RUNNING
        # Idempotent by id; a name or the definition, the same run.
        assert client.start(collect, 4, id="c-1") is RunStatus.RUNNING
        first = client.signal("c-1", "item", "a", signal_id="s-1")
        assert first == "s-1"
        assert client.signal("c-1", "item", "a", signal_id="s-1") == "s-1"  # no-op
        client.signal("c-1", "item", {"b": [1, 2]})
        host.ref("c-1")  # the host knows it
        deadline = time.monotonic() + 5
        while len(client.history("c-1").signal_ids) < 2:  # the host records them
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.query("c-1", "seen") == [8, "a", {"b": [1, 2]}]  # replayed here
        assert client.status("c-1") is RunStatus.RUNNING
        client.signal("c-1", "item", None)
        assert client.result("c-1", timeout=10) == [8, "a", {"b": [1, 2]}]
        assert client.status("c-1") is RunStatus.COMPLETED
        assert host.ref("c-1").result(timeout=5) == [8, "a", {"b": [1, 2]}]
        assert client.history("c-1").signal_ids >= {"s-1"}
        assert len(client.history("c-1").signal_ids) == 3  # s-1 recorded once
    assert _executed == Counter({"c-1/1": 1})


def test_a_client_drives_nothing_a_run_it_starts_waits_for_a_host(
    journal_location: str,
) -> None:
    ActorSystem.open(journal_location).close()  # the journal exists, no host is open
    with Client(journal_location) as client:
        client.start(collect, 1, id="c-2")
        client.signal("c-2", "item", None)
        with pytest.raises(TimeoutError):
            client.result("c-2", timeout=0.3)
        assert client.status("c-2") is RunStatus.RUNNING
        assert _executed == Counter()  # nothing ran in the client
        with ActorSystem.open(journal_location):
            assert client.result("c-2", timeout=10) == [2]


def test_a_client_cancels_and_the_result_says_so(journal_location: str) -> None:
    with ActorSystem.open(journal_location), Client(journal_location) as client:
        client.start(collect, 1, id="c-3")
        client.cancel("c-3", "no longer wanted")
        client.cancel("c-3")  # again: a no-op
        with pytest.raises(RunCancelledError, match="no longer wanted"):
            client.result("c-3", timeout=10)
        client.cancel("c-3")  # after the end too: it was asked for
        client.start(collect, 1, id="c-3b")
        client.signal("c-3b", "item", None)
        client.result("c-3b", timeout=10)
        with pytest.raises(RunFinishedError, match="be cancelled"):
            client.cancel("c-3b")


def test_bad_requests_get_clear_errors_and_write_nothing(journal_location: str) -> None:
    with ActorSystem.open(journal_location) as host, Client(journal_location) as client:
        client.start(collect, 1, id="c-4")
        client.signal("c-4", "item", None)
        assert client.result("c-4", timeout=10) == [2]
        before = _log_end(host)
        with pytest.raises(RunConflictError, match="idempotency key"):
            client.start(collect, 2, id="c-4")
        with pytest.raises(UnknownRunError, match="'nope'"):
            client.signal("nope", "item", 1)
        with pytest.raises(UnknownRunError):
            client.cancel("nope")
        with pytest.raises(RunFinishedError, match="take signals"):
            client.signal("c-4", "item", 1)
        with pytest.raises(UnencodableValueError):
            client.signal("c-4", "item", object())
        with pytest.raises(TypeError, match="topic"):
            client.signal("c-4", "", 1)
        with pytest.raises(UnencodableValueError):
            client.start(collect, object(), id="c-5")
        with pytest.raises(ValueError, match="limit"):
            client.list(limit=-1)
        assert _log_end(host) == before


def test_a_client_on_a_path_with_no_journal_is_refused_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nothing-here"
    with pytest.raises(JournalPathError):
        Client(missing)
    assert not missing.exists()


def test_a_client_lists_runs_and_their_events_with_filters(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location), Client(journal_location) as client:
        before = datetime.now(UTC)
        for i in range(5):
            client.start(collect, i, id=f"l-{i}")
        for i in range(3):
            client.signal(f"l-{i}", "item", None)
        for i in range(3):
            client.result(f"l-{i}", timeout=10)
        everything = client.list()
        assert [r.workflow_id for r in everything] == [f"l-{i}" for i in range(5)]
        done = client.list(status="completed")
        assert [r.workflow_id for r in done] == ["l-0", "l-1", "l-2"]
        assert [r.workflow_id for r in client.list(limit=2)] == ["l-0", "l-1"]
        assert client.list(workflow="tests.client.other") == []
        assert len(client.list(workflow="tests.client.collect", since=before)) == 5
        assert client.list(until=before) == []
        events = client.events("l-0")
        assert type(events[0]).__name__ == "Started"
        assert type(events[-1]).__name__ == "Completed"
        assert client.events("l-0", limit=1) == events[:1]
        assert client.events("l-0", since=events[-1].timestamp) == events[-1:]
        with pytest.raises(UnknownRunError):
            client.events("nope")


def test_a_stream_that_is_not_a_run_is_no_run_to_the_client(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location), Client(journal_location) as client:
        client.start(collect, 1, id="c-6")
        client.signal("c-6", "item", None)  # the operator inbox has a stream now
        client.result("c-6", timeout=10)
        for stream in ("chronik:operator-requests", "chronik:unfinished-runs"):
            with pytest.raises(UnknownRunError):
                client.history(stream)
            with pytest.raises(UnknownRunError):
                client.signal(stream, "item", 1)
