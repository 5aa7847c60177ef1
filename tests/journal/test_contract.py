"""eventsourcing's own recorder contract suites, run against the LMDB journal."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from journal import (
    Journal,
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
    LMDBFactory,
    LMDBProcessRecorder,
    LMDBTrackingRecorder,
)


class _OnTemporaryJournal:
    """Each test gets a fresh journal directory, closed and removed afterwards."""

    def setUp(self) -> None:
        self.path = tempfile.mkdtemp(prefix="chronik-contract-")
        self.journals: list[Journal] = []
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        for journal in self.journals:
            journal.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def open_journal(self) -> Journal:
        journal = Journal.open(self.path)
        self.journals.append(journal)
        return journal


class TestAggregateRecorder(_OnTemporaryJournal, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return LMDBAggregateRecorder(self.open_journal(), "events")


class TestSnapshotRecorderWithStrIds(_OnTemporaryJournal, AggregateRecorderTestCase):
    def new_originator_id(self) -> str:
        import uuid

        return f"order-{uuid.uuid4()}"

    def create_recorder(self) -> AggregateRecorder:
        return LMDBAggregateRecorder(self.open_journal(), "snapshots")


class TestApplicationRecorder(_OnTemporaryJournal, ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> ApplicationRecorder:
        return LMDBApplicationRecorder(self.open_journal())

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestTrackingRecorder(_OnTemporaryJournal, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return LMDBTrackingRecorder(self.open_journal())


class TestProcessRecorder(_OnTemporaryJournal, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return LMDBProcessRecorder(self.open_journal())


class TestNonInterleavingNotificationIDs(
    _OnTemporaryJournal, NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return LMDBApplicationRecorder(self.open_journal())


class _LMDBTrackingRecorderSubclass(LMDBTrackingRecorder):
    pass


class TestInfrastructureFactory(InfrastructureFactoryTestCase[LMDBFactory]):
    def setUp(self) -> None:
        self.path = tempfile.mkdtemp(prefix="chronik-factory-")
        self.env = Environment(
            "TestCase", {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": self.path}
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.path, ignore_errors=True)

    def expected_factory_class(self) -> type[LMDBFactory]:
        return LMDBFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return LMDBAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return LMDBApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return LMDBTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _LMDBTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return LMDBProcessRecorder


del AggregateRecorderTestCase
del ApplicationRecorderTestCase
del TrackingRecorderTestCase
del ProcessRecorderTestCase
del NonInterleavingNotificationIDsBaseCase
del InfrastructureFactoryTestCase
