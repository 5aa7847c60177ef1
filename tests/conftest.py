from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests._postgres_server import find_server, journal_url

# The default run stays fast; CHRONIK_LONG=1 (or the "long" profile) runs more examples.
settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("long" if os.environ.get("CHRONIK_LONG") else "default")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Long crash and soak runs (marked ``slow``) run only with CHRONIK_LONG=1 or -m."""
    if os.environ.get("CHRONIK_LONG") or config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="long run: set CHRONIK_LONG=1 or pass -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server's URL (``tests._postgres_server``: CHRONIK_PG_DSN,
    the server on 127.0.0.1:5432, or a throwaway one); the test skips, saying
    why, where there is none."""
    with find_server() as server:
        if server.dsn is None:
            pytest.skip(f"no PostgreSQL server: {server.origin}")
        yield server.dsn


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
