"""Dispatched actors share a dispatcher's few threads: each handles one message
at a time and in order, asks are answered, stops and failures are reported, and
the threads stay bounded however many actors there are."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from supervision import (
    ChildSpec,
    DispatchedActor,
    Dispatcher,
    Restart,
    Strategy,
    SupervisorFlags,
    inline_turns,
    start_supervisor,
)

TIMEOUT = 10.0


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    made = Dispatcher(3, name="test-dispatch")
    yield made
    made.close(timeout=TIMEOUT)


class Recorder(DispatchedActor):
    """Keeps what it was told, and notes any overlap of two handlers."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        fail_on_start: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        super().__init__()
        self.seen: list[Any] = []
        self.busy = False
        self.overlaps = 0
        self.threads: set[str] = set()
        self._fail_on_start = fail_on_start
        self._gate = gate

    def on_start(self) -> None:
        if self._fail_on_start:
            raise ValueError("cannot start")

    def on_receive(self, message: Any) -> Any:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        self.threads.add(threading.current_thread().name)
        try:
            if message == "wait" and self._gate is not None:
                self._gate.wait(TIMEOUT)
            if message == "fail":
                raise RuntimeError("told to fail")
            if message == "get":
                return (list(self.seen), self.overlaps, set(self.threads))
            time.sleep(0)  # let another thread try to run this actor meanwhile
            self.seen.append(message)
            return None
        finally:
            self.busy = False


def test_many_actors_share_the_dispatchers_threads_and_each_keeps_its_order(
    dispatcher: Dispatcher,
) -> None:
    refs = [Recorder.start(dispatcher) for _ in range(200)]
    senders = [
        threading.Thread(target=lambda r=ref: [r.tell(i) for i in range(50)])
        for ref in refs
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()

    for ref in refs:
        seen, overlaps, _ = ref.ask("get", timeout=TIMEOUT)
        assert seen == list(range(50))
        assert overlaps == 0
    assert dispatcher.threads <= 3
    for ref in refs:
        ref.stop(timeout=TIMEOUT)


def test_ten_thousand_idle_actors_hold_no_thread_of_their_own(
    dispatcher: Dispatcher,
) -> None:
    before = threading.active_count()
    refs = [Recorder.start(dispatcher) for _ in range(10_000)]
    assert refs[-1].ask("get", timeout=TIMEOUT)[0] == []

    assert threading.active_count() - before <= dispatcher.size
    for ref in refs:
        ref.stop(block=False)


def test_an_ask_gets_the_error_its_message_raised_and_the_actor_lives_on(
    dispatcher: Dispatcher,
) -> None:
    ref = Recorder.start(dispatcher)
    with pytest.raises(RuntimeError, match="told to fail"):
        ref.ask("fail", timeout=TIMEOUT)
    ref.tell("after")
    assert ref.ask("get", timeout=TIMEOUT)[0] == ["after"]
    ref.stop(timeout=TIMEOUT)


def test_messages_queued_behind_a_stop_are_answered_as_dead(
    dispatcher: Dispatcher,
) -> None:
    gate = threading.Event()
    ref = Recorder.start(dispatcher, gate=gate)
    ref.tell("wait")
    stopped = ref.stop(block=False)
    late = ref.ask("get", block=False)
    gate.set()
    stopped.get(timeout=TIMEOUT)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=TIMEOUT)
    assert not ref.is_alive()


def test_a_failure_of_a_dispatched_actor_reaches_its_supervisor_which_restarts_it(
    dispatcher: Dispatcher,
) -> None:
    root = start_supervisor(
        [
            ChildSpec(
                "recorder",
                lambda: Recorder.start(dispatcher),
                Restart.PERMANENT,
            )
        ],
        SupervisorFlags(Strategy.ONE_FOR_ONE, max_restarts=5, period=5.0),
        name="dispatch-test",
    )
    try:
        root.wait_quiet(TIMEOUT)
        child = root.child("recorder")
        first = child.current()
        child.tell("fail")  # told, not asked: the actor fails
        deadline = time.monotonic() + TIMEOUT
        while root.tree().children[0].restarts < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        root.wait_quiet(TIMEOUT)
        assert root.tree().children[0].restarts == 1
        assert child.current() not in (None, first)
        assert child.ask("get", timeout=TIMEOUT)[0] == []
    finally:
        root.stop()


def test_an_actor_whose_start_fails_is_stopped_and_answers_asks_as_dead(
    dispatcher: Dispatcher,
) -> None:
    ref = Recorder.start(dispatcher, fail_on_start=True)
    deadline = time.monotonic() + TIMEOUT
    while ref.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("get", timeout=TIMEOUT)


def test_a_dispatcher_refuses_a_bad_size() -> None:
    with pytest.raises(ValueError, match="threads >= 1"):
        Dispatcher(0)
    with pytest.raises(ValueError, match="throughput >= 1"):
        Dispatcher(2, throughput=0)


def test_a_thread_with_inline_turns_runs_an_idle_actors_turn_itself(
    dispatcher: Dispatcher,
) -> None:
    ref = Recorder.start(dispatcher)
    ref.ask("get", timeout=TIMEOUT)  # started, and idle
    with inline_turns():
        ref.tell("here")
    _, _, threads = ref.ask("get", timeout=TIMEOUT)
    assert threading.current_thread().name in threads
    ref.stop(timeout=TIMEOUT)


def test_a_turn_run_inline_hands_the_actors_it_tells_to_the_dispatcher(
    dispatcher: Dispatcher,
) -> None:
    target = Recorder.start(dispatcher)
    target.ask("get", timeout=TIMEOUT)
    relay = Relay.start(dispatcher, target)
    relay.ask("ready", timeout=TIMEOUT)
    with inline_turns():
        relay.tell("pass it on")  # runs here; its tell to target does not
    deadline = time.monotonic() + TIMEOUT
    while not target.ask("get", timeout=TIMEOUT)[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    seen, _, threads = target.ask("get", timeout=TIMEOUT)
    assert seen == ["pass it on"]
    assert threading.current_thread().name not in threads
    relay.stop(timeout=TIMEOUT)
    target.stop(timeout=TIMEOUT)


class Relay(DispatchedActor):
    def __init__(self, dispatcher: Dispatcher, target: Any) -> None:
        self._dispatcher = dispatcher
        super().__init__()
        self._target = target

    def on_receive(self, message: Any) -> Any:
        if message != "ready":
            self._target.tell(message)
        return None


def test_dispatched_actors_are_counted_by_their_dispatcher_not_in_pykkas_registry(
    dispatcher: Dispatcher,
) -> None:
    refs = [Recorder.start(dispatcher) for _ in range(50)]
    refs[-1].ask("get", timeout=TIMEOUT)
    assert dispatcher.actors == 50
    assert not set(refs) & set(pykka.ActorRegistry.get_all())
    for ref in refs:
        ref.stop(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while dispatcher.actors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dispatcher.actors == 0
