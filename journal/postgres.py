"""The eventsourcing infrastructure factory for ``PERSISTENCE_MODULE=journal.postgres``.

It reads the library's ``POSTGRES_*`` settings (``POSTGRES_DBNAME``,
``POSTGRES_HOST``, ``POSTGRES_PORT``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``,
``POSTGRES_SCHEMA``, pool sizes and timeouts), with two chronik defaults: stream ids
are text (``ORIGINATOR_ID_TYPE=text``) and states are msgpack (chronik's transcoder).
Unless ``CREATE_TABLE`` says no, the schema and tables are created when recorders
are made. This module exposes exactly one ``InfrastructureFactory`` subclass, as
eventsourcing's module lookup requires (so the library's factory is reached
through its module, never imported by name).
"""

from __future__ import annotations

from eventsourcing import postgres as _library
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import Environment, EnvType

from journal._location import with_tcp_settings
from journal._postgres import (
    PostgresJournalProcessRecorder,
    PostgresJournalRecorder,
    PostgresSnapshotRecorder,
    create_schema,
)
from journal._transcoder import MsgpackTranscoder

__all__ = ["PostgresJournalFactory"]


class PostgresJournalFactory(_library.PostgresFactory):
    """Builds chronik's PostgreSQL recorders on one connection pool."""

    aggregate_recorder_class = PostgresSnapshotRecorder
    application_recorder_class = PostgresJournalRecorder
    process_recorder_class = PostgresJournalProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.env.get(self.ORIGINATOR_ID_TYPE) is None:
            # The library's default is uuid. Its datastore reads this only when a
            # recorder is made, and none has been yet.
            self.datastore.originator_id_type = "text"
        with_tcp_settings(self.datastore)
        if self.env_create_table():
            create_schema(self.datastore)

    def transcoder(self) -> Transcoder:
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return MsgpackTranscoder()
