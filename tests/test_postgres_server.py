"""The PostgreSQL server the tests use: CHRONIK_PG_DSN, the local one, or a
throwaway server from installed binaries; none is a skip with the reason."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests import _postgres_server
from tests._postgres_server import find_server


def test_the_url_in_chronik_pg_dsn_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONIK_PG_DSN", "postgresql://someone@db.example:6543/x")
    with find_server() as server:
        assert server.dsn == "postgresql://someone@db.example:6543/x"
        assert server.origin == "CHRONIK_PG_DSN"


def test_without_any_server_or_binaries_the_reason_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHRONIK_PG_DSN", raising=False)
    monkeypatch.setattr(_postgres_server, "_answers", lambda *a, **k: False)
    monkeypatch.setattr(_postgres_server, "_binary", lambda name: None)
    with find_server() as server:
        assert server.dsn is None
        assert "no initdb/pg_ctl installed" in server.origin


_needs_psql = pytest.mark.skipif(
    shutil.which("psql") is None, reason="no psql client installed here"
)


@_needs_psql
def test_a_throwaway_server_starts_from_installed_binaries_and_goes_away() -> None:
    if _postgres_server._binary("initdb") is None:
        pytest.skip("no PostgreSQL binaries (initdb) installed here")
    with _postgres_server._throwaway() as server:
        assert server.dsn is not None, server.origin
        answered = subprocess.run(
            ["psql", server.dsn, "-tAc", "select 6 * 7"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert answered.stdout.strip() == "42", answered.stderr
        directory = server.origin.split("initdb in ")[1].split(",")[0]
    assert not _postgres_server.Path(directory).exists()


@_needs_psql
def test_the_fixture_gives_a_server_that_answers(postgres_dsn: str) -> None:
    answered = subprocess.run(
        ["psql", postgres_dsn, "-tAc", "select 1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert answered.stdout.strip() == "1", answered.stderr
