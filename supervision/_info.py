"""The supervision tree as frozen data, for introspection and for tests."""

from __future__ import annotations

import enum

import attrs

from supervision._spec import Restart, Strategy

__all__ = ["ChildInfo", "ChildStatus", "SupervisorInfo"]


class ChildStatus(enum.Enum):
    RUNNING = "running"
    RESTARTING = "restarting"  # waiting out a backoff pause, or a failed start
    STOPPED = "stopped"  # a transient child that exited normally, or shut down


@attrs.frozen
class ChildInfo:
    id: str
    status: ChildStatus
    restart: Restart
    restarts: int  # starts after the first, by this incarnation of the supervisor
    last_failure: str | None  # repr of the latest failure, None if it never failed
    abandoned: int  # incarnations that outlived their shutdown timeout
    dynamic: bool  # added at run time with start_child
    supervisor: SupervisorInfo | None = None  # set when the child is a supervisor

    def describe(self) -> str:
        plural = "" if self.restarts == 1 else "s"
        parts = [
            self.status.value,
            self.restart.value,
            f"{self.restarts} restart{plural}",
        ]
        if self.abandoned:
            parts.append(f"{self.abandoned} abandoned")
        if self.dynamic:
            parts.append("dynamic")
        if self.last_failure is not None:
            parts.append(f"last failure: {self.last_failure}")
        strategy = (
            "" if self.supervisor is None else f" [{self.supervisor.strategy.value}]"
        )
        return f"{self.id}{strategy}: {', '.join(parts)}"


@attrs.frozen
class SupervisorInfo:
    name: str
    strategy: Strategy
    alive: bool
    failure: str | None  # repr of the reason it stopped, if it failed
    children: tuple[ChildInfo, ...]

    def child(self, *path: str) -> ChildInfo:
        """The child at ``path`` (ids from this supervisor down)."""
        if not path:
            msg = "child() needs at least one child id"
            raise ValueError(msg)
        node: SupervisorInfo | None = self
        found: ChildInfo | None = None
        for child_id in path:
            if node is None:
                msg = (
                    f"{found.id if found else self.name!r} is not a running supervisor"
                )
                raise LookupError(msg)
            found = next((c for c in node.children if c.id == child_id), None)
            if found is None:
                ids = [c.id for c in node.children]
                msg = (
                    f"supervisor {node.name!r} has no child {child_id!r}; it has {ids}"
                )
                raise LookupError(msg)
            node = found.supervisor
        assert found is not None
        return found

    def format(self) -> str:
        """The tree as indented lines, one per supervisor and child."""
        state = "alive" if self.alive else "stopped"
        if self.failure is not None:
            state += f", failed: {self.failure}"
        return "\n".join(
            [f"{self.name} [{self.strategy.value}] {state}", *self._lines("")]
        )

    def _lines(self, indent: str) -> list[str]:
        lines: list[str] = []
        for position, child in enumerate(self.children):
            last = position == len(self.children) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{child.describe()}")
            if child.supervisor is not None:
                lines.extend(
                    child.supervisor._lines(indent + ("    " if last else "│   "))
                )
        return lines
