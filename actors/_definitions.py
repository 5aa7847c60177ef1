"""The ``@workflow`` and ``@activity`` decorators and the registry of workflows.

Definitions are checked when they are made: a bad one raises one
``DefinitionError`` listing every problem, long before any run uses it.
"""

from __future__ import annotations

import importlib
import inspect
import math
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeGuard, overload

import attrs

from actors._errors import ContextError, DefinitionError, UnknownWorkflowError
from actors._guard import GuardMode, check_allow, check_guard_mode
from actors._info import ActivityInfo, current_info
from actors._retry import RetryPolicy

__all__ = [
    "ActivityDefinition",
    "WorkflowDefinition",
    "activity",
    "as_activity",
    "resolve_workflow",
    "workflow",
]

WorkflowFunction = Callable[..., Coroutine[Any, Any, Any]]


@attrs.frozen
class ActivityDefinition:
    """A step: ``fn`` (sync or ``async def``), its retry policy and timeouts.

    ``start_to_close`` bounds each attempt, ``schedule_to_close`` the whole step
    (every attempt and the retry delays between them), both in seconds or None.
    An attempt that runs out of time fails with ``StepTimeoutError``: an
    ``async def`` step is cancelled; a plain function runs on a thread of its own
    and is abandoned, because Python cannot stop a thread.
    """

    fn: Callable[..., Any]
    name: str
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    start_to_close: float | None = None
    schedule_to_close: float | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def timeout(self) -> float | None:
        """``start_to_close`` under its older name."""
        return self.start_to_close


@attrs.frozen
class WorkflowDefinition:
    """A workflow: an ``async def fn(ctx, *args)``, registered under ``name``.

    ``guard`` and ``allow``: what the determinism guard does about calls a
    replay cannot repeat (see ``actors._guard``).
    """

    fn: WorkflowFunction
    name: str
    guard: GuardMode = "raise"
    allow: frozenset[str] = frozenset()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class _Activity:
    """``@activity``, ``@activity(retry=..., start_to_close=..., schedule_to_close=...,
    name=...)``, and ``activity.info()`` inside a running step.

    ``timeout=`` is the older name of ``start_to_close=``; pass one of them.
    """

    @overload
    def __call__(self, fn: Callable[..., Any], /) -> ActivityDefinition: ...
    @overload
    def __call__(
        self,
        /,
        *,
        retry: RetryPolicy | None = None,
        start_to_close: float | None = None,
        schedule_to_close: float | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> Callable[[Callable[..., Any]], ActivityDefinition]: ...
    def __call__(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        retry: RetryPolicy | None = None,
        start_to_close: float | None = None,
        schedule_to_close: float | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> Any:
        timeouts = _Timeouts(start_to_close, schedule_to_close, timeout)

        def decorate(fn: Callable[..., Any]) -> ActivityDefinition:
            return _make_activity(fn, retry, timeouts, name)

        return decorate if fn is None else decorate(fn)

    @staticmethod
    def info() -> ActivityInfo:
        found = current_info()
        if found is None:
            raise ContextError(
                "activity.info()", "is only available inside a running step"
            )
        return found


activity = _Activity()


def as_activity(step: object) -> ActivityDefinition:
    """A decorated step as is; a plain function as a step with the default policy."""
    if isinstance(step, ActivityDefinition):
        return step
    return _make_activity(step, None, _Timeouts(), None)


@attrs.frozen
class _Timeouts:
    """The timeout arguments of ``@activity`` as given, checked by ``problems``."""

    start_to_close: object = None
    schedule_to_close: object = None
    timeout: object = None  # the older name of start_to_close

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.start_to_close is not None and self.timeout is not None:
            found.append(
                "timeout= is the older name of start_to_close=; pass only "
                "start_to_close"
            )
        for keyword, value in self._given():
            if value is not None and not _positive_seconds(value):
                found.append(f"{keyword}={value!r} must be seconds > 0, or None")
        attempt, whole = self.per_attempt(), self.whole_step()
        if attempt is not None and whole is not None and whole < attempt:
            keyword = "timeout" if self.start_to_close is None else "start_to_close"
            found.append(
                f"schedule_to_close={self.schedule_to_close!r} is below "
                f"{keyword}={attempt!r}; the whole step needs at least the time "
                "of one attempt"
            )
        return found

    def per_attempt(self) -> float | None:
        """Seconds for one attempt, if given and valid."""
        value = self.timeout if self.start_to_close is None else self.start_to_close
        return float(value) if _positive_seconds(value) else None

    def whole_step(self) -> float | None:
        """Seconds for the whole step, if given and valid."""
        value = self.schedule_to_close
        return float(value) if _positive_seconds(value) else None

    def _given(self) -> list[tuple[str, object]]:
        return [
            ("start_to_close", self.start_to_close),
            ("schedule_to_close", self.schedule_to_close),
            ("timeout", self.timeout),
        ]


def _positive_seconds(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _make_activity(
    fn: object, retry: object, timeouts: _Timeouts, name: object
) -> ActivityDefinition:
    problems: list[str] = []
    if not callable(fn):
        problems.append(f"{fn!r} is not callable")
    if retry is not None and not isinstance(retry, RetryPolicy):
        problems.append(f"retry={retry!r} is not a RetryPolicy")
    problems.extend(timeouts.problems())
    if name is not None and (not isinstance(name, str) or not name):
        problems.append(f"name={name!r} must be a non-empty str")
    if problems:
        raise DefinitionError(f"step {_describe(fn)}", tuple(problems))
    assert callable(fn)
    return ActivityDefinition(
        fn,
        name if isinstance(name, str) else getattr(fn, "__qualname__", repr(fn)),
        retry if isinstance(retry, RetryPolicy) else RetryPolicy(),
        timeouts.per_attempt(),
        timeouts.whole_step(),
    )


_registry: dict[str, WorkflowDefinition] = {}
_registry_lock = threading.Lock()


@overload
def workflow(fn: WorkflowFunction, /) -> WorkflowDefinition: ...
@overload
def workflow(
    *,
    name: str | None = None,
    guard: GuardMode = "raise",
    allow: Iterable[str] = (),
) -> Callable[[WorkflowFunction], WorkflowDefinition]: ...
def workflow(
    fn: WorkflowFunction | None = None,
    /,
    *,
    name: str | None = None,
    guard: GuardMode = "raise",
    allow: Iterable[str] = (),
) -> Any:
    """Register an ``async def fn(ctx, *args)`` as a workflow.

    Its name defaults to ``"module:qualname"``, which ``spawn`` and a reopened
    system resolve by import. Registering a name again replaces the definition:
    runs of that name replay against the newest code.

    While its code runs, a call a replay cannot repeat (``time.time()``,
    ``random.random()``, ``open(...)``, ...) fails the run with
    ``NondeterministicCallError``: ``guard="warn"`` logs it instead (once per
    run and call), ``guard="off"`` lets everything through, and ``allow`` lets
    through the calls or categories it names (``allow=("time.time", "io")``).
    A bad value raises ``GuardSettingError`` (a ``ValueError``) here.
    """
    mode, allowed = check_guard_mode(guard), check_allow(allow)

    def decorate(fn: WorkflowFunction) -> WorkflowDefinition:
        definition = attrs.evolve(_make_workflow(fn, name), guard=mode, allow=allowed)
        with _registry_lock:
            _registry[definition.name] = definition
        return definition

    return decorate if fn is None else decorate(fn)


def _make_workflow(fn: object, name: object) -> WorkflowDefinition:
    problems: list[str] = []
    if not callable(fn):
        problems.append(f"{fn!r} is not callable")
    elif not inspect.iscoroutinefunction(fn):
        problems.append("it is not an 'async def' function")
    if callable(fn) and not _takes_context(fn):
        problems.append("it must take the workflow context as its first argument")
    if name is not None and (not isinstance(name, str) or not name):
        problems.append(f"name={name!r} must be a non-empty str")
    if problems:
        raise DefinitionError(f"workflow {_describe(fn)}", tuple(problems))
    default = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}"
    return WorkflowDefinition(fn, name if isinstance(name, str) else default)  # type: ignore[arg-type]


def is_workflow_name(name: str) -> bool:
    """Whether a workflow is registered under ``name`` (none is imported)."""
    with _registry_lock:
        return name in _registry


def resolve_workflow(name: str) -> WorkflowDefinition:
    """The registered workflow ``name``, importing ``module:qualname`` if needed."""
    with _registry_lock:
        found = _registry.get(name)
    if found is not None:
        return found
    module_name, _, qualname = name.partition(":")
    if not qualname:
        raise UnknownWorkflowError(name, "it is not registered")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise UnknownWorkflowError(name, f"{type(error).__name__}: {error}") from None
    if not isinstance(target, WorkflowDefinition):
        raise UnknownWorkflowError(name, "it is not decorated with @workflow")
    return target


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    return any(
        p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL
        for p in parameters
    )


def _describe(fn: object) -> str:
    return str(getattr(fn, "__qualname__", repr(fn)))
