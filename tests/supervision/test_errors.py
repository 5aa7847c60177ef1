"""Supervision errors carry their data, say what to do, and pickle."""

from __future__ import annotations

import pickle

import pytest

from journal import ChronikError
from supervision import (
    ActorCrashedError,
    ChildStartError,
    ChildUnavailableError,
    DuplicateChildError,
    RestartIntensityError,
    ShutdownTimeoutError,
    SupervisionError,
    UnknownChildError,
    UnknownMessageError,
    UnsupervisedActorError,
)

ERRORS = [
    RestartIntensityError("root/sub", "x", 3, 5.0, ValueError("boom")),
    RestartIntensityError("root", "x", 0, 5.0, None),
    ChildStartError("root", "db", OSError("no database")),
    UnsupervisedActorError("root", "p", "ActorRef"),
    ShutdownTimeoutError("root", "a", 0.05),
    DuplicateChildError("root", "a"),
    UnknownChildError("root", "x", ("a", "b")),
    ChildUnavailableError("root/a", "it is restarting"),
    ActorCrashedError("Probe (urn:uuid:1)", "SystemExit(3)"),
    UnknownMessageError("Supervisor (urn:uuid:1)", "dict"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_supervision_error_pickles_with_its_data_and_message(
    error: SupervisionError,
) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy).keys() == vars(error).keys()
    assert isinstance(error, ChronikError)


def test_restart_intensity_error_names_the_supervisor_the_child_and_the_fix() -> None:
    error = RestartIntensityError("root/sub", "x", 3, 5.0, ValueError("boom"))

    assert str(error) == (
        "supervisor 'root/sub' gave up: child 'x' failed: ValueError('boom'), "
        "which would be restart number 4 within 5 s (max_restarts=3); fix the "
        "child, or raise max_restarts or lower period in SupervisorFlags"
    )


def test_a_normal_exit_that_breaks_the_limit_says_so() -> None:
    error = RestartIntensityError("root", "x", 0, 5.0, None)

    assert "child 'x' exited normally, which would be restart number 1" in str(error)


def test_an_unknown_child_error_names_only_the_first_ten_of_many_children() -> None:
    known = tuple(f"run-{n}" for n in range(10_000))

    message = str(UnknownChildError("root", "run-x", known))

    assert message.endswith("'run-8', 'run-9'] and 9990 more")
