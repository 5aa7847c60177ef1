"""Exponential backoff between restarts, on the manual clock: no test sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from supervision import Backoff, ManualClock, Strategy, SupervisorFlags, SupervisorRef
from tests.supervision._support import (
    TIMEOUT,
    Crash,
    assert_stops_then_starts,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]


def flags(
    backoff: Backoff, strategy: Strategy = Strategy.ONE_FOR_ONE
) -> SupervisorFlags:
    return SupervisorFlags(strategy=strategy, max_restarts=100, backoff=backoff)


def test_pauses_double_from_initial_up_to_the_maximum(
    start: Start, clock: ManualClock
) -> None:
    backoff = Backoff(initial=1.0, maximum=4.0, multiplier=2.0, jitter=0.0)
    root = start([probe("a")], flags(backoff))
    pauses = []

    for _ in range(4):
        inject(root, root.child("a"), Crash(ValueError("boom")))
        assert statuses(root)["a"][0] == "restarting"
        [pause] = clock.pending
        pauses.append(pause)
        clock.advance(pause - 0.001)
        assert statuses(root)["a"][0] == "restarting"
        clock.advance(0.001)
        root.wait_quiet()
        assert statuses(root)["a"][0] == "running"

    assert pauses == pytest.approx([1.0, 2.0, 4.0, 4.0])
    assert statuses(root) == {"a": ("running", 4)}


def test_jitter_stretches_a_pause_by_its_fraction_of_the_random_draw(
    start: Start, clock: ManualClock
) -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, jitter=0.2)
    root = start([probe("a")], flags(backoff), rng=lambda: 0.5)

    inject(root, root.child("a"), Crash(ValueError("boom")))

    assert clock.pending == pytest.approx((1.1,))


def test_a_child_that_ran_for_reset_after_starts_again_from_the_initial_pause(
    start: Start, clock: ManualClock
) -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.0, reset_after=30.0)
    root = start([probe("a")], flags(backoff))
    for _ in range(3):
        inject(root, root.child("a"), Crash(ValueError("boom")))
        clock.advance(clock.pending[0])
        root.wait_quiet()

    clock.advance(29.0)
    inject(root, root.child("a"), Crash(ValueError("soon")))
    assert clock.pending == pytest.approx((8.0,))
    clock.advance(8.0)
    root.wait_quiet()

    clock.advance(30.0)
    inject(root, root.child("a"), Crash(ValueError("later")))
    assert clock.pending == pytest.approx((1.0,))


def test_an_ask_during_the_pause_is_answered_by_the_next_incarnation(
    start: Start, clock: ManualClock
) -> None:
    root = start([probe("a")], flags(Backoff(initial=5.0, jitter=0.0)))
    a = root.child("a")
    before = urn(a)
    inject(root, a, Crash(ValueError("boom")))
    answers: list[Any] = []
    asking = threading.Thread(target=lambda: answers.append(urn(a)))
    asking.start()

    clock.advance(5.0)
    asking.join(TIMEOUT)

    assert len(answers) == 1
    assert answers[0] != before


def test_one_for_all_stops_siblings_at_once_and_restarts_them_after_the_pause(
    start: Start, clock: ManualClock
) -> None:
    log: list[str] = []
    backoff = Backoff(initial=1.0, jitter=0.0)
    root = start(
        [probe("a", log), probe("b", log)], flags(backoff, Strategy.ONE_FOR_ALL)
    )
    log.clear()

    inject(root, root.child("a"), Crash(ValueError("boom")))
    assert log == ["stop b"]
    assert statuses(root) == {"a": ("restarting", 0), "b": ("restarting", 0)}

    clock.advance(1.0)
    root.wait_quiet()
    assert_stops_then_starts(log, ["stop b"], ["start a", "start b"])
    assert statuses(root) == {"a": ("running", 1), "b": ("running", 1)}


def test_a_pause_still_waiting_when_the_tree_stops_never_fires(
    start: Start, clock: ManualClock
) -> None:
    log: list[str] = []
    root = start([probe("a", log)], flags(Backoff(initial=1.0, jitter=0.0)))
    inject(root, root.child("a"), Crash(ValueError("boom")))

    root.stop()
    clock.advance(1.0)

    assert log == ["start a"]
    assert clock.pending == ()


def test_huge_attempt_numbers_stay_at_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, multiplier=10.0, jitter=0.5)

    assert backoff.delay(100_000, 0.0) == 10.0
    assert backoff.delay(100_000, 1.0) == 15.0


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"initial": 0.0}, "initial must be > 0"),
        ({"initial": 2.0, "maximum": 1.0}, "maximum 1.0 is below initial 2.0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"jitter": 1.5}, "jitter is a fraction"),
        ({"reset_after": -1.0}, "reset_after must be >= 0"),
    ],
)
def test_a_backoff_that_makes_no_sense_is_refused(
    options: dict[str, float], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        Backoff(**options)
