"""``ActivityInfo``: what a running step attempt knows about itself."""

from __future__ import annotations

from contextvars import ContextVar

import attrs

__all__ = ["ActivityInfo", "current_info", "info_var"]


@attrs.frozen
class ActivityInfo:
    """Handed to every attempt; ``idempotency_key`` is ``"{workflow_id}/{seq}"``,
    the same on every retry, after a crash and on replay."""

    workflow_id: str
    seq: int
    step: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.seq}"


info_var: ContextVar[ActivityInfo | None] = ContextVar("chronik_activity", default=None)


def current_info() -> ActivityInfo | None:
    return info_var.get()
