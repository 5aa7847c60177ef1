"""``chronik stats``, run as the installed console script on real journals
(an LMDB directory, and a PostgreSQL URL where the test says so)."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

from journal import parse_location
from tests._postgres_server import connection_settings, journal_url

pytestmark = pytest.mark.multiprocess

REPO = Path(__file__).resolve().parents[2]
CHRONIK = Path(sys.executable).parent / "chronik"


@attrs.frozen
class Done:
    code: int
    out: str
    err: str


def chronik(*args: str | Path) -> Done:
    done = subprocess.run(
        [str(CHRONIK), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module", params=["lmdb", "postgres"])
def order_saga(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A journal the order saga example wrote (its system has closed): a
    directory, written by its own process; or a PostgreSQL URL, written in this
    one."""
    example = REPO / "examples" / "order_saga.py"
    if request.param == "lmdb":
        path = tmp_path_factory.mktemp("order-saga") / "journal"
        subprocess.run(
            [sys.executable, str(example), str(path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield str(path)
        return
    with journal_url(request.getfixturevalue("postgres_dsn")) as url:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(example))["main"](url)
        yield url


def test_chronik_stats_prints_the_journal_figures_and_each_host_s_counters(
    order_saga: str,
) -> None:
    done = chronik("-j", order_saga, "stats")
    assert done.code == 0, done
    lines = [" ".join(line.split()) for line in done.out.splitlines()]
    assert f"path {parse_location(order_saga).display}" in lines
    assert "runs 2 (0 running, 2 completed, 0 failed, 0 cancelled)" in lines
    assert any(line.startswith("events ") for line in lines)
    assert any("closed, last update" in line for line in lines)
    for row in (
        "runs started 2",
        "runs completed 2",
        "step attempts 9",
        "steps completed 7",
        "step retries 1",
        "steps failed 1",
    ):
        assert row in lines, row


def test_chronik_stats_json_is_one_document_with_the_same_figures(
    order_saga: str,
) -> None:
    done = chronik("-j", order_saga, "stats", "--json")
    assert done.code == 0, done
    document = json.loads(done.out)
    journal = document["journal"]
    assert journal["runs"] == {
        "total": 2,
        "running": 0,
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
    }
    assert journal["events"] == journal["notifications"] > 0
    assert journal["disk_bytes"] > 0
    if "tables" in journal:  # PostgreSQL: its schema's tables, measured
        assert journal["disk_bytes"] == sum(journal["tables"].values())
        assert {"chronikruns_events", "chronik_stats"} <= set(journal["tables"])
    else:
        assert journal["file_bytes"] > 0
    (host,) = document["hosts"]
    assert host["closed"] is True
    assert host["state"] == "closed"
    stats = host["stats"]
    assert (stats["step_attempts"], stats["step_retries"]) == (9, 1)
    commits = stats["commits"]
    assert sum(commits["histogram"].values()) == commits["groups"]


def test_chronik_stats_on_a_missing_journal_says_so_in_one_line_and_exits_2(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-journal"
    done = chronik("-j", missing, "stats")
    assert done.code == 2, done
    assert done.out == ""
    (line,) = done.err.splitlines()
    assert str(missing) in line
    assert "--journal" in line


def test_chronik_stats_on_an_empty_schema_says_so_in_one_line_and_makes_nothing(
    postgres_dsn: str,
) -> None:
    with journal_url(postgres_dsn) as url:
        done = chronik("-j", url, "stats")
        schema = url.rpartition("=")[2]
        settings = connection_settings(postgres_dsn)
        with psycopg.connect(autocommit=True, **settings) as conn:  # type: ignore[arg-type]
            found = conn.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                (schema,),
            ).fetchall()
    assert done.code == 2, done
    assert done.out == ""
    (line,) = done.err.splitlines()
    assert parse_location(url).display in line
    assert "holds no chronik journal" in line
    assert found == []  # read-only: not even the schema was made


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "cannot be reached"),
        ("postgresql://postgres@127.0.0.1/test?schema=1bad", "schema '1bad'"),
        ("mysql://root@127.0.0.1/test", "is a mysql:// URL"),
    ],
)
def test_chronik_stats_on_a_bad_or_unreachable_url_says_so_in_one_line(
    url: str, said: str
) -> None:
    done = chronik("-j", url, "stats")
    assert done.code == 2, done
    assert done.out == ""
    (line,) = done.err.splitlines()
    assert line.startswith("chronik: error: ")
    assert said in line


def test_chronik_stats_reads_a_journal_another_process_is_running_a_system_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal"
    host = subprocess.Popen(
        [sys.executable, "-m", "tests.observability._host", str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert host.stdin is not None
    assert host.stdout is not None
    try:
        assert host.stdout.readline().strip() == "ready"
        document = _stats_once_published(path)
        (running,) = document["hosts"]
        assert running["pid"] == host.pid
        assert (running["state"], running["closed"]) == ("running", False)
        assert running["stats"]["runs_started"] == 1
        assert document["journal"]["runs"]["running"] == 1
    finally:
        host.stdin.close()
        host.wait(timeout=30)
    (closed,) = json.loads(chronik("-j", path, "stats", "--json").out)["hosts"]
    assert closed["closed"] is True


def _stats_once_published(path: Path, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        done = chronik("-j", path, "stats", "--json")
        assert done.code == 0, done
        document: dict[str, Any] = json.loads(done.out)
        if document["hosts"] or time.monotonic() > deadline:
            return document
        time.sleep(0.2)
