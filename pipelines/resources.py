"""Access to the warehouse for readers, and the dbt CLI resource.

Readers (exports, `tremplin sql`, analysts) open the DuckDB file read-only; dbt is the
only writer and works on a copy (see `pipelines.dbt.building_copy`).
"""

from __future__ import annotations

import os
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
        con = duckdb.connect(str(path), read_only=True)
        # The staging views name the raw files relative to the warehouse file's folder
        # (pipelines/dbt.py::dbt_env): resolved from there, wherever the file was copied.
        con.execute("SET file_search_path = $dir", {"dir": str(path.resolve().parent)})
        return con
    except duckdb.Error as exc:
        raise WarehouseUnavailableError(
            f"cannot open the warehouse {path} read-only: {exc}"
        ) from exc


def connect_confined(settings: Settings | None = None):
    """A read-only connection for queries typed by a person (`tremplin sql`).

    Besides being read-only, it reads no file but the raw Parquet the staging views select
    from: external access is off except for the raw directory, extensions can be neither
    installed nor loaded, and the configuration is locked so that a statement cannot undo
    any of it (`SET enable_external_access = true` is refused).
    """
    settings = settings or get_settings()
    con = connect_readonly(settings)
    raw = settings.raw_dir
    # The staging views name their files relative to the warehouse file's folder (`raw/...`,
    # resolved through file_search_path): that prefix, as written, is allowed too.
    relative = os.path.relpath(raw, settings.duckdb_path.parent)
    allowed = sorted({f"{raw}/", f"{raw.resolve()}/", f"{relative}/"})
    try:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET allowed_directories = $dirs", {"dirs": allowed})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise WarehouseUnavailableError(
            f"cannot confine the warehouse session to {raw}: {exc}"
        ) from exc
    return con
