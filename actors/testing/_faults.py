"""Fault plans: which faults one crash test injects, as plain values.

A plan's ``repr`` is the expression that builds it, so a failing plan printed by
hypothesis (or by ``CrashSafetyError``) can be pasted into ``CrashTest.check``.
Steps are named by their idempotency key, ``"<workflow id>/<seq>"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["Crash", "CrashAtCommit", "CrashInStep", "FailStep", "FaultPlan"]


@attrs.frozen(repr=False)
class CrashAtCommit:
    """The process dies at the ``commit``-th commit of its life (a commit is
    everything one mailbox message, or one spawn, caused): before that commit
    is durable or, with ``after``, right after it is."""

    commit: int
    after: bool = False

    def __repr__(self) -> str:
        return _short_repr(self)

    def describe(self, names: Mapping[str, str]) -> str:
        when = "right after" if self.after else "before"
        return f"the process dies {when} its commit {self.commit} is durable"


@attrs.frozen(repr=False)
class CrashInStep:
    """The process dies in the middle of step ``step``, the first time it runs
    in this life: before its body runs or, with ``after_body``, once its body
    has run (its effects happened) and before its outcome is recorded."""

    step: str
    after_body: bool = False

    def __repr__(self) -> str:
        return _short_repr(self)

    def describe(self, names: Mapping[str, str]) -> str:
        step = _named(self.step, names)
        if self.after_body:
            return (
                f"the process dies in step {step} after its body ran "
                "(its effects happened, its outcome is lost)"
            )
        return f"the process dies in step {step} before its body runs"


Crash = CrashAtCommit | CrashInStep


@attrs.frozen(repr=False)
class FailStep:
    """The first ``times`` attempts of step ``step`` raise
    ``InjectedStepFailure``: before its body runs or, with ``after_body``, after
    it ran (a step whose effect happened but whose reply was lost)."""

    step: str
    times: int = 1
    after_body: bool = False

    def __repr__(self) -> str:
        return _short_repr(self)

    def describe(self, names: Mapping[str, str]) -> str:
        when = "after its body ran" if self.after_body else "before its body runs"
        return (
            f"step {_named(self.step, names)} fails its first {self.times} "
            f"attempt(s), {when}"
        )


def _crashes(value: Iterable[Crash]) -> tuple[Crash, ...]:
    return tuple(value)


def _failures(value: Iterable[FailStep]) -> tuple[FailStep, ...]:
    return tuple(value)


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class FaultPlan:
    """The faults of one crash test.

    ``crashes``: one per life of the process, in order; the journal is reopened
    by a new process after each, and a last life runs without a crash.
    ``failures``: transient step failures, counted across lives.
    ``duplicate_signals``: signal ids the client sends twice in a row.
    ``resend_signals``: after a crash the client sends every signal again, the
    acknowledged ones too (else only those it saw no acknowledgement for).
    """

    crashes: tuple[Crash, ...] = attrs.field(default=(), converter=_crashes)
    failures: tuple[FailStep, ...] = attrs.field(default=(), converter=_failures)
    duplicate_signals: tuple[str, ...] = attrs.field(default=(), converter=_ids)
    resend_signals: bool = False

    def __repr__(self) -> str:
        return _short_repr(self)

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """The plan in words, one fault a line; ``names`` maps step keys to
        step names."""
        names = names or {}
        lines = [
            f"  life {life}: {crash.describe(names)}"
            for life, crash in enumerate(self.crashes, start=1)
        ]
        last = len(self.crashes) + 1
        lines.append(f"  life {last}: no crash (the journal reopened to finish)")
        lines += [f"  {failure.describe(names)}" for failure in self.failures]
        lines += [
            f"  the client sends signal {signal_id!r} twice"
            for signal_id in self.duplicate_signals
        ]
        if self.resend_signals and self.crashes:
            lines.append("  after each crash the client resends every signal")
        return "\n".join(lines)


def _short_repr(value: Any) -> str:
    """``Class(field=value, ...)`` without the fields left at their defaults:
    the expression that rebuilds ``value`` once ``from actors.testing import *``
    (the first field positionally, as the examples write it)."""
    fields = attrs.fields(type(value))
    parts = []
    for position, field in enumerate(fields):
        given = getattr(value, field.name)
        if field.default is not attrs.NOTHING and given == field.default:
            continue
        text = _tuple_repr(given) if isinstance(given, tuple) else repr(given)
        if position == 0 and field.default is attrs.NOTHING:
            parts.append(text)
        else:
            parts.append(f"{field.name}={text}")
    return f"{type(value).__name__}({', '.join(parts)})"


def _tuple_repr(items: tuple[object, ...]) -> str:
    inner = ", ".join(repr(item) for item in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def _named(key: str, names: Mapping[str, str]) -> str:
    name = names.get(key)
    return key if name is None else f"{key} ({name})"
