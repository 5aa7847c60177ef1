"""The ``chronik`` console script: host, operate and audit a journal.

Commands live in one module per concern and register themselves on the ``cli``
group; importing them here is what makes them part of the command.
"""

from actors.cli import _ops, _read, _stats  # noqa: F401  (commands register on import)
from actors.cli._app import (
    EXIT_BAD_USAGE,
    EXIT_OK,
    EXIT_VERIFY_FAILED,
    CliError,
    cli,
    main,
)

__all__ = [
    "EXIT_BAD_USAGE",
    "EXIT_OK",
    "EXIT_VERIFY_FAILED",
    "CliError",
    "cli",
    "main",
]
