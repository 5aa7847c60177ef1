"""The commands workflow code can issue, one class per kind (see ``_base``)."""

from actors._commands._base import (
    Answer,
    Command,
    Driver,
    Request,
    command_of_kind,
    fresh,
)
from actors._commands._child import SpawnChild
from actors._commands._gather import Gather
from actors._commands._receive import Receive
from actors._commands._step import CallStep
from actors._commands._timer import Sleep
from actors._commands._values import Patched, Publish, RecordedValue

__all__ = [
    "Answer",
    "CallStep",
    "Command",
    "Driver",
    "Gather",
    "Patched",
    "Publish",
    "Receive",
    "RecordedValue",
    "Request",
    "Sleep",
    "SpawnChild",
    "command_of_kind",
    "fresh",
]
