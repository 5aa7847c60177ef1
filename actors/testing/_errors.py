"""Errors of the testing toolkit.

As everywhere in chronik, each error declares its data as fields (its constructor
takes exactly them and ``args`` holds them, so it pickles) and its message says what
to do.
"""

from __future__ import annotations

from actors._errors import ActorError

__all__ = [
    "CrashSafetyError",
    "FaultFreeRunError",
    "InjectedCrash",
    "InjectedStepFailure",
    "StuckRunError",
]


class InjectedCrash(ActorError, RuntimeError):
    """The crash a test injected: the system that hit it writes nothing more."""

    what: str  # what crashed, e.g. "a commit crashed after it was durable"
    template = "{what}"


class InjectedStepFailure(ActorError, RuntimeError):
    """A transient failure a fault plan injected into a step attempt."""

    what: str  # where it was injected
    template = "{what}"


class StuckRunError(ActorError, TimeoutError):
    """A run (or a whole system) that got nowhere in time, with no timer to skip to.

    ``waiting_on`` says what it waits for (a signal, a step that never returns,
    a child), so the test can send the signal or fix the step.
    """

    subject: str
    timeout: float
    waiting_on: str
    template = (
        "{subject} got nowhere within {timeout} s of real time: it "
        "waits on {waiting_on}. Time skips only while every run waits on "
        "a timer: send the signals it needs first, or check that its steps "
        "return"
    )


class CrashSafetyError(ActorError, AssertionError):
    """A run under a fault plan broke a crash-safety property or the invariant.

    ``plan`` is the ``repr`` of the ``FaultPlan`` (pass it to ``CrashTest.check``
    to reproduce), ``what`` the property that failed, ``trace`` what each life of
    the system did until it crashed.
    """

    workflow_id: str
    plan: str
    description: str
    what: str
    trace: str
    template = (
        "workflow run {workflow_id!r} is not crash-safe: {what}\n"
        "fault plan:\n{description}\n"
        "what happened:\n{trace}\n"
        "reproduce with: crash_test.check({plan})"
    )


class FaultFreeRunError(ActorError, RuntimeError):
    """The run without faults, which faulty runs are compared with, went wrong:
    it did not finish, or broke the invariant. Fix the test (send the signals
    the run needs) or the invariant first."""

    workflow_id: str
    problem: str
    trace: str
    template = (
        "the fault-free run {workflow_id!r}, which faulty runs are "
        "compared with, went wrong: {problem}\nwhat happened:\n"
        "{trace}"
    )
