"""Bad paths and settings get clear errors; the map grows, or stops at its cap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import lmdb
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder, StoredEvent

from journal import (
    Journal,
    JournalClosedError,
    JournalConfigError,
    JournalFullError,
    JournalPathError,
    JournalReader,
    JournalSettings,
    LMDBApplicationRecorder,
    LMDBFactory,
    MsgpackTranscoder,
    StreamIdError,
)


def _event(
    originator_id: uuid.UUID | str, version: int, size: int = 100
) -> StoredEvent:
    return StoredEvent(originator_id, version, "topic", os.urandom(size))


def test_factory_without_lmdb_path_says_lmdb_path_is_required() -> None:
    with pytest.raises(JournalConfigError, match="LMDB_PATH"):
        InfrastructureFactory.construct({"PERSISTENCE_MODULE": "journal"})


def test_application_on_journal_module_uses_lmdb_factory(tmp_path: Path) -> None:
    app = Application(env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(tmp_path)})
    try:
        assert isinstance(app.factory, LMDBFactory)
        assert isinstance(app.recorder, LMDBApplicationRecorder)
    finally:
        app.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("LMDB_MAP_SIZE", "lots"), ("LMDB_MAX_READERS", "0"), ("LMDB_SYNC", "maybe")],
)
def test_bad_setting_names_the_setting_and_value(
    tmp_path: Path, name: str, value: str
) -> None:
    env = {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(tmp_path), name: value}
    with pytest.raises(JournalConfigError) as raised:
        InfrastructureFactory.construct(env)
    assert name in str(raised.value)
    assert value in str(raised.value)
    assert not (tmp_path / "data.mdb").exists()


def test_cap_below_initial_map_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(JournalConfigError, match="LMDB_MAX_MAP_SIZE"):
        JournalSettings(str(tmp_path), map_size=1 << 20, max_map_size=1 << 19)


def test_path_that_is_a_file_is_rejected_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    path.write_text("not a journal")
    with pytest.raises(JournalPathError) as raised:
        Journal.open(str(path))
    assert str(path) in str(raised.value)
    assert "is a file" in str(raised.value)
    assert path.read_text() == "not a journal"


def test_directory_with_foreign_lmdb_database_is_rejected_untouched(
    tmp_path: Path,
) -> None:
    env = lmdb.open(str(tmp_path))
    with env.begin(write=True) as txn:
        txn.put(b"theirs", b"data")
    env.close()
    before = (tmp_path / "data.mdb").read_bytes()
    with pytest.raises(JournalPathError, match="did not make"):
        Journal.open(str(tmp_path))
    assert (tmp_path / "data.mdb").read_bytes() == before


def test_directory_with_other_files_and_no_journal_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JournalPathError, match="empty or new directory"):
        Journal.open(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_journal_of_another_format_version_is_rejected(tmp_path: Path) -> None:
    Journal.open(str(tmp_path)).close()
    env = lmdb.open(str(tmp_path), max_dbs=4)
    meta = env.open_db(b"chronik:meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"version", b"99")
    env.close()
    with pytest.raises(JournalPathError, match="format version 99"):
        Journal.open(str(tmp_path))


def test_unwritable_location_is_rejected_with_what_to_do() -> None:
    with pytest.raises(JournalPathError) as raised:
        Journal.open("/sys/chronik-journal")
    assert "/sys/chronik-journal" in str(raised.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o555)
    try:
        with pytest.raises(JournalPathError, match="cannot be written"):
            Journal.open(str(path / "journal"))
    finally:
        path.chmod(0o755)


def test_audit_reader_on_missing_journal_says_so(tmp_path: Path) -> None:
    with pytest.raises(JournalPathError, match="holds no journal"):
        JournalReader(str(tmp_path / "nothing"))


def test_stream_id_too_long_is_rejected_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with Journal.open(str(tmp_path)) as journal:
        recorder = LMDBApplicationRecorder(journal)
        with pytest.raises(StreamIdError, match="shorter id"):
            recorder.insert_events([_event("x" * 600, 1)])
        assert recorder.max_notification_id() is None


def test_same_path_opened_twice_shares_one_environment(tmp_path: Path) -> None:
    first = Journal.open(str(tmp_path))
    second = Journal.open(str(tmp_path / "."))
    assert first.store is second.store
    first.close()
    LMDBApplicationRecorder(second).insert_events([_event(uuid.uuid4(), 1)])
    second.close()
    assert second.closed


def test_different_durability_for_an_open_path_is_rejected(tmp_path: Path) -> None:
    with (
        Journal.open(JournalSettings(str(tmp_path), sync=True)),
        pytest.raises(JournalConfigError, match="LMDB_SYNC"),
    ):
        Journal.open(JournalSettings(str(tmp_path), sync=False))


def test_map_grows_when_full(tmp_path: Path) -> None:
    settings = JournalSettings(str(tmp_path), map_size=256 * 1024)
    with Journal.open(settings) as journal:
        recorder = LMDBApplicationRecorder(journal)
        stream = uuid.uuid4()
        for batch in range(40):
            recorder.insert_events(
                [_event(stream, batch * 10 + i, 2000) for i in range(10)]
            )
        assert journal.store.env.info()["map_size"] > 256 * 1024
        assert len(recorder.select_events(stream)) == 400


def test_full_map_at_its_cap_fails_the_write_whole_and_keeps_the_journal(
    tmp_path: Path,
) -> None:
    settings = JournalSettings(
        str(tmp_path), map_size=256 * 1024, max_map_size=512 * 1024
    )
    with Journal.open(settings) as journal:
        recorder = LMDBApplicationRecorder(journal)
        stream = uuid.uuid4()
        version = 0

        def append_until_full() -> None:
            nonlocal version
            while True:
                recorder.insert_events(
                    [_event(stream, version + i, 4000) for i in range(5)]
                )
                version += 5

        with pytest.raises(JournalFullError) as raised:
            append_until_full()
        assert "LMDB_MAX_MAP_SIZE" in str(raised.value)
        stored = recorder.select_events(stream)
        assert (
            len(stored) == version
        )  # every acknowledged batch, no part of the failed one
        assert recorder.max_notification_id() == version
    with JournalReader(str(tmp_path)) as reader:
        assert reader.verify().ok


def test_map_grown_by_another_process_is_adopted(tmp_path: Path) -> None:
    settings = JournalSettings(str(tmp_path), map_size=256 * 1024)
    with Journal.open(settings) as journal:
        recorder = LMDBApplicationRecorder(journal)
        recorder.insert_events([_event("here", 1)])
        script = textwrap.dedent(
            f"""
            import os
            from eventsourcing.persistence import StoredEvent
            from journal import Journal, JournalSettings, LMDBApplicationRecorder
            settings = JournalSettings({str(tmp_path)!r}, map_size=256 * 1024)
            with Journal.open(settings) as j:
                r = LMDBApplicationRecorder(j)
                for b in range(60):
                    r.insert_events(
                        [StoredEvent("there", b * 10 + i, "t", os.urandom(2000))
                         for i in range(10)]
                    )
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        assert len(recorder.select_events("there")) == 600
        recorder.insert_events([_event("here", 2)])
        assert recorder.max_notification_id() == 602


def test_msgpack_is_the_default_transcoder_and_transcoder_topic_overrides_it(
    tmp_path: Path,
) -> None:
    env = {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(tmp_path)}
    app = Application(env=env)
    json_app = Application(
        env={**env, "TRANSCODER_TOPIC": "eventsourcing.persistence:JSONTranscoder"}
    )
    try:
        assert type(app.mapper.transcoder) is MsgpackTranscoder
        assert type(json_app.mapper.transcoder) is JSONTranscoder
    finally:
        app.close()
        json_app.close()


def test_max_readers_and_durability_settings_reach_lmdb(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "journal",
        "LMDB_PATH": str(tmp_path),
        "LMDB_MAX_READERS": "300",
        "LMDB_SYNC": "no",
    }
    factory = InfrastructureFactory.construct(env)
    try:
        assert isinstance(factory, LMDBFactory)
        assert factory.journal.store.env.max_readers() == 300
        assert factory.settings.sync is False
        assert (factory.journal.store.env.flags()["sync"]) is False
    finally:
        factory.close()


def test_recorder_of_a_closed_journal_says_it_is_closed(tmp_path: Path) -> None:
    journal = Journal.open(str(tmp_path))
    recorder = LMDBApplicationRecorder(journal)
    journal.close()
    with pytest.raises(JournalClosedError, match="is closed"):
        recorder.insert_events([_event("late", 1)])
