"""Every failure reaches the supervisor, whatever raised it and wherever."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest

from supervision import (
    ActorCrashedError,
    ChildSpec,
    ChildStartError,
    RestartIntensityError,
    Strategy,
    SupervisedActor,
    SupervisorFlags,
    SupervisorRef,
    UnknownMessageError,
    UnsupervisedActorError,
    supervised,
)
from tests.supervision._support import (
    PING,
    TIMEOUT,
    Crash,
    Escalations,
    Hang,
    Plain,
    Probe,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]


def test_an_exception_in_on_start_reaches_the_supervisor_which_restarts_the_child(
    start: Start,
) -> None:
    root = start([probe("a", start_errors=[ValueError("not yet")])])

    assert statuses(root) == {"a": ("running", 1)}
    assert root.tree().child("a").last_failure == "ValueError('not yet')"
    assert urn(root.child("a"))


def test_a_child_that_never_starts_makes_its_supervisor_give_up(start: Start) -> None:
    escalations = Escalations()
    errors: list[BaseException] = [OSError(f"down {n}") for n in range(10)]

    start(
        [probe("a", start_errors=errors)],
        SupervisorFlags(max_restarts=2),
        on_escalate=escalations,
    )

    cause = escalations.wait()
    assert isinstance(cause, RestartIntensityError)
    assert repr(cause.cause) == "OSError('down 2')"
    assert len(errors) == 7  # the first start and two restarts took one each


@pytest.mark.parametrize("exit", [SystemExit(3), KeyboardInterrupt()])
def test_an_exit_raised_in_a_child_ends_that_child_only(
    start: Start, exit: BaseException
) -> None:
    bystander = Plain.start()
    try:
        root = start([probe("a"), probe("b")])
        b = urn(root.child("b"))

        inject(root, root.child("a"), Crash(exit))

        assert bystander.ask("hello", timeout=TIMEOUT) == "plain"
        assert urn(root.child("b")) == b
        assert statuses(root) == {"a": ("running", 1), "b": ("running", 0)}
        assert root.tree().child("a").last_failure == repr(exit)
    finally:
        bystander.stop()


def test_an_exit_in_on_start_ends_that_child_only(start: Start) -> None:
    bystander = Plain.start()
    try:
        root = start([probe("a", start_errors=[KeyboardInterrupt()]), probe("b")])
        root.wait_quiet()

        assert bystander.is_alive()
        assert statuses(root) == {"a": ("running", 1), "b": ("running", 0)}
        assert root.tree().child("a").last_failure == "KeyboardInterrupt()"
    finally:
        bystander.stop()


def test_an_asker_gets_actor_crashed_error_rather_than_the_childs_exit(
    start: Start,
) -> None:
    root = start([probe("a")])
    a = root.child("a")

    with pytest.raises(ActorCrashedError, match=r"exited with SystemExit\(7\)"):
        a.ask(Crash(SystemExit(7)), timeout=TIMEOUT)

    root.wait_quiet()
    assert statuses(root) == {"a": ("running", 1)}


def test_an_exception_handling_an_ask_goes_to_the_asker_and_the_child_lives_on(
    start: Start,
) -> None:
    root = start([probe("a")])
    a = root.child("a")
    before = urn(a)

    with pytest.raises(ValueError, match="yours"):
        a.ask(Crash(ValueError("yours")), timeout=TIMEOUT)

    assert urn(a) == before
    assert statuses(root) == {"a": ("running", 0)}


def test_terminating_a_child_that_hangs_abandons_it_after_its_shutdown_timeout(
    start: Start,
) -> None:
    release = threading.Event()
    root = start([probe("a", shutdown=0.05), probe("b")])
    hung = root.child("a").current()
    assert hung is not None
    try:
        hung.tell(Hang(release))

        root.terminate_child("a")

        assert hung.is_alive()  # its thread still runs: a thread cannot be killed
        assert hung not in pykka.ActorRegistry.get_all()
        assert [c.id for c in root.tree().children] == ["b"]
    finally:
        release.set()
    assert hung.actor_stopped.wait(TIMEOUT)


def test_a_hung_sibling_is_abandoned_recorded_and_replaced(start: Start) -> None:
    release = threading.Event()
    root = start(
        [probe("a", shutdown=0.05), probe("b")],
        SupervisorFlags(strategy=Strategy.ONE_FOR_ALL),
    )
    a = root.child("a")
    hung = a.current()
    assert hung is not None
    try:
        hung.tell(Hang(release))

        inject(root, root.child("b"), Crash(ValueError("boom")))

        info = root.tree().child("a")
        assert (info.status.value, info.restarts, info.abandoned) == ("running", 1, 1)
        assert info.last_failure is not None
        assert info.last_failure == "ShutdownTimeoutError('root', 'a', 0.05)"
        assert urn(a) != hung.actor_urn  # the replacement answers
        assert "1 abandoned" in root.format_tree()
    finally:
        release.set()
    assert hung.actor_stopped.wait(TIMEOUT)


def test_a_child_whose_on_stop_hangs_does_not_hold_up_the_shutdown(
    start: Start,
) -> None:
    release = threading.Event()
    log: list[str] = []
    root = start([probe("a", log), probe("b", log, shutdown=0.05, stop_hang=release)])
    try:
        root.stop()

        assert log[-2:] == ["stop b", "stop a"]
        info = root.tree().child("b")
        assert info.abandoned == 1
        assert info.last_failure == "ShutdownTimeoutError('root', 'b', 0.05)"
    finally:
        release.set()


def test_a_failure_in_on_stop_during_shutdown_is_recorded(start: Start) -> None:
    root = start([probe("a", stop_error=RuntimeError("messy"))])

    root.stop()

    assert root.tree().child("a").last_failure == "RuntimeError('messy')"


def test_an_exit_raised_in_on_stop_is_recorded_and_the_shutdown_goes_on(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([probe("a", log), probe("b", log, stop_error=SystemExit(4))])

    root.stop()

    assert log[-2:] == ["stop b", "stop a"]
    assert root.tree().child("b").last_failure == "SystemExit(4)"


def test_a_factory_that_raises_fails_the_supervisors_start(start: Start) -> None:
    log: list[str] = []
    escalations = Escalations()

    def broken() -> pykka.ActorRef[Probe]:
        raise OSError("no database")

    root = start([probe("a", log), ChildSpec("db", broken)], on_escalate=escalations)

    cause = escalations.wait()
    assert isinstance(cause, ChildStartError)
    assert "could not start child 'db': OSError('no database')" in str(cause)
    assert log == ["start a", "stop a"]
    assert not root.tree().alive


def test_start_child_reports_a_factory_error_to_the_caller_and_adds_nothing(
    start: Start,
) -> None:
    def broken() -> pykka.ActorRef[Probe]:
        raise OSError("no database")

    root = start([probe("a")])

    with pytest.raises(ChildStartError, match="OSError"):
        root.start_child(ChildSpec("db", broken))

    assert [c.id for c in root.tree().children] == ["a"]
    assert root.tree().alive


def test_a_factory_returning_a_plain_pykka_actor_is_refused_and_the_actor_stopped(
    start: Start,
) -> None:
    started: list[pykka.ActorRef[Plain]] = []

    def plain() -> pykka.ActorRef[Plain]:
        started.append(Plain.start())
        return started[-1]

    root = start()
    with pytest.raises(UnsupervisedActorError, match=r"ChildSpec\.for_actor"):
        root.start_child(ChildSpec("p", plain))

    assert started[0].actor_stopped.wait(TIMEOUT)


def test_a_plain_pykka_actor_class_is_supervised_through_for_actor(
    start: Start,
) -> None:
    root = start([ChildSpec.for_actor("p", Plain)])
    p = root.child("p")
    assert p.ask(PING, timeout=TIMEOUT) == "plain"

    inject(root, p, Crash(SystemExit(1)))

    assert statuses(root) == {"p": ("running", 1)}
    assert supervised(Plain) is supervised(Plain)
    assert supervised(Probe) is Probe
    assert issubclass(supervised(Plain), SupervisedActor)


def test_a_supervisor_names_the_type_of_a_message_it_does_not_know(
    start: Start,
) -> None:
    root = start()

    with pytest.raises(UnknownMessageError, match="no handler for a dict message"):
        root.ask({"what": "ever"}, timeout=TIMEOUT)


def test_a_supervised_actor_started_outside_any_supervisor_still_contains_exits() -> (
    None
):
    bystander = Plain.start()
    lone = Probe.start("lone")
    try:
        lone.tell(Crash(SystemExit(2)))

        assert lone.actor_stopped.wait(TIMEOUT)
        assert bystander.is_alive()
    finally:
        bystander.stop()
