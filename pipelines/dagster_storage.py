"""Dagster's SQLite storage, with the event log's database connections kept between events.

Dagster's SQLite event log creates a SQLAlchemy engine and opens a new database connection
for every event it stores or reads, about five times per event. A no-op `tremplin run`
stores about 1,100 events (every dbt model and test is an asset or an asset check), and
that alone was half of its wall time: the profile is in docs/BENCHMARK.md. Here each
database (the index and the run shards last used) keeps one engine and its connection.
Everything else is Dagster's: same files under `$DAGSTER_HOME/history`, same schema, same
transactions (one per operation, committed as before), same lock around them, so the UI,
the daemon and runs of older versions read and write the same instance.
`deploy/dagster.yaml` selects it; a production instance on PostgreSQL does not need it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Databases whose engine stays open: the index and the shards of the runs being written or
# watched. A webserver browsing old runs closes the least recently used beyond this.
KEPT_ENGINES = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one long-lived engine per recently used database."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool,
                    pool_size=1,  # more only while Dagster creates a database's tables
                    # Used by one thread at a time (the lock above), not always the same one.
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,
                    },
                )
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

    def wipe(self) -> None:
        # The run shards' files are deleted: no connection may outlive them.
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (same directories) with the pooled event log."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
