"""Generated histories: runs of the model workflows under faults, checked step
by step against the fault-free model (see ``_machine.py``).

The default run checks 25 generated histories of up to 20 rules; the long run
(CHRONIK_LONG=1 or ``-m slow``) checks 1000 of up to 30.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.crash._machine import CrashMachine

LONG = bool(os.environ.get("CHRONIK_LONG"))
SHORT_RUN = settings(max_examples=25, stateful_step_count=20)
LONG_RUN = settings(max_examples=1000, stateful_step_count=30)


@pytest.mark.parametrize(
    "size",
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
    size: settings,
) -> None:
    run_state_machine_as_test(
        CrashMachine,
        settings=settings(
            size,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
