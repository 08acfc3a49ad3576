"""Shared test set-up: the dbt manifest exists before anything loads the definitions."""

from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def _project_logger_level():
    """The fuzz benches quieten the `assets` loggers; a later test in the same worker must
    still see their warnings (the console and landing tests read them)."""
    logger = logging.getLogger("assets")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest():
    """`make test` prepares it; a bare `pytest` run (re)prepares it here when stale."""
    from pipelines.dbt import dbt_project, prepare_manifest

    path = dbt_project().manifest_path
    sources = [
        p
        for p in path.parents[1].rglob("*")
        if p.suffix in {".sql", ".yml"} and "target" not in p.parts
    ]
    if not path.exists() or max(p.stat().st_mtime for p in sources) > path.stat().st_mtime:
        prepare_manifest()
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty warehouse and mirror under tmp_path, the default automation, mirror mode."""
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("TREMPLIN_AUTOMATION", "")
    monkeypatch.delenv("TREMPLIN_MODE", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def defs():
    """The real definitions, without operator overrides of schedules."""
    from pipelines.definitions import build_definitions

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TREMPLIN_AUTOMATION", "")
        return build_definitions()


@pytest.fixture(scope="session")
def postgres_dsn():
    """A throw-away PostgreSQL server on 127.0.0.1 (Debian's binaries, installed when
    missing), stopped at the end of the session; tests marked `postgres` use it."""
    from assets.serving.pg_server import ServerUnavailableError, start_server

    try:
        server = start_server()
    except ServerUnavailableError as exc:
        pytest.skip(f"no PostgreSQL server binaries: {exc}")
    yield server.dsn
    server.stop()
