from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from journal import Journal, LMDBApplicationRecorder


@pytest.fixture
def journal_path(tmp_path: Path) -> str:
    return str(tmp_path / "journal")


@pytest.fixture
def recorder(journal_path: str) -> Iterator[LMDBApplicationRecorder]:
    """An application recorder on a fresh journal, closed after the test."""
    journal = Journal.open(journal_path)
    yield LMDBApplicationRecorder(journal)
    journal.close()
