"""Log records that say which run they concern: ``run_id``, ``seq``, ``attempt``.

The thread handling a run sets a ``RunScope`` in a context variable: a run's
actor while it handles each message, a step worker around each step. A
``RunContextFilter`` on chronik's loggers copies the scope onto every record
they emit, as the attributes ``run_id``, ``seq`` and ``attempt`` (``None``
outside a run; a record's own ``extra=`` wins), and starts the message with
``[<run id> seq=<n> attempt=<n>]`` so that a plain ``logging.basicConfig()``
shows them. For a format of your own, use ``LOG_FORMAT`` or the attributes,
and add a ``RunContextFilter()`` to your handler: then every record has them,
including your steps' own, which run inside the scope.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Final

__all__ = [
    "LOGGER_NAMES",
    "LOG_FORMAT",
    "RunContextFilter",
    "RunScope",
    "enter_scope",
    "install_filters",
    "leave_scope",
]

LOGGER_NAMES: Final = (
    "chronik",
    "chronik.actors",
    "chronik.supervision",
    "chronik.journal",
)
LOG_FORMAT: Final = (
    "%(asctime)s %(levelname)s %(name)s run=%(run_id)s seq=%(seq)s "
    "attempt=%(attempt)s %(message)s"
)
"""A format for a handler with a ``RunContextFilter()``."""

_ATTRIBUTES: Final = ("run_id", "seq", "attempt")


class RunScope:
    """The run a thread is handling now. Mutable: the owner moves ``seq`` and
    ``attempt`` on without setting the context variable again."""

    __slots__ = ("attempt", "run_id", "seq")

    def __init__(
        self, run_id: str, seq: int | None = None, attempt: int | None = None
    ) -> None:
        self.run_id = run_id
        self.seq = seq
        self.attempt = attempt


_scope: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "chronik_run_scope", default=None
)


Token = contextvars.Token[RunScope | None]


def enter_scope(scope: RunScope) -> Token:
    """Make ``scope`` current until ``leave_scope`` (a run's actor, around each
    message: cheaper than a context manager on the hot path)."""
    return _scope.set(scope)


def leave_scope(token: Token) -> None:
    _scope.reset(token)


class RunContextFilter(logging.Filter):
    """Copy the current run's ``run_id``, ``seq`` and ``attempt`` onto a record.

    With ``prefix=True`` (as on chronik's own loggers) a record of a run also
    gets ``[<run id> seq=<n> attempt=<n>] `` in front of its message, once.
    """

    def __init__(self, *, prefix: bool = False) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        values = record.__dict__
        scope = _scope.get()
        for name in _ATTRIBUTES:
            if name not in values:
                values[name] = None if scope is None else getattr(scope, name)
        prefixed = values.get("chronik_prefixed")
        if self.prefix and values["run_id"] is not None and not prefixed:
            values["chronik_prefixed"] = True
            prefix = _prefix(values)
            if record.args:  # the message is %-formatted: keep the id literal
                prefix = prefix.replace("%", "%%")
            record.msg = f"{prefix} {record.msg}"
        return True


def _prefix(values: dict[str, object]) -> str:
    parts = [str(values["run_id"])]
    if values["seq"] is not None:
        parts.append(f"seq={values['seq']}")
    if values["attempt"] is not None:
        parts.append(f"attempt={values['attempt']}")
    return f"[{' '.join(parts)}]"


def install_filters() -> None:
    """Put a prefixing filter on each of chronik's loggers that has none: the
    known ones, and every ``chronik.*`` logger created so far (a logger's filters
    see only its own records, not its children's). The system calls this when
    it opens, once every module has made its logger."""
    existing = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith("chronik.")
    ]
    for name in (*LOGGER_NAMES, *existing):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RunContextFilter) for f in logger.filters):
            logger.addFilter(RunContextFilter(prefix=True))


install_filters()
