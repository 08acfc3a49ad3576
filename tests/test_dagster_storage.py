"""The Dagster instance of deploy/dagster.yaml: SQLite storage with pooled event-log
connections (pipelines/dagster_storage.py). Runs recorded through it are read back by
another instance on the same directory, as the UI reads what `tremplin run` wrote, and it
keeps a bounded number of databases open."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from pipelines.dagster_storage import (
    KEPT_ENGINES,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
)

ROOT = Path(__file__).resolve().parents[1]
PRAGMAS = ("journal_mode", "synchronous")


@dg.asset
def tiny() -> int:
    return 1


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def test_runs_recorded_through_the_pooled_log_are_read_by_another_process(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _instance(home)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    runs = KEPT_ENGINES + 3
    for _ in range(runs):
        assert dg.materialize([tiny], instance=instance).success
    # The index and the shards of the last runs stay open; older ones were closed.
    assert len(instance.event_log_storage._engines) <= KEPT_ENGINES

    reader = """
import sys, dagster as dg
instance = dg.DagsterInstance.from_config(sys.argv[1])
event = instance.get_latest_materialization_event(dg.AssetKey("tiny"))
print(len(instance.get_run_records()), event is not None)
"""
    out = subprocess.run(
        [sys.executable, "-c", reader, str(home)],
        env={"DAGSTER_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    assert out == [str(runs), "True"]

    # Written after another process opened the same files: still visible here.
    assert dg.materialize([tiny], instance=instance).success
    assert len(instance.get_run_records()) == runs + 1
    instance.wipe()  # deletes the run shards: no engine on them may survive
    assert set(instance.event_log_storage._engines) <= {"index"}
    assert dg.materialize([tiny], instance=instance).success
    assert len(instance.get_run_records()) == 1
    instance.dispose()


def test_every_database_commits_in_wal_without_waiting_for_the_disk(tmp_path, monkeypatch):
    """Run storage, index and a new run's shard: kept connections in WAL mode with
    `synchronous=NORMAL` (1), the shard in WAL from its first table on; asking whether a
    table exists goes to the database once, not once per event."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = _instance(home)
    assert isinstance(instance.run_storage, PooledSqliteRunStorage)
    asked = []
    original = SqliteEventLogStorage.has_table
    monkeypatch.setattr(
        SqliteEventLogStorage,
        "has_table",
        lambda self, name: asked.append(name) or original(self, name),
    )
    for _ in range(3):
        run_id = dg.materialize([tiny], instance=instance).run_id
    assert asked and len(asked) == len(set(asked))
    storage = instance.event_log_storage
    with instance.run_storage.connect() as conn:
        settings = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in PRAGMAS]
        assert settings == ["wal", 1]
    for shard in ("index", run_id):
        with storage._connect(shard) as conn:
            settings = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in PRAGMAS]
            assert settings == ["wal", 1], shard
    # Another process (Dagster's own storage: the UI) reads what was written.
    fresh = dg.DagsterInstance.from_config(str(home))
    assert len(fresh.get_run_records()) == 3
    instance.dispose()
    fresh.dispose()
