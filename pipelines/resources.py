"""Access to the warehouse for readers, and the dbt CLI resource.

Readers (exports, `tremplin sql`, analysts) open the DuckDB file read-only; dbt is the
only writer and works on a copy (see `pipelines.dbt.building_copy`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.foundation.settings import Settings, get_settings


class WarehouseUnavailableError(RuntimeError):
    pass


def connect_readonly(settings: Settings | None = None, path: Path | None = None):
    """A read-only DuckDB connection to the warehouse, with a message a user can act on."""
    settings = settings or get_settings()
    path = path or settings.duckdb_path
    if not path.exists():
        raise WarehouseUnavailableError(
            f"warehouse not found at {path}: run `tremplin run` (or `make run`) first"
        )
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseUnavailableError(
            f"cannot open the warehouse {path} read-only: {exc}"
        ) from exc
