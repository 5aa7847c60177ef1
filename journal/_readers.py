"""One way to open any journal for reading: a directory or a PostgreSQL URL."""

from __future__ import annotations

import os

from journal._audit import JournalReader
from journal._location import LmdbLocation, parse_location
from journal._pg_reader import PostgresJournalReader

__all__ = ["AnyJournalReader", "open_reader"]

AnyJournalReader = JournalReader | PostgresJournalReader


def open_reader(source: str | os.PathLike[str]) -> AnyJournalReader:
    """A reader of the journal ``source`` names (``JournalPathError`` if none
    is there; a bad URL is a ``JournalConfigError``)."""
    location = parse_location(source)
    if isinstance(location, LmdbLocation):
        return JournalReader(location.path)
    return PostgresJournalReader(location)
