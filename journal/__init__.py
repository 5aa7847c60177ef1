"""chronik's journal: an eventsourcing persistence module on LMDB.

``Application(env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path})`` stores its
events here. This module exposes exactly one ``InfrastructureFactory`` subclass,
``LMDBFactory``, as eventsourcing's module lookup requires.
"""

from journal._audit import JournalReader, Problem, VerifyReport
from journal._errors import (
    ChronikError,
    EventConflictError,
    JournalClosedError,
    JournalConfigError,
    JournalError,
    JournalFullError,
    JournalPathError,
    StreamIdError,
    TrackingConflictError,
    TrackingValueError,
    UnencodableValueError,
)
from journal._factory import LMDBFactory
from journal._recorders import (
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
    LMDBProcessRecorder,
    LMDBSubscription,
    LMDBTrackingRecorder,
)
from journal._settings import JournalSettings
from journal._store import Journal
from journal._transcoder import MsgpackTranscoder

__all__ = [
    "ChronikError",
    "EventConflictError",
    "Journal",
    "JournalClosedError",
    "JournalConfigError",
    "JournalError",
    "JournalFullError",
    "JournalPathError",
    "JournalReader",
    "JournalSettings",
    "LMDBAggregateRecorder",
    "LMDBApplicationRecorder",
    "LMDBFactory",
    "LMDBProcessRecorder",
    "LMDBSubscription",
    "LMDBTrackingRecorder",
    "MsgpackTranscoder",
    "Problem",
    "StreamIdError",
    "TrackingConflictError",
    "TrackingValueError",
    "UnencodableValueError",
    "VerifyReport",
]
