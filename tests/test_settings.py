"""Settings read from the environment: defaults, and a clear refusal of bad values."""

import os

import pytest

from assets.foundation.settings import get_settings
from pipelines.dbt import dbt_env


def test_build_threads_default_to_one_and_reach_dbt(monkeypatch):
    """One engine thread by default: identical inputs, byte-identical warehouse."""
    monkeypatch.delenv("TREMPLIN_DBT_THREADS", raising=False)
    assert get_settings().dbt_threads == 1
    assert dbt_env(get_settings())["TREMPLIN_DBT_THREADS"] == "1"
    monkeypatch.setenv("TREMPLIN_DBT_THREADS", "2")
    assert dbt_env(get_settings())["TREMPLIN_DBT_THREADS"] == "2"
    monkeypatch.setenv("TREMPLIN_DBT_THREADS", "0")
    with pytest.raises(ValueError, match="TREMPLIN_DBT_THREADS=.*at least 1"):
        get_settings()


def test_dbt_concurrency_defaults_to_the_cores_and_reaches_dbt(monkeypatch):
    monkeypatch.delenv("TREMPLIN_DBT_CONCURRENCY", raising=False)
    assert get_settings().dbt_concurrency == (os.cpu_count() or 1)
    monkeypatch.setenv("TREMPLIN_DBT_CONCURRENCY", "1")
    assert dbt_env(get_settings())["TREMPLIN_DBT_CONCURRENCY"] == "1"
    monkeypatch.setenv("TREMPLIN_DBT_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="TREMPLIN_DBT_CONCURRENCY=.*at least 1"):
        get_settings()
