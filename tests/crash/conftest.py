"""The crash suite's summary: what it ran and injected, printed at the end of
the session (see ``_stats.py``)."""

from __future__ import annotations

import pytest

from tests.crash._stats import summary_lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = summary_lines()
    if not lines:
        return
    terminalreporter.write_sep("-", "chronik crash suite: what ran and was injected")
    for line in lines:
        terminalreporter.write_line(line)
