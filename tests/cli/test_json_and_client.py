"""``--json`` on every read command, the filters of ``chronik list``, and
``chronik signal``/``cancel`` going through ``actors.Client`` to a host that is
an ``ActorSystem`` open in this test process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors import ActorSystem, Audit, ManualClock, RunCancelledError
from actors._inbox import INBOX_ID, OperatorRequest
from aggregates import Cancelled
from tests.cli import _flows as flows
from tests.cli.conftest import chronik
from tests.replay._support import last_notification, wait_for

pytestmark = pytest.mark.multiprocess  # each test runs the console script

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


def ids(runs: list[dict[str, Any]]) -> list[str]:
    return [run["workflow_id"] for run in runs]


def list_json(path: Path, *args: str) -> list[dict[str, Any]]:
    done = chronik("-j", path, "list", *args, "--json")
    assert done.code == 0, done
    runs: list[dict[str, Any]] = done.json()
    return runs


@pytest.fixture(scope="module")
def calendar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs started a day apart: ``fee-1`` on 1 January 2026 (UTC), ``fee-2``
    on the 2nd, ``tick-3`` and ``broken-3`` (failed) on the 3rd."""
    path = tmp_path_factory.mktemp("calendar") / "journal"
    clock = ManualClock(JAN_1)
    with ActorSystem.open(path, clock=clock, idle_timeout=None) as system:
        system.spawn(flows.fee, 1, id="fee-1").result(timeout=10)
        clock.advance(timedelta(days=1))
        system.spawn(flows.fee, 2, id="fee-2").result(timeout=10)
        clock.advance(timedelta(days=1))
        system.spawn(flows.ticker, 2, id="tick-3").result(timeout=10)
        with pytest.raises(Exception, match="failed"):
            system.spawn(flows.broken, "no stock", id="broken-3").result(timeout=10)
    return path


# -- --json on every read command -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("show", "order-1"),
        ("history", "order-1"),
        ("state", "order-1"),
        ("export",),
        ("verify", "-m", "tests.cli._flows"),
        ("stats",),
    ],
)
def test_every_read_command_prints_one_json_document_with_json(
    shop: Path, args: tuple[str, ...]
) -> None:
    done = chronik("-j", shop, *args, "--json")
    assert (done.code, done.err) == (0, ""), done
    json.loads(done.out)


def test_list_json_gives_each_run_with_iso_times_and_status_values(
    shop: Path,
) -> None:
    runs = {run["workflow_id"]: run for run in list_json(shop)}
    assert list(runs) == ["order-1", "order-2", "broken-1", "fee-1"]
    assert runs["order-2"] == {
        "workflow_id": "order-2",
        "workflow": "tests.cli.order",
        "status": "running",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": None,
        "version": 5,
        "parent_id": None,
    }
    assert runs["broken-1"]["status"] == "failed"
    assert datetime.fromisoformat(runs["order-1"]["ended_at"]) == JAN_1
    assert runs["order-1"]["version"] == 10


def test_show_json_holds_the_run_its_commands_and_when_it_ended(shop: Path) -> None:
    done = chronik("-j", shop, "show", "order-1", "--json")
    assert done.code == 0, done
    run = done.json()
    assert (run["workflow_id"], run["workflow"]) == ("order-1", "tests.cli.order")
    assert (run["status"], run["version"], run["args"]) == (
        "completed",
        10,
        ["o-1", 120],
    )
    assert run["result"] == {
        "reservation": "res-o-1",
        "charge": "ch-o-1",
        "approved_by": "ann",
        "at": "2026-01-01T00:00:00+00:00",  # a datetime in the result, plain
    }
    assert run["ended_at"] == "2026-01-01T00:00:00+00:00"
    commands = run["commands"]
    assert [c["command"]["kind"] for c in commands] == [
        "step",
        "value",
        "receive",
        "step",
    ]
    assert commands[0]["outcome"]["kind"] == "completed"
    assert commands[0]["outcome"]["value"] == "res-o-1"


def test_show_json_of_a_waiting_run_has_no_end_and_an_open_receive(
    shop: Path,
) -> None:
    run = chronik("-j", shop, "show", "order-2", "--json").json()
    assert (run["status"], run["ended_at"], run["result"]) == ("running", None, None)
    receive = run["commands"][-1]
    assert receive["command"] == {"kind": "receive", "name": "approval"}
    assert receive["outcome"] is None


def test_show_json_of_a_failed_run_gives_its_error(shop: Path) -> None:
    run = chronik("-j", shop, "show", "broken-1", "--json").json()
    assert run["status"] == "failed"
    assert run["error"]["type"] == "StepFailed"  # the step's ValueError, uncaught
    assert "ValueError: no stock" in run["error"]["message"]
    (step,) = run["commands"]
    assert step["outcome"]["error"]["type"] == "ValueError"
    assert step["outcome"]["error"]["message"] == "no stock"


def test_history_and_state_json_keep_their_exact_tagged_documents(
    shop: Path,
) -> None:
    history = chronik("-j", shop, "history", "order-1", "--json").json()
    assert history["format"] == "chronik-history/1"
    assert [event["version"] for event in history["events"]] == list(range(1, 11))
    state = chronik("-j", shop, "state", "order-1", "--json").json()
    assert state["started_at"] == {"$datetime": "2026-01-01T00:00:00+00:00"}
    assert (state["version"], state["last_version"]) == (10, 10)


def test_export_json_is_one_array_of_what_the_json_lines_hold(shop: Path) -> None:
    lines = chronik("-j", shop, "export", "--from", "2", "--to", "6")
    array = chronik("-j", shop, "export", "--from", "2", "--to", "6", "--json")
    assert lines.code == array.code == 0, (lines, array)
    expected = [json.loads(line) for line in lines.out.splitlines()]
    assert array.json() == expected
    assert [entry["position"] for entry in array.json()] == [2, 3, 4, 5, 6]


def test_export_json_past_the_end_of_the_log_is_an_empty_array(shop: Path) -> None:
    done = chronik("-j", shop, "export", "--from", "100000", "--json")
    assert done.code == 0, done
    assert done.json() == []


def test_stats_json_counts_the_runs_by_status(shop: Path) -> None:
    done = chronik("-j", shop, "stats", "--json")
    assert done.code == 0, done
    runs = done.json()["journal"]["runs"]
    assert runs == {
        "total": 4,
        "running": 1,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
    }


def test_verify_json_reports_the_chain_and_each_replayed_run(shop: Path) -> None:
    done = chronik("-j", shop, "verify", "-m", "tests.cli._flows", "--json")
    assert done.code == 0, done
    report = done.json()
    assert (report["ok"], report["problems"]) == (True, [])
    assert report["journal"]["ok"] is True
    assert report["journal"]["first_bad"] is None
    assert len(report["journal"]["head"]) == 64
    assert report["replay"]["runs"] == 4
    assert report["replay"]["counts"] == {"ok": 4, "non-deterministic": 0, "error": 0}


def test_verify_json_of_changed_code_names_the_run_and_still_exits_1(
    shop: Path,
) -> None:
    done = chronik("-j", shop, "verify", "-m", "tests.cli._flows_changed", "--json")
    assert done.code == 1, done
    assert "verification failed: 1 problem" in done.error_line()
    report = done.json()
    assert report["ok"] is False
    (failure,) = report["replay"]["failures"]
    assert failure["workflow_id"] == "fee-1"
    assert failure["status"] == "non-deterministic"
    assert "step 'charge'" in failure["error"]


# -- the filters of chronik list ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((), ["fee-1", "fee-2", "tick-3", "broken-3"], id="all"),
        pytest.param(("--workflow", "tests.cli.fee"), ["fee-1", "fee-2"], id="name"),
        pytest.param(("--workflow", "tests.cli.nothing"), [], id="no-such-name"),
        pytest.param(
            ("--since", "2026-01-02"), ["fee-2", "tick-3", "broken-3"], id="since"
        ),
        pytest.param(("--until", "2026-01-02T00:00:00Z"), ["fee-1"], id="until"),
        pytest.param(
            ("--since", "2026-01-02T01:00+01:00", "--until", "2026-01-03"),
            ["fee-2"],
            id="an-offset-and-a-day",
        ),
        pytest.param(("--limit", "2"), ["fee-1", "fee-2"], id="limit"),
        pytest.param(("--limit", "0"), [], id="limit-0"),
        pytest.param(
            ("--since", "2026-01-02", "--status", "completed", "--limit", "1"),
            ["fee-2"],
            id="combined",
        ),
        pytest.param(
            ("--status", "failed", "--workflow", "tests.cli.broken"),
            ["broken-3"],
            id="status-and-name",
        ),
    ],
)
def test_list_filters_by_status_workflow_start_time_and_count(
    calendar: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    assert ids(list_json(calendar, *args)) == expected


def test_list_filters_apply_to_the_table_too(calendar: Path) -> None:
    done = chronik("-j", calendar, "list", "--since", "2026-01-03", "--limit", "1")
    assert done.code == 0, done
    assert "tick-3" in done.out
    assert "fee-2" not in done.out
    assert "broken-3" not in done.out
    assert done.out.rstrip().endswith("1 run")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("--since", "yesterday"),
            "--since 'yesterday' is not an ISO 8601",
            id="since",
        ),
        pytest.param(
            ("--until", "2026-13-01"), "--until '2026-13-01' is not an ISO", id="until"
        ),
        pytest.param(("--limit", "-1"), "'--limit': -1 is not in the range", id="neg"),
        pytest.param(("--limit", "ten"), "'--limit': 'ten' is not a valid", id="text"),
        pytest.param(
            ("--since", "2026-01-03", "--until", "2026-01-02"),
            "--until 2026-01-02 is not after --since 2026-01-03",
            id="empty-range",
        ),
        pytest.param(("--status", "done"), "--status 'done' is not a run", id="status"),
    ],
)
def test_a_bad_list_filter_is_one_error_line_and_exit_2(
    calendar: Path, args: tuple[str, ...], expected: str
) -> None:
    done = chronik("-j", calendar, "list", *args, "--json")
    assert done.code == 2, done
    assert expected in done.error_line()
    assert done.out == ""


# -- signal and cancel through the client ---------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Path, ActorSystem]]:
    """A journal and the system hosting it, open in this process; ``order-1``
    waits for its approval, ``fee-1`` has completed."""
    path = tmp_path / "journal"
    with ActorSystem.open(path, idle_timeout=None) as system:
        system.spawn(flows.order, "o-1", 120, id="order-1")
        system.spawn(flows.fee, 5, id="fee-1").result(timeout=10)
        wait_for(lambda: system.history("order-1").next_seq == 4, timeout=10)
        yield path, system


def requests(path: Path) -> list[OperatorRequest]:
    with Audit(path) as audit:
        found = [entry.event for entry in audit.log() if entry.stream_id == INBOX_ID]
    typed = [request for request in found if isinstance(request, OperatorRequest)]
    assert typed == found
    return typed


def test_a_signal_through_the_client_reaches_a_host_open_in_this_process(
    host: tuple[Path, ActorSystem],
) -> None:
    path, system = host

    sent = chronik("-j", path, "signal", "order-1", "approval", '{"by": "cli"}')

    assert (sent.code, sent.err) == (0, ""), sent
    assert sent.out.startswith("delivered signal 'approval' (id ")
    assert system.ref("order-1").result(timeout=10)["approved_by"] == "cli"
    (request,) = requests(path)
    assert request.origin.startswith("chronik signal by ")  # who asked, from where


def test_a_signal_sent_again_by_its_id_is_not_sent_twice(
    host: tuple[Path, ActorSystem],
) -> None:
    path, system = host
    first = chronik(
        "-j", path, "signal", "order-1", "approval", '{"by": "a"}', "--id", "s-1"
    )
    assert first.out.startswith("delivered signal 'approval' (id s-1)"), first
    system.ref("order-1").result(timeout=10)

    again = chronik("-j", path, "signal", "order-1", "approval", "{}", "--id", "s-1")

    assert again.code == 0, again
    assert again.out == "signal s-1 was already delivered to run order-1\n"
    assert len(requests(path)) == 1


def test_a_cancel_through_the_client_reaches_a_host_open_in_this_process(
    host: tuple[Path, ActorSystem],
) -> None:
    path, system = host

    done = chronik("-j", path, "cancel", "order-1", "--reason", "customer left")

    assert (done.code, done.err) == (0, ""), done
    assert done.out == "delivered cancel of run order-1: it is cancelling\n"
    with pytest.raises(RunCancelledError):
        system.ref("order-1").result(timeout=10)
    with Audit(path) as audit:
        end = audit.history("order-1")[-1]
    assert isinstance(end, Cancelled)
    assert end.reason == "customer left"
    (request,) = requests(path)
    assert request.origin.startswith("chronik cancel by ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("signal", "nope", "approval", "1"),
            "no run 'nope' in the journal",
            id="signal-unknown",
        ),
        pytest.param(
            ("cancel", "nope"), "no run 'nope' in the journal", id="cancel-unknown"
        ),
        pytest.param(
            ("signal", "chronik:unfinished-runs", "approval", "1"),
            "no run 'chronik:unfinished-runs' in the journal",
            id="signal-not-a-run",
        ),
        pytest.param(
            ("signal", "fee-1", "approval", "1"),
            "run 'fee-1' has finished (completed) and takes no signals",
            id="signal-finished",
        ),
        pytest.param(
            ("cancel", "fee-1"),
            "run 'fee-1' has finished (completed) and cannot be cancelled",
            id="cancel-finished",
        ),
    ],
)
def test_signal_and_cancel_refuse_unknown_and_finished_runs_writing_nothing(
    host: tuple[Path, ActorSystem], args: tuple[str, ...], expected: str
) -> None:
    path, _ = host
    before = last_notification(str(path))

    done = chronik("-j", path, *args)

    assert done.code == 2, done
    assert expected in done.error_line()
    assert done.out == ""
    assert last_notification(str(path)) == before
    assert requests(path) == []
