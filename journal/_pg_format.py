"""The format marker of a PostgreSQL journal (issue 14), as LMDB's ``meta`` db.

A journal's schema holds a one-row table ``chronik_format`` (the marker and the
format version) created with the journal. Opening checks it first, before
anything else is created: a schema holding tables chronik did not make is
refused (never written to), and so is a journal of another format version.
Everything runs in one transaction under an advisory lock, so hosts opening a
new journal at once make it once.
"""

from __future__ import annotations

from typing import Final

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier, Literal

from journal._errors import JournalPathError
from journal._store import FORMAT_MARKER

__all__ = ["CREATE_LOCK", "FORMAT_TABLE", "FORMAT_VERSION", "check_format"]

FORMAT_TABLE: Final = "chronik_format"
# The format version of a PostgreSQL journal, apart from LMDB's: 2 had no hash
# chains; 3 had them on events (hash and log_hash columns, chronik_heads); 4 on
# snapshots too.
FORMAT_VERSION: Final = 4
CREATE_LOCK: Final = 0x6368726F6E696B  # "chronik": one advisory lock for creating


def check_format(
    datastore: PostgresDatastore, where: str, *, create: bool = True
) -> bool:
    """Check the journal in ``datastore``'s schema, marking a new (empty or
    absent) schema as one; whether it was new. ``where`` names the journal in
    errors (its URL without the password). ``create=False`` (a client, which
    makes no journal): an empty or absent schema is a ``JournalPathError``,
    and nothing is written."""
    schema = datastore.schema
    marker = FORMAT_MARKER.decode()
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            SQL("SELECT pg_advisory_xact_lock({})").format(Literal(CREATE_LOCK))
        )
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        )
        tables = {str(row["table_name"]) for row in cursor.fetchall()}
        if not tables and not create:
            raise JournalPathError(
                where,
                f"holds no chronik journal (schema {schema!r} is empty or absent)",
                "Open an ActorSystem on it first, or check the URL",
            )
        if not tables:
            cursor.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema))
            )
            cursor.execute(
                SQL(
                    "CREATE TABLE {}.{} (id integer PRIMARY KEY CHECK (id = 1), "
                    "marker text NOT NULL, version integer NOT NULL)"
                ).format(Identifier(schema), Identifier(FORMAT_TABLE))
            )
            cursor.execute(
                SQL(
                    "INSERT INTO {}.{} (id, marker, version) VALUES (1, %s, %s)"
                ).format(Identifier(schema), Identifier(FORMAT_TABLE)),
                (marker, FORMAT_VERSION),
            )
            return True
        if FORMAT_TABLE not in tables:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise JournalPathError(
                where,
                f"schema {schema!r} holds tables chronik did not make ({shown})",
                "Point the URL at an empty database, or pick a schema of its own "
                "with ?schema=NAME",
            )
        cursor.execute(
            SQL("SELECT marker, version FROM {}.{} WHERE id = 1").format(
                Identifier(schema), Identifier(FORMAT_TABLE)
            )
        )
        row = cursor.fetchone()
    if row is None or row["marker"] != marker:
        raise JournalPathError(
            where,
            f"schema {schema!r} has a {FORMAT_TABLE} table chronik did not write",
            "Point the URL at an empty database, or pick a schema of its own "
            "with ?schema=NAME",
        )
    if int(row["version"]) != FORMAT_VERSION:
        raise JournalPathError(
            where,
            f"holds a chronik journal of format version {row['version']}; this "
            f"chronik reads version {FORMAT_VERSION}",
            "Open it with the chronik release that wrote it",
        )
    return False
