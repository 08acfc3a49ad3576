"""The dbt resource starts a build without `dbt --version` and without an adapter in the
Dagster process (pipelines/dbt.py, TremplinDbtCliResource)."""

import dagster_dbt.core.resource
from dbt.version import __version__ as installed_dbt

from pipelines.dbt import dbt_resource, spark_dbt_resource


def test_the_dbt_version_comes_from_the_installed_package(monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_subprocess)
    for resource in (dbt_resource(), spark_dbt_resource()):
        assert str(resource._cli_version) == installed_dbt
        assert resource._cli_version.major < 2  # dbt Core, not the Fusion engine


def test_no_dbt_adapter_is_opened_in_the_dagster_process():
    assert dbt_resource()._initialize_dbt_core_adapter(["build"]) is None
