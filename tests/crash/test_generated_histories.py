"""Generated histories: runs of the model workflows under faults, checked step
by step against the fault-free model (see ``_machine.py``), on each backend
(each example on a fresh journal: a directory, or a schema of its own).

The default run checks 25 generated histories of up to 20 rules on LMDB and 8
on PostgreSQL (where each of an example's many opens of a system costs about
0.25 s of round trips: tables, lease round, index: an example takes about
1.5 s); the long run (CHRONIK_LONG=1 or ``-m slow``) checks 1000 of up to 30
on LMDB and 250 on PostgreSQL.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from journal import PostgresLocation, parse_location
from tests.crash._machine import crash_machine_on

LONG = bool(os.environ.get("CHRONIK_LONG"))
# (LMDB, PostgreSQL)
SHORT_RUN = (
    settings(max_examples=25, stateful_step_count=20),
    settings(max_examples=8, stateful_step_count=20),
)
LONG_RUN = (
    settings(max_examples=1000, stateful_step_count=30),
    settings(max_examples=250, stateful_step_count=30),
)


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param(
            SHORT_RUN,
            id="default",
            marks=pytest.mark.skipif(LONG, reason="CHRONIK_LONG=1 runs the long one"),
        ),
        pytest.param(LONG_RUN, id="long", marks=pytest.mark.slow),
    ],
)
def test_runs_under_generated_faults_lose_nothing_and_end_as_the_fault_free_model_says(
    sizes: tuple[settings, settings], journal_location: str
) -> None:
    on_postgres = isinstance(parse_location(journal_location), PostgresLocation)
    run_state_machine_as_test(
        crash_machine_on(journal_location),
        settings=settings(
            sizes[on_postgres],
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
