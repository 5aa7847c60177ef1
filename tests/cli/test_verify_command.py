"""``chronik verify``: the journal's hash chains and a replay of every run
against the code of the modules it is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import EXAMPLES, chronik

pytestmark = pytest.mark.multiprocess  # each test runs the console script


@pytest.mark.parametrize("name", EXAMPLES)
def test_verify_passes_on_each_example_journal_given_its_script(
    examples: dict[str, Path], name: str
) -> None:
    done = chronik("-j", examples[name], "verify", "--module", f"examples/{name}.py")
    assert done.code == 0, done
    journal, replay = done.out.splitlines()
    assert journal.startswith("journal: ")
    assert journal.endswith(": ok")
    assert " head " in journal
    assert replay.startswith("replayed ")
    assert "0 non-deterministic, 0 error" in replay
    assert done.err == ""


def test_verify_takes_a_module_by_dotted_name_and_one_run_by_id(
    order_saga: Path,
) -> None:
    done = chronik("-j", order_saga, "verify", "order-o-2", "-m", "examples.order_saga")
    assert done.code == 0, done
    assert "replayed 1 run: 1 ok, 0 non-deterministic, 0 error" in done.out
    assert "journal: 12 events" in done.out  # the run's stream only


def test_verify_without_the_code_of_a_workflow_is_bad_usage_naming_it(
    order_saga: Path,
) -> None:
    done = chronik("-j", order_saga, "verify")
    assert done.code == 2, done
    line = done.error_line()
    assert "cannot find the code of workflow __main__:place_order" in line
    assert "--module" in line
    assert done.out == ""


def test_a_module_that_cannot_be_imported_is_bad_usage(order_saga: Path) -> None:
    done = chronik("-j", order_saga, "verify", "--module", "examples.no_such_thing")
    assert done.code == 2, done
    assert "no module named 'examples.no_such_thing'" in done.error_line()


def test_verify_passes_on_runs_recorded_with_the_current_code(shop: Path) -> None:
    done = chronik("-j", shop, "verify", "--module", "tests.cli._flows")
    assert done.code == 0, done
    assert "replayed 4 runs: 4 ok, 0 non-deterministic, 0 error" in done.out


def test_verify_exits_1_naming_the_run_when_its_workflow_code_changed(
    shop: Path,
) -> None:
    done = chronik("-j", shop, "verify", "--module", "tests.cli._flows_changed")
    assert done.code == 1, done
    assert "replayed 4 runs: 3 ok, 1 non-deterministic, 0 error" in done.out
    (problem,) = [line for line in done.out.splitlines() if line.startswith("- ")]
    assert problem.startswith("- replay: fee-1 (tests.cli.fee): non-deterministic: ")
    assert "at seq 1" in problem
    assert "step 'charge'" in problem
    assert "step 'reserve'" in problem
    line = done.error_line()
    assert "verification failed: 1 problem" in line
    assert "ctx.patched" in line


def test_verify_of_a_run_the_change_does_not_touch_still_passes(shop: Path) -> None:
    done = chronik("-j", shop, "verify", "order-1", "-m", "tests.cli._flows_changed")
    assert done.code == 0, done


@pytest.mark.parametrize(
    ("tamper", "position"),
    [
        ("change a byte", 5),
        ("delete", 7),
        ("reorder", 4),
        ("insert", 6),
    ],
)
def test_verify_exits_1_naming_the_position_of_a_tampered_journal(
    order_saga: Path, tmp_path: Path, tamper: str, position: int
) -> None:
    from tests.journal._tamper import (
        copy_journal,
        delete_event,
        flip_byte,
        insert_event,
        swap_positions,
    )

    copy = copy_journal(str(order_saga), str(tmp_path / "copy"))
    tampering = {
        "change a byte": lambda: flip_byte(copy, position),
        "delete": lambda: delete_event(copy, position),
        "reorder": lambda: swap_positions(copy, position, position + 3),
        "insert": lambda: insert_event(copy, position),
    }
    assert tampering[tamper]() == position
    done = chronik("-j", copy, "verify", "-m", "examples/order_saga.py")
    assert done.code == 1, done
    assert f"first bad position {position}" in done.error_line()
    problems = [line for line in done.out.splitlines() if line.startswith("- ")]
    assert problems[0].startswith(f"- journal: position {position}"), problems
