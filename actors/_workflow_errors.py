"""Errors a workflow's own code sees, or a caller sees about a run's end.

Like every chronik error, each is built from its data and pickles.
"""

from __future__ import annotations

from aggregates import ErrorInfo
from journal import ChronikError

__all__ = [
    "ChildFailedError",
    "QueryError",
    "RunCancelledError",
    "UnknownQueryError",
    "WorkflowCancelled",
]


class WorkflowCancelled(ChronikError):
    """Thrown into a workflow at its current ``await`` when ``ref.cancel()`` asks.

    The workflow may catch it to compensate (a saga) and then return or re-raise;
    if it escapes, the run ends ``cancelled``.
    """

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return f"workflow run {self.workflow_id!r} was asked to cancel: {self.reason}"


class RunCancelledError(ChronikError, RuntimeError):
    """``ref.result()`` of a run that ended cancelled."""

    def __init__(self, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id, reason)
        self.workflow_id = workflow_id
        self.reason = reason

    def __str__(self) -> str:
        return f"workflow run {self.workflow_id!r} was cancelled: {self.reason}"


class ChildFailedError(ChronikError, RuntimeError):
    """Raised in a parent workflow that awaited a child run which failed or was
    cancelled; ``error`` is what the child's history recorded."""

    def __init__(
        self, workflow_id: str, seq: int, child_id: str, error: ErrorInfo
    ) -> None:
        super().__init__(workflow_id, seq, child_id, error)
        self.workflow_id = workflow_id
        self.seq = seq
        self.child_id = child_id
        self.error = error

    def __str__(self) -> str:
        return (
            f"workflow {self.workflow_id!r}: child run {self.child_id!r} started at "
            f"seq {self.seq} did not complete: {self.error}"
        )


class UnknownQueryError(ChronikError, LookupError):
    def __init__(self, workflow_id: str, name: str, known: tuple[str, ...]) -> None:
        super().__init__(workflow_id, name, known)
        self.workflow_id = workflow_id
        self.name = name
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(repr(name) for name in self.known) or "none"
        return (
            f"workflow run {self.workflow_id!r} has no query {self.name!r} "
            f"(its queries: {known}); the workflow registers queries with "
            "ctx.set_query(name, fn)"
        )


class QueryError(ChronikError, RuntimeError):
    """A query handler raised; ``error`` describes what it raised."""

    def __init__(self, workflow_id: str, name: str, error: ErrorInfo) -> None:
        super().__init__(workflow_id, name, error)
        self.workflow_id = workflow_id
        self.name = name
        self.error = error

    def __str__(self) -> str:
        run = self.workflow_id
        return f"query {self.name!r} of workflow run {run!r} raised {self.error}"
