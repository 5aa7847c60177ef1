"""The eventsourcing infrastructure factory for ``PERSISTENCE_MODULE=journal``."""

from __future__ import annotations

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from journal._errors import JournalConfigError
from journal._recorders import (
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
    LMDBProcessRecorder,
    LMDBTrackingRecorder,
)
from journal._settings import JournalSettings
from journal._store import Journal
from journal._transcoder import MsgpackTranscoder

__all__ = ["LMDBFactory"]


class LMDBFactory(InfrastructureFactory[LMDBTrackingRecorder]):
    """Builds LMDB recorders on the journal at ``LMDB_PATH``.

    The factory holds one handle on the journal for its whole life; ``close()``
    releases it (recorders made by a closed factory raise ``JournalClosedError``
    once no other handle keeps the journal open).
    """

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.settings = JournalSettings.from_env(self.env)
        self.journal = Journal.open(self.settings)

    def transcoder(self) -> Transcoder:
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return MsgpackTranscoder()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return LMDBAggregateRecorder(self.journal, purpose)

    def application_recorder(self) -> ApplicationRecorder:
        return LMDBApplicationRecorder(self.journal)

    def tracking_recorder(
        self, tracking_recorder_class: type[LMDBTrackingRecorder] | None = None
    ) -> LMDBTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = (
                resolve_topic(topic) if topic else LMDBTrackingRecorder
            )
        if not (
            isinstance(tracking_recorder_class, type)
            and issubclass(tracking_recorder_class, LMDBTrackingRecorder)
        ):
            raise JournalConfigError(
                self.TRACKING_RECORDER_TOPIC,
                tracking_recorder_class,
                "must name a subclass of journal.LMDBTrackingRecorder",
            )
        return tracking_recorder_class(self.journal)

    def process_recorder(self) -> ProcessRecorder:
        return LMDBProcessRecorder(self.journal)

    def close(self) -> None:
        self.journal.close()
        super().close()
