"""``chronik list, show, history, state, export`` on journals the examples made,
run as the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journal import JournalReader
from tests.cli.conftest import chronik

pytestmark = pytest.mark.multiprocess  # each test runs the console script


def rows(out: str) -> list[list[str]]:
    """The table rows of a command's output, split into cells."""
    return [line.split() for line in out.splitlines() if line.strip()]


def test_list_shows_every_run_of_the_order_saga_in_start_order(
    order_saga: Path,
) -> None:
    done = chronik("-j", order_saga, "list")
    assert done.code == 0, done
    runs = [row for row in rows(done.out) if row[0].startswith("order-")]
    assert [row[0] for row in runs] == ["order-o-1", "order-o-2"]
    assert all(row[1] == "__main__:place_order" for row in runs)
    assert all(row[2] == "completed" for row in runs)
    assert done.out.rstrip().endswith("2 runs")


def test_list_filters_by_status(examples: dict[str, Path], shop: Path) -> None:
    assert (
        "0 runs"
        in chronik("-j", examples["approval"], "list", "--status", "failed").out
    )
    running = chronik("-j", shop, "list", "--status", "running")
    assert running.code == 0, running
    assert [row[0] for row in rows(running.out) if row[0].startswith("order")] == [
        "order-2"
    ]
    failed = chronik("-j", shop, "list", "--status", "FAILED")
    assert "broken-1" in failed.out
    assert "order-1" not in failed.out


def test_show_tells_how_the_saga_compensated_order_o_2(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "show", "order-o-2")
    assert done.code == 0, done
    assert "__main__:place_order" in done.out
    assert "'status': 'cancelled'" in done.out  # its result
    steps = [
        "reserve_inventory",
        "charge_payment",
        "ship_order",
        "refund_payment",
        "release_inventory",
    ]
    positions = [done.out.index(f"step '{step}'") for step in steps]
    assert positions == sorted(positions)  # in seq order
    assert "AddressRejectedError" in done.out  # the ship step's failure


def test_history_lists_the_events_of_a_run_oldest_first(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "history", "order-o-1")
    assert done.code == 0, done
    events = [row[3] for row in rows(done.out) if row[0].isdigit()]
    assert events == [
        "Started",
        "StepScheduled",
        "StepCompleted",
        "StepScheduled",
        "StepCompleted",
        "StepScheduled",
        "StepFailed",  # the carrier timed out once
        "StepCompleted",
        "Completed",
    ]
    assert "ConnectionError" in done.out


def test_history_json_is_a_history_document_that_loads_back(
    order_saga: Path, tmp_path: Path
) -> None:
    from actors import load_history

    done = chronik("-j", order_saga, "history", "order-o-1", "--json")
    assert done.code == 0, done
    document = done.json()
    assert document["format"] == "chronik-history/1"
    assert document["workflow_id"] == "order-o-1"
    assert [event["version"] for event in document["events"]] == list(range(1, 10))
    target = tmp_path / "order-o-1.json"
    target.write_text(done.out)
    history = load_history(target)
    assert history.events[0].args == ["o-1", ["book", "lamp"], 120, "1 Main St"]


def test_state_at_an_earlier_version_is_the_run_before_its_later_steps(
    order_saga: Path,
) -> None:
    final = chronik("-j", order_saga, "state", "order-o-1", "--json")
    early = chronik("-j", order_saga, "state", "order-o-1", "--at", "3", "--json")
    assert final.code == early.code == 0, (final, early)
    now, then = final.json(), early.json()
    assert (now["version"], now["last_version"]) == (9, 9)
    assert now["status"] == "completed"
    assert now["result"] == {"order": "o-1", "status": "shipped", "tracking": "trk-o-1"}
    assert [c["command"]["name"] for c in now["commands"]] == [
        "reserve_inventory",
        "charge_payment",
        "ship_order",
    ]
    # At version 3 the inventory is reserved, and nothing else has happened.
    assert (then["version"], then["last_version"]) == (3, 9)
    assert then["status"] == "running"
    assert then["result"] is None
    assert then["next_seq"] == 2
    (reserved,) = then["commands"]
    assert reserved["outcome"]["value"] == "res-o-1"
    assert reserved["outcome"]["at"] == {"$datetime": "2026-01-01T00:00:00+00:00"}


def test_state_as_a_table_names_the_version_and_what_the_run_waits_on(
    shop: Path,
) -> None:
    done = chronik("-j", shop, "state", "order-2", "--at", "5")
    assert done.code == 0, done
    assert "5 of " in done.out
    assert "receive 'approval'" in done.out
    assert "running" in done.out


def test_export_writes_one_json_line_per_position_from_1_to_the_end(
    order_saga: Path,
) -> None:
    done = chronik("-j", order_saga, "export")
    assert done.code == 0, done
    lines = [json.loads(line) for line in done.out.splitlines()]
    with JournalReader(str(order_saga)) as reader:
        last = reader.max_notification_id()
    assert len(lines) == last
    assert [line["position"] for line in lines] == list(range(1, len(lines) + 1))
    assert set(lines[0]) == {
        "position",
        "stream",
        "version",
        "topic",
        "timestamp",
        "state",
    }
    started = next(line for line in lines if line["topic"] == "aggregates:Started")
    assert started["stream"] == "order-o-1"
    assert started["version"] == 1
    assert started["state"]["args"] == ["o-1", ["book", "lamp"], 120, "1 Main St"]
    assert started["timestamp"] == {"$datetime": "2026-01-01T00:00:00+00:00"}
    streams = {line["stream"] for line in lines}
    assert streams == {"chronik:unfinished-runs", "order-o-1", "order-o-2"}


def test_export_from_and_to_gives_that_slice_of_the_log(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "export", "--from", "3", "--to", "5")
    assert done.code == 0, done
    assert [json.loads(line)["position"] for line in done.out.splitlines()] == [3, 4, 5]


def test_export_tags_values_json_lacks_as_history_files_do(shop: Path) -> None:
    done = chronik("-j", shop, "export")
    lines = [json.loads(line) for line in done.out.splitlines()]
    completed = next(
        line
        for line in lines
        if line["stream"] == "order-1" and line["topic"] == "aggregates:Completed"
    )
    assert completed["state"]["result"]["at"] == {
        "$datetime": completed["state"]["result"]["at"]["$datetime"]
    }


@pytest.mark.parametrize(
    "args",
    [
        ("show", "order-o-9"),
        ("history", "order-o-9", "--json"),
        ("state", "order-o-9", "--at", "1"),
        ("verify", "order-o-9"),
    ],
)
def test_an_unknown_run_id_is_one_error_line_and_exit_2(
    order_saga: Path, args: tuple[str, ...]
) -> None:
    done = chronik("-j", order_saga, *args)
    assert done.code == 2, done
    line = done.error_line()
    assert "no run has id 'order-o-9'" in line
    assert "chronik list" in line
    assert done.out == ""


@pytest.mark.parametrize("at", ["0", "10"])
def test_a_version_out_of_range_names_the_valid_range(
    order_saga: Path, at: str
) -> None:
    done = chronik("-j", order_saga, "state", "order-o-1", "--at", at)
    assert done.code == 2, done
    assert f"--at {at} is out of range" in done.error_line()
    assert "1 to 9" in done.error_line()


def test_a_bad_status_names_the_statuses(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "list", "--status", "done")
    assert done.code == 2, done
    assert "--status 'done' is not a run status" in done.error_line()
    assert "running, completed, failed, cancelled" in done.error_line()


@pytest.mark.parametrize("args", [("list",), ("verify", "x")])
def test_a_path_that_holds_no_journal_is_one_error_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    (tmp_path / "notes.txt").write_text("not a journal")
    for path in (tmp_path / "missing", tmp_path):
        done = chronik("-j", path, *args)
        assert done.code == 2, done
        line = done.error_line()
        assert str(path.name) in line
        assert "--journal" in line
    assert not (tmp_path / "missing").exists()  # a reader creates nothing


def test_export_from_past_to_is_bad_usage(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "export", "--from", "5", "--to", "4")
    assert done.code == 2, done
    assert "--to 4 is before --from 5" in done.error_line()
