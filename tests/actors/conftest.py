from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import ActorSystem, ManualClock
from tests._postgres_server import journal_url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "journal")


@pytest.fixture
def system(path: str, clock: ManualClock) -> Iterator[ActorSystem]:
    with ActorSystem.open(path, clock=clock) as opened:
        yield opened


@pytest.fixture(params=["lmdb", "postgres"])
def journal_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a fresh journal lives, on each backend (issue 14): a directory for
    LMDB; for PostgreSQL, a URL naming a schema of its own, dropped afterwards
    (the test skips, saying why, where there is no server)."""
    if request.param == "lmdb":
        yield str(tmp_path / "journal")
        return
    pytest.importorskip("psycopg")
    with journal_url(request.getfixturevalue("postgres_dsn")) as url:
        yield url


@pytest.fixture
def journal_system(journal_location: str, clock: ManualClock) -> Iterator[ActorSystem]:
    """``system`` on each backend."""
    with ActorSystem.open(journal_location, clock=clock) as opened:
        yield opened
