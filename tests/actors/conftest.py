from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import ActorSystem, ManualClock


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


@pytest.fixture
def journal_system(journal_location: str, clock: ManualClock) -> Iterator[ActorSystem]:
    """``system`` on each backend."""
    with ActorSystem.open(journal_location, clock=clock) as opened:
        yield opened
