"""Errors of the testing toolkit.

As everywhere in chronik, each error is built from its data (``args`` are its
``__init__`` arguments, so it pickles) and its message says what to do.
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


class InjectedStepFailure(ActorError, RuntimeError):
    """A transient failure a fault plan injected into a step attempt."""


class StuckRunError(ActorError, TimeoutError):
    """A run (or a whole system) that got nowhere in time, with no timer to skip to.

    ``waiting_on`` says what it waits for (a signal, a step that never returns,
    a child), so the test can send the signal or fix the step.
    """

    def __init__(self, subject: str, timeout: float, waiting_on: str) -> None:
        super().__init__(subject, timeout, waiting_on)
        self.subject = subject
        self.timeout = timeout
        self.waiting_on = waiting_on

    def __str__(self) -> str:
        return (
            f"{self.subject} got nowhere within {self.timeout} s of real time: it "
            f"waits on {self.waiting_on}. Time skips only while every run waits on "
            "a timer: send the signals it needs first, or check that its steps "
            "return"
        )


class CrashSafetyError(ActorError, AssertionError):
    """A run under a fault plan broke a crash-safety property or the invariant.

    ``plan`` is the ``repr`` of the ``FaultPlan`` (pass it to ``CrashTest.check``
    to reproduce), ``what`` the property that failed, ``trace`` what each life of
    the system did until it crashed.
    """

    def __init__(
        self, workflow_id: str, plan: str, description: str, what: str, trace: str
    ) -> None:
        super().__init__(workflow_id, plan, description, what, trace)
        self.workflow_id = workflow_id
        self.plan = plan
        self.description = description
        self.what = what
        self.trace = trace

    def __str__(self) -> str:
        return (
            f"workflow run {self.workflow_id!r} is not crash-safe: {self.what}\n"
            f"fault plan:\n{self.description}\n"
            f"what happened:\n{self.trace}\n"
            f"reproduce with: crash_test.check({self.plan})"
        )


class FaultFreeRunError(ActorError, RuntimeError):
    """The run without faults, which faulty runs are compared with, went wrong:
    it did not finish, or broke the invariant. Fix the test (send the signals
    the run needs) or the invariant first."""

    def __init__(self, workflow_id: str, problem: str, trace: str) -> None:
        super().__init__(workflow_id, problem, trace)
        self.workflow_id = workflow_id
        self.problem = problem
        self.trace = trace

    def __str__(self) -> str:
        return (
            f"the fault-free run {self.workflow_id!r}, which faulty runs are "
            f"compared with, went wrong: {self.problem}\nwhat happened:\n"
            f"{self.trace}"
        )
