"""Fresh journals for the crash tester: one per run under a fault plan.

A run under a plan needs a journal no other run wrote to. On LMDB that is a
temporary directory; on PostgreSQL a schema of its own on the server the URL
names, called after the URL's schema with a random suffix. Either is removed
afterwards (best effort, as a temporary directory is: what is left is garbage,
never wrong).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import psycopg
from psycopg.sql import SQL, Identifier

from journal import PostgresLocation, parse_location

__all__ = ["fresh_journal"]

_SCHEMA_LENGTH = 63  # PostgreSQL's longest identifier


@contextlib.contextmanager
def fresh_journal(where: str | None) -> Iterator[str]:
    """A journal location no one has used, removed on leaving.

    ``where``: None (a temporary directory), a directory (the journal is made
    in a temporary directory inside it), or a ``postgresql://`` URL (a fresh
    schema on its server, in its database).
    """
    parent = None
    if where is not None:
        location = parse_location(where)
        if isinstance(location, PostgresLocation):
            with _fresh_schema(where, location) as url:
                yield url
            return
        parent = location.path
        os.makedirs(parent, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="chronik-crash-test-", dir=parent)
    try:
        yield os.path.join(directory, "journal")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _fresh_schema(url: str, location: PostgresLocation) -> Iterator[str]:
    suffix = f"_{uuid.uuid4().hex[:10]}"
    schema = location.schema[: _SCHEMA_LENGTH - len(suffix)] + suffix
    split = urlsplit(url)
    try:
        yield split._replace(query=urlencode({"schema": schema})).geturl()
    finally:
        _drop_schema(location, schema)


def _drop_schema(location: PostgresLocation, schema: str) -> None:
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(location.conninfo(), autocommit=True) as conn,
    ):
        conn.execute("SET lock_timeout = '10s'")  # a crashed system winding down
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
