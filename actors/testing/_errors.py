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
    "NonDeterministicWorkflowError",
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
        "reproduce with: crash_test.check({plan})\n"
        "  (crash_test: a CrashTest(...) of this workflow, with the arguments "
        "given to check_crash_safety; every name is in actors.testing)"
    )


class NonDeterministicWorkflowError(CrashSafetyError):
    """The workflow ran twice under one fault plan and did not do the same:
    its code reads something outside ``ctx`` (the clock, ``random``, ``uuid``,
    a global that changes between runs), so no crash test of it can hold.

    ``what`` says what differed between the two runs (the first differing
    command of their histories, or their results); ``trace`` holds both runs.
    """

    template = (
        "workflow run {workflow_id!r} is not deterministic: run twice under "
        "the same fault plan, {what}\n"
        "likely cause: workflow code that reads something outside ctx, which "
        "differs from one run to the next: time.time() or datetime.now() (use "
        "ctx.now()), random.random() (use ctx.random()), uuid.uuid4() (use "
        "ctx.uuid4()), or a global, a file or a service (move the call into a "
        "step, whose result is recorded)\n"
        "fault plan:\n{description}\n"
        "what happened:\n{trace}\n"
        "reproduce with: crash_test.check({plan})\n"
        "  (crash_test: a CrashTest(...) of this workflow, with the arguments "
        "given to check_crash_safety; every name is in actors.testing)"
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
