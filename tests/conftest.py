from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests._postgres_server import find_server

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
