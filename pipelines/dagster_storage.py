"""Dagster's SQLite storage, with database connections kept between operations.

Dagster's SQLite event log creates a SQLAlchemy engine and opens a new database connection
for every event it stores or reads, about five times per event, and its run storage does
the same for every run operation. A no-op `tremplin run` stores about 1,100 events (every
dbt model and test is an asset or an asset check), and that alone was half of its wall
time: the profile is in docs/BENCHMARK.md. Here each database (the run storage, the event
log's index and the run shards last used) keeps one engine and its connection. Everything
else is Dagster's: same files under `$DAGSTER_HOME/history`, same schema, same transactions
(one per operation, committed as before), same locks, so the UI, the daemon and runs of
older versions read and write the same instance.

The one setting that differs is SQLite's `synchronous`. Dagster puts these databases in
WAL mode and leaves `synchronous=FULL`, so every commit waits for an `fdatasync` of the
WAL; a no-op run committed about 2,900 times, 2.9 ms each on the loaded machine (8.5 s of
its wall time, `strace -f -w -c -e trace=fdatasync tremplin run`). Each connection made
here sets `synchronous=NORMAL`: a commit is written to the WAL without waiting for the
disk, and the WAL is synced at checkpoints. The databases stay consistent after a killed
process or an OS crash; an OS crash or power cut can lose the last run events committed
before it (never a warehouse or export file: tremplin writes and syncs those itself). A new
run shard is put in WAL mode before Dagster creates its tables, so that its dozens of
`CREATE` statements do not each sync a rollback journal.
`deploy/dagster.yaml` selects it; a production instance on PostgreSQL does not need it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Databases whose engine stays open: the index and the shards of the runs being written or
# watched. A webserver browsing old runs closes the least recently used beyond this.
KEPT_ENGINES = 8


def _wal_without_waiting_for_disk(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def kept_engine(conn_string: str) -> Engine:
    """An engine whose one connection stays open between operations (more only while
    several threads use it at once), in WAL mode with `synchronous=NORMAL`."""
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,
        # Used by one thread at a time (the pool hands a connection to one checkout).
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(engine, "connect", _wal_without_waiting_for_disk)
    return engine


class PooledSqliteRunStorage(SqliteRunStorage):
    """SqliteRunStorage with one long-lived engine (Dagster's opens one per operation)."""

    def __init__(self, conn_string: str, inst_data: Any = None) -> None:
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine_lock:
            if self._engine is None:
                self._engine = kept_engine(self._conn_string)
            engine = self._engine
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
        super().dispose()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one long-lived engine per recently used database."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        # Dagster asks before storing every asset event and check (about 600 times in a
        # no-op run), each time through a new engine and connection to the index (Dagster's
        # own: it may be asked while `_connect` holds the lock). A table found stays
        # (migrations add tables, only `wipe` removes the files): asked once.
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = kept_engine(self.conn_string_for_shard(shard))
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            while len(self._engines) > KEPT_ENGINES:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()

    def delete_events(self, run_id: str) -> None:
        """Dagster empties a deleted run's shard but leaves its file (an empty database of a
        few hundred kB, and its WAL): the file goes too, so deleted runs free their space."""
        super().delete_events(run_id)
        with self._db_lock:
            engine = self._engines.pop(run_id, None)
            if engine is not None:
                engine.dispose()
            self._initialized_dbs.discard(run_id)
        path = self.path_for_shard(run_id)
        for name in (path, f"{path}-wal", f"{path}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def wipe(self) -> None:
        # The run shards' files are deleted: no connection may outlive them.
        self._dispose_engines()
        self._tables_present.clear()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (same directories), its run storage and event log
    pooled."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data=inst_data)
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
