"""The clocks supervisors read and schedule restarts on."""

from __future__ import annotations

import threading

import pytest

from supervision import ManualClock, SystemClock


def test_manual_clock_runs_due_callbacks_in_due_order_each_at_its_time() -> None:
    clock = ManualClock(start=100.0)
    seen: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: seen.append(("late", clock.monotonic())))
    clock.call_later(1.0, lambda: seen.append(("early", clock.monotonic())))
    clock.call_later(9.0, lambda: seen.append(("never", clock.monotonic())))

    clock.advance(5.0)

    assert seen == [("early", 101.0), ("late", 102.0)]
    assert clock.monotonic() == 105.0
    assert clock.pending == (4.0,)


def test_manual_clock_skips_cancelled_callbacks_and_refuses_to_go_back() -> None:
    clock = ManualClock()
    seen: list[str] = []
    cancel = clock.call_later(1.0, lambda: seen.append("cancelled"))
    cancel()
    cancel()

    clock.advance(2.0)

    assert seen == []
    assert clock.pending == ()
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)


def test_system_clock_calls_back_on_its_own_thread_and_can_cancel() -> None:
    clock = SystemClock()
    fired = threading.Event()
    cancelled = threading.Event()

    clock.call_later(0.001, fired.set)
    clock.call_later(60.0, cancelled.set)()

    assert fired.wait(5.0)
    assert not cancelled.is_set()
    assert clock.monotonic() > 0
