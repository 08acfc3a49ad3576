"""Shared test set-up: the dbt manifest exists before anything loads the definitions."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest():
    """`make test` prepares it; a bare `pytest` run prepares it here, once."""
    from pipelines.dbt import dbt_project, prepare_manifest

    path = dbt_project().manifest_path
    if not path.exists():
        prepare_manifest()
    return path
