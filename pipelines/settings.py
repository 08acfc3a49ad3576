"""Every path and environment variable tremplin reads, in one place.

Settings are read when `get_settings()` is called, never at import, so tests and the CLI
can point the whole pipeline at another warehouse by setting environment variables first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

MODES = ("mirror", "live")


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the data plane and the fetch mode."""

    warehouse_dir: Path
    mirror_dir: Path
    mode: str
    duckdb_path: Path
    http_timeout_s: float
    max_download_bytes: int
    http_retries: int = 4
    http_backoff_s: float = 1.0

    @property
    def landing_dir(self) -> Path:
        return self.warehouse_dir / "landing"

    @property
    def raw_dir(self) -> Path:
        return self.warehouse_dir / "raw"

    @property
    def exports_dir(self) -> Path:
        return self.warehouse_dir / "exports"

    @property
    def run_log_dir(self) -> Path:
        return self.warehouse_dir / "runs"


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    """Read the environment now.

    TREMPLIN_WAREHOUSE_DIR  root of the data plane (default: <project>/warehouse)
    TREMPLIN_MIRROR         directory laid out as mirror/<slug>/<file> (default: the
                            committed embedded mirror, <project>/warehouse/mirror)
    TREMPLIN_MODE           "mirror" (default) or "live" (the publishers' URLs)
    TREMPLIN_DUCKDB_PATH    the warehouse file (default: <warehouse dir>/warehouse.duckdb)
    TREMPLIN_HTTP_TIMEOUT   read timeout in seconds for downloads (default 60)
    TREMPLIN_MAX_DOWNLOAD_MB  size cap of one download (default 512)
    TREMPLIN_HTTP_RETRIES   extra attempts after a transient HTTP failure (default 4)
    TREMPLIN_HTTP_BACKOFF   first backoff delay in seconds, doubled each retry (default 1)
    """
    warehouse_dir = _path("TREMPLIN_WAREHOUSE_DIR", PROJECT_ROOT / "warehouse")
    mode = os.environ.get("TREMPLIN_MODE", "mirror").strip().lower() or "mirror"
    if mode not in MODES:
        raise ValueError(f"TREMPLIN_MODE must be one of {MODES}, got {mode!r}")
    return Settings(
        warehouse_dir=warehouse_dir,
        mirror_dir=_path("TREMPLIN_MIRROR", PROJECT_ROOT / "warehouse" / "mirror"),
        mode=mode,
        duckdb_path=_path("TREMPLIN_DUCKDB_PATH", warehouse_dir / "warehouse.duckdb"),
        http_timeout_s=float(os.environ.get("TREMPLIN_HTTP_TIMEOUT", "60")),
        max_download_bytes=int(float(os.environ.get("TREMPLIN_MAX_DOWNLOAD_MB", "512")) * 2**20),
        http_retries=int(os.environ.get("TREMPLIN_HTTP_RETRIES", "4")),
        http_backoff_s=float(os.environ.get("TREMPLIN_HTTP_BACKOFF", "1")),
    )
