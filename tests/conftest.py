"""Shared test set-up: the dbt manifest exists before anything loads the definitions."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
