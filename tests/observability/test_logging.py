"""chronik's log records say which run, seq and attempt they concern."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import pytest

from actors import (
    LOG_FORMAT,
    ActorSystem,
    ManualClock,
    RunContextFilter,
    WorkflowFailedError,
)
from tests.observability._workflows import doomed, known, logged, patient

RUN = "obs-log-1"


def _chronik(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("chronik")]


def _run(record: logging.LogRecord) -> object:
    return vars(record).get("run_id")


def _seq(record: logging.LogRecord) -> object:
    return vars(record)["seq"]


def _attempt(record: logging.LogRecord) -> object:
    return vars(record)["attempt"]


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _run_known(system: ActorSystem, clock: ManualClock, run_id: str) -> None:
    ref = system.spawn(known, "a", id=run_id)
    clock.wait_for_timers(1)
    clock.advance("1h")
    ref.send("go", 7)
    assert ref.result(timeout=5) == ["flaky-a", "steady-a", "7"]


def test_every_record_of_a_run_carries_its_run_id_seq_and_attempt(
    system: ActorSystem, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chronik")
    _run_known(system, clock, RUN)
    records = _chronik(caplog)
    ours = [r for r in records if _run(r) == RUN]
    assert ours
    for record in records:  # every chronik record has the attributes
        assert {"run_id", "seq", "attempt"} <= set(vars(record))
    seen = {
        (r.levelname, _seq(r), _attempt(r), r.getMessage().split("] ", 1)[1])
        for r in ours
    }
    expected = {
        ("INFO", None, None, "run started: workflow tests.observability.known"),
        ("DEBUG", 1, None, "step tests.observability.flaky scheduled"),
        (
            "WARNING",
            1,
            1,
            "step tests.observability.flaky failed (FlakyError: a: first attempt "
            "fails); retrying in 1 s",
        ),
        ("DEBUG", 1, 2, "step tests.observability.flaky completed"),
        ("DEBUG", 2, None, "step tests.observability.steady scheduled"),
        ("DEBUG", 2, 1, "step tests.observability.steady completed"),
        ("DEBUG", 3, None, "timer fired"),
        ("INFO", None, None, "run completed"),
    }
    assert expected <= seen
    signal = [r for r in ours if r.getMessage().startswith(f"[{RUN}] signal received")]
    assert len(signal) == 1


def test_the_run_seq_and_attempt_lead_the_message_for_a_plain_basic_config(
    system: ActorSystem, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chronik")
    _run_known(system, clock, RUN)
    messages = [r.getMessage() for r in _chronik(caplog)]
    assert f"[{RUN}] run started: workflow tests.observability.known" in messages
    assert f"[{RUN} seq=1 attempt=2] step tests.observability.flaky completed" in (
        messages
    )
    assert any(m.startswith(f"[{RUN} seq=1 attempt=1] step ") for m in messages)


def test_a_failed_run_is_an_error_and_a_cancelled_run_is_info(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chronik")
    with pytest.raises(WorkflowFailedError):
        system.spawn(doomed, "b", id="obs-log-doomed").result(timeout=5)
    waiting = system.spawn(patient, id="obs-log-patient")
    waiting.cancel("no longer wanted")
    with pytest.raises(Exception, match="no longer wanted"):
        waiting.result(timeout=5)
    levels = {
        (_run(r), r.levelname, r.getMessage().split("] ", 1)[1])
        for r in _chronik(caplog)
        if _run(r) is not None
    }
    failed = [text for run, level, text in levels if run == "obs-log-doomed"]
    assert any(text.startswith("run failed: StepFailed: ") for text in failed)
    assert all(
        level == "ERROR"
        for run, level, text in levels
        if run == "obs-log-doomed" and text.startswith("run failed")
    )
    assert ("obs-log-patient", "INFO", "run cancelled: no longer wanted") in levels
    warned = [
        r
        for r in _chronik(caplog)
        if r.levelname == "WARNING" and _run(r) == "obs-log-doomed"
    ]
    assert [(_seq(r), _attempt(r)) for r in warned] == [(1, 1), (1, 2)]


def test_an_engine_fault_is_a_warning_naming_the_run(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chronik")
    ref = system.spawn(patient, id="obs-log-fault")
    handle = system._router.find("obs-log-fault")
    assert handle is not None
    _wait_for(lambda: handle.idle_since is not None)
    dead = handle.actor
    assert dead is not None
    dead.tell(object())  # a message it has no handler for: an engine fault
    _wait_for(lambda: handle.actor is not dead and handle.actor is not None)
    faults = [
        r
        for r in _chronik(caplog)
        if r.levelname == "WARNING" and "engine fault" in r.getMessage()
    ]
    assert [_run(r) for r in faults] == ["obs-log-fault"]
    assert ref.status().value == "running"
    assert system.stats().run_restarts == 1


def test_replay_and_passivation_are_debug_records_of_the_run(
    path: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chronik")
    with ActorSystem.open(path, clock=clock, idle_timeout=0.05) as system:
        ref = system.spawn(known, "c", id="obs-log-passive")
        clock.wait_for_timers(1)
        _wait_for(lambda: system.live_runs == 0)
        clock.advance("1h")  # activates it by replay
        _wait_for(lambda: system.stats().timers_fired == 1)
        ref.send("go", 1)
        ref.result(timeout=5)
    texts = [r.getMessage() for r in _chronik(caplog) if _run(r) == "obs-log-passive"]
    assert any("passivated" in text for text in texts)
    assert any("activated: replaying 7 events" in text for text in texts)


def test_a_handler_filter_gives_any_record_the_attributes_for_a_format_string() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    other = logging.getLogger("tests.observability.elsewhere")
    other.addHandler(handler)
    other.propagate = False
    try:
        other.warning("outside any run")
    finally:
        other.removeHandler(handler)
    line = stream.getvalue()
    assert "run=None seq=None attempt=None outside any run" in line


def test_a_step_s_own_records_carry_its_run_through_a_handler_filter(
    system: ActorSystem,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(
        logging.Formatter("%(run_id)s %(seq)s %(attempt)s %(message)s")
    )
    steps = logging.getLogger("tests.observability.steps")
    steps.addHandler(handler)
    steps.setLevel(logging.INFO)
    try:
        assert system.spawn(logged, id="obs-log-own").result(timeout=5) == "done"
    finally:
        steps.removeHandler(handler)
    assert stream.getvalue() == "obs-log-own 1 1 inside the step\n"
