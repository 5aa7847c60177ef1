"""``Saga``: compensations registered as a workflow goes, run in reverse on failure.

A saga is plain workflow code over the public ``WorkflowContext``: each
compensation is an ordinary durable step (``await ctx.call(step, *args)``), so it
is recorded, retried by its own policy and answered from history on replay. The
saga keeps no state of its own outside the workflow's coroutine; replaying the
workflow rebuilds it exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from actors._context import CallStep, WorkflowContext
from actors._errors import StepFailed

__all__ = ["Saga"]


class Saga:
    """Register a compensation for each completed step; undo them all on failure.

    ::

        async with Saga(ctx) as saga:
            charge = await ctx.call(charge_card, order_id, amount)
            saga.add(refund_card, charge["id"])
            await ctx.call(ship, order_id)  # raises: refund_card runs, then re-raise

    ``rollback()`` runs the compensations last-registered first, each as a
    durable step. A compensation that fails after its retries is recorded in
    history as a failed step and the others still run; ``rollback()`` returns
    those ``StepFailed`` errors. A compensation runs at most once per saga:
    a second ``rollback()`` runs nothing more.
    """

    def __init__(self, ctx: WorkflowContext) -> None:
        if not isinstance(ctx, WorkflowContext):
            msg = f"Saga takes the workflow's context (ctx), not {ctx!r}"
            raise TypeError(msg)
        self._ctx = ctx
        # Invariant: the compensations not yet run, in the order they were added,
        # as requests not yet awaited (so not yet given a seq).
        self._pending: list[CallStep] = []

    def add(self, step: Callable[..., Any], *args: Any) -> None:
        """Register ``step(*args)`` to undo a step that completed.

        Checked now, not at rollback, by ``ctx.call`` itself: a ``step`` that is
        not callable raises ``DefinitionError`` (a ``TypeError``), and ``args``
        msgpack cannot encode raise ``UnencodableValueError``. The request
        ``ctx.call`` makes issues no command until rollback awaits it.
        """
        request = self._ctx.call(step, *args)
        self._ctx._untrack(request)  # awaited only if the saga rolls back
        self._pending.append(request)

    @property
    def pending(self) -> int:
        """How many compensations a rollback would run now."""
        return len(self._pending)

    async def rollback(self) -> list[StepFailed]:
        """Run every pending compensation, last-registered first.

        Returns the compensations that failed for good (empty when all
        succeeded). A compensation leaves the saga once it has an outcome, so a
        second call runs nothing and returns ``[]``. Errors other than
        ``StepFailed`` (a bug in the engine or the workflow) propagate at once,
        leaving the compensations not yet run pending.
        """
        failures: list[StepFailed] = []
        while self._pending:
            try:
                await self._pending[-1]
            except StepFailed as failed:
                failures.append(failed)
            self._pending.pop()
        return failures

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        # GeneratorExit and other BaseExceptions mean the coroutine is being torn
        # down (the system is closing), not that the workflow failed.
        if isinstance(error, Exception):
            failures = await self.rollback()
            for failed in failures:
                error.add_note(f"compensation failed: {failed}")
        return False  # re-raise the original error
