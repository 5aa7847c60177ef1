"""The ``@workflow`` and ``@activity`` decorators and the registry of workflows.

Definitions are checked when they are made: a bad one raises one
``DefinitionError`` listing every problem, long before any run uses it.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, overload

import attrs

from actors._errors import ContextError, DefinitionError, UnknownWorkflowError
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
    """A step: ``fn`` (sync or ``async def``), its retry policy and timeout.

    ``timeout`` bounds each attempt in seconds (start to close): an ``async def``
    step is cancelled when it expires; a plain function cannot be interrupted, so
    an attempt that overran has its result discarded and counts as timed out.
    """

    fn: Callable[..., Any]
    name: str
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    timeout: float | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


@attrs.frozen
class WorkflowDefinition:
    """A workflow: an ``async def fn(ctx, *args)``, registered under ``name``."""

    fn: WorkflowFunction
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class _Activity:
    """``@activity``, ``@activity(retry=..., timeout=..., name=...)``, and
    ``activity.info()`` inside a running step."""

    @overload
    def __call__(self, fn: Callable[..., Any], /) -> ActivityDefinition: ...
    @overload
    def __call__(
        self,
        /,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> Callable[[Callable[..., Any]], ActivityDefinition]: ...
    def __call__(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> Any:
        def decorate(fn: Callable[..., Any]) -> ActivityDefinition:
            return _make_activity(fn, retry, timeout, name)

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
    return _make_activity(step, None, None, None)


def _make_activity(
    fn: object, retry: object, timeout: object, name: object
) -> ActivityDefinition:
    problems: list[str] = []
    if not callable(fn):
        problems.append(f"{fn!r} is not callable")
    if retry is not None and not isinstance(retry, RetryPolicy):
        problems.append(f"retry={retry!r} is not a RetryPolicy")
    if timeout is not None and not (
        isinstance(timeout, int | float)
        and not isinstance(timeout, bool)
        and timeout > 0
    ):
        problems.append(f"timeout={timeout!r} must be seconds > 0, or None")
    if name is not None and (not isinstance(name, str) or not name):
        problems.append(f"name={name!r} must be a non-empty str")
    if problems:
        raise DefinitionError(f"step {_describe(fn)}", tuple(problems))
    assert callable(fn)
    return ActivityDefinition(
        fn,
        name if isinstance(name, str) else getattr(fn, "__qualname__", repr(fn)),
        retry if isinstance(retry, RetryPolicy) else RetryPolicy(),
        None if timeout is None else float(timeout),  # type: ignore[arg-type]
    )


_registry: dict[str, WorkflowDefinition] = {}
_registry_lock = threading.Lock()


@overload
def workflow(fn: WorkflowFunction, /) -> WorkflowDefinition: ...
@overload
def workflow(
    *, name: str | None = None
) -> Callable[[WorkflowFunction], WorkflowDefinition]: ...
def workflow(fn: WorkflowFunction | None = None, /, *, name: str | None = None) -> Any:
    """Register an ``async def fn(ctx, *args)`` as a workflow.

    Its name defaults to ``"module:qualname"``, which ``spawn`` and a reopened
    system resolve by import. Registering a name again replaces the definition:
    runs of that name replay against the newest code.
    """

    def decorate(fn: WorkflowFunction) -> WorkflowDefinition:
        definition = _make_workflow(fn, name)
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
