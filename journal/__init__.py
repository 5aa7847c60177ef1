"""chronik's journal: an eventsourcing persistence module on LMDB.

``Application(env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path})`` stores its
events here. This module exposes exactly one ``InfrastructureFactory`` subclass,
``LMDBFactory``, as eventsourcing's module lookup requires.
"""

from chronik_errors import ChronikError
from journal._audit import JournalReader, Problem, VerifyReport
from journal._converters import Converter, ConverterLike, converter_for, default_name
from journal._errors import (
    ConverterDecodeError,
    ConverterEncodeError,
    DuplicateConverterError,
    EventConflictError,
    FencedOutError,
    JournalClosedError,
    JournalConfigError,
    JournalError,
    JournalFullError,
    JournalPathError,
    LeaseSettingError,
    StreamIdError,
    TrackingConflictError,
    TrackingValueError,
    UnencodableValueError,
    UnknownTypeNameError,
    UnsupportedTypeError,
)
from journal._factory import LMDBFactory
from journal._groupcommit import CommitStats
from journal._leases import (
    PARTITIONS,
    Fence,
    Lease,
    Leases,
    LeaseStorage,
    LeaseTable,
    LmdbLeaseStorage,
    partition_of,
)
from journal._location import LmdbLocation, PostgresLocation, parse_location
from journal._readers import AnyJournalReader, open_reader
from journal._recorders import (
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
    LMDBProcessRecorder,
    LMDBSubscription,
    LMDBTrackingRecorder,
)
from journal._settings import JournalSettings
from journal._stats import (
    JournalFigures,
    journal_figures,
    publish_stats,
    read_stats,
    remove_stats,
)
from journal._store import Journal
from journal._transcoder import MsgpackTranscoder

__all__ = [
    "PARTITIONS",
    "AnyJournalReader",
    "ChronikError",
    "CommitStats",
    "Converter",
    "ConverterDecodeError",
    "ConverterEncodeError",
    "ConverterLike",
    "DuplicateConverterError",
    "EventConflictError",
    "Fence",
    "FencedOutError",
    "Journal",
    "JournalClosedError",
    "JournalConfigError",
    "JournalError",
    "JournalFigures",
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
    "Lease",
    "LeaseSettingError",
    "LeaseStorage",
    "LeaseTable",
    "Leases",
    "LmdbLeaseStorage",
    "LmdbLocation",
    "MsgpackTranscoder",
    "PostgresLocation",
    "Problem",
    "StreamIdError",
    "TrackingConflictError",
    "TrackingValueError",
    "UnencodableValueError",
    "UnknownTypeNameError",
    "UnsupportedTypeError",
    "VerifyReport",
    "converter_for",
    "default_name",
    "journal_figures",
    "open_reader",
    "parse_location",
    "partition_of",
    "publish_stats",
    "read_stats",
    "remove_stats",
]
