"""The dbt project as Dagster assets, and the one way tremplin runs dbt.

dbt never writes the live warehouse file directly: it builds a copy, and the copy
replaces `warehouse.duckdb` only when `dbt build` succeeded (models and tests). A failed
build, a killed process or an analyst holding the file open therefore never leaves a
half-built warehouse behind; the last good one stays in place.
"""

import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from pipelines.settings import DBT_PROJECT_DIR, Settings, get_settings

WAREHOUSE_POOL = "warehouse"


class ManifestMissingError(RuntimeError):
    pass


@cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_env(settings: Settings, duckdb_path: Path | None = None) -> dict[str, str]:
    """The variables `profiles.yml` and the sources read."""
    return {
        "TREMPLIN_DUCKDB_PATH": str(duckdb_path or settings.duckdb_path),
        "TREMPLIN_RAW_DIR": str(settings.raw_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt_executable() -> str:
    """dbt from this environment, so `dagster dev` works without dbt on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def prepare_manifest(settings: Settings | None = None) -> Path:
    """Run `dbt parse` (install/test time, never at import)."""
    settings = settings or get_settings()
    env = {**os.environ, **dbt_env(settings)}
    command = [
        dbt_executable(),
        "parse",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--quiet",
    ]
    subprocess.run(command, env=env, check=True)
    return DBT_PROJECT_DIR / "target" / "manifest.json"


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def warehouse_write_lock(duckdb_path: Path) -> Iterator[None]:
    """Hold the one-writer lock of the warehouse file across processes.

    The Dagster pool serialises steps of runs launched by one instance; this lock also
    covers a `tremplin run` next to the daemon, two CLI runs, or an ephemeral instance. Two
    builds copying the same warehouse and swapping their copies in would lose one
    build's changes (and one would delete the other's copy as a leftover).
    """
    import fcntl

    lock_path = duckdb_path.with_name(f".{duckdb_path.name}.lock")
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.getLogger(__name__).warning(
                "%s is being rebuilt by another run; waiting for it to finish", duckdb_path
            )
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def building_copy(duckdb_path: Path) -> Iterator[Path]:
    """Yield a private copy of the warehouse; it replaces the original on clean exit."""
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with warehouse_write_lock(duckdb_path), _building_copy(duckdb_path) as tmp:
        yield tmp


@contextmanager
def _building_copy(duckdb_path: Path) -> Iterator[Path]:
    # A build killed outright (SIGKILL, power loss) leaves its copy behind; the
    # write lock is held, so any copy found now is such a leftover.
    for stale in duckdb_path.parent.glob(f".{duckdb_path.name}.building-*"):
        stale.unlink(missing_ok=True)
    tmp = duckdb_path.with_name(f".{duckdb_path.name}.building-{uuid.uuid4().hex[:8]}")
    if duckdb_path.exists():
        shutil.copy2(duckdb_path, tmp)
    try:
        yield tmp
        os.replace(tmp, duckdb_path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)


class TremplinDbtTranslator(DagsterDbtTranslator):
    """Sources keep the raw asset keys `[slug, table]`; models are grouped by layer."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "model":
            fqn = dbt_resource_props.get("fqn", [])
            return fqn[1] if len(fqn) > 2 else "models"
        return super().get_group_name(dbt_resource_props)


def build_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()
    if not project.manifest_path.exists():
        raise ManifestMissingError(
            f"dbt manifest not found at {project.manifest_path}: run `make setup` "
            "or `tremplin manifest` (dbt parse) first"
        )
    # dbt source tests are not turned into Dagster checks on the raw assets: the raw
    # tables already carry their blocking GX contract, and as checks they would start a
    # dbt process for every ingest-only run. They still run inside `dbt build`.
    translator = TremplinDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=False)
    )

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
        name="tremplin_dbt",
    )
    def tremplin_dbt(context: AssetExecutionContext, dbt: DbtCliResource):
        settings = get_settings()
        with (
            building_copy(settings.duckdb_path) as tmp,
            patched_environ(dbt_env(settings, tmp)),
        ):
            yield from dbt.cli(["build"], context=context).stream()
        context.log.info("warehouse replaced: %s", settings.duckdb_path)

    return tremplin_dbt


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )
