"""The dbt project as Dagster assets, and the one way tremplin runs dbt.

dbt never writes the live warehouse file directly: it builds a copy, and the copy
replaces `warehouse.duckdb` only when `dbt build` succeeded (models and tests). A failed
build, a killed process or an analyst holding the file open therefore never leaves a
half-built warehouse behind; the last good one stays in place.

A full build whose inputs (every raw parquet file, the dbt project, the dbt and DuckDB
versions, and the warehouse file the last build swapped in) are unchanged since the last
successful full build is skipped: the models are reported unchanged and the last build's
test results are replayed, labelled as such (see `dbt_fingerprint`).
"""

import importlib.util
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache, cached_property
from graphlib import TopologicalSorter
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
from packaging import version

from assets.foundation.fingerprint import (
    code_digest,
    digest,
    files_digest,
    package_versions,
    read_record,
    remove_record,
    stat_of,
    write_record,
)
from assets.foundation.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings, get_settings
from pipelines.spark_engine import load_spark_tables

WAREHOUSE_POOL = "warehouse"
BUILD_RECORD_KIND = "dbt_build"
# Versions that change what `dbt build` makes of the same project and raw files.
DBT_PACKAGES = ("dbt-core", "dbt-duckdb", "duckdb", "dagster-dbt", "scipy")
# dbt_project/ entries that are outputs or caches of dbt, not inputs.
DBT_PROJECT_IGNORED = {"target", "logs", "__pycache__"}


class ManifestMissingError(RuntimeError):
    pass


@cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_env(settings: Settings, duckdb_path: Path | None = None) -> dict[str, str]:
    """The variables `profiles.yml` and the sources read.

    On DuckDB the sources name the raw files relative to the warehouse file's folder
    (`raw/<slug>/...`), and every connection resolves them there (`file_search_path`,
    `TREMPLIN_DUCKDB_DIR`): the staging views hold no absolute path, so the warehouse file
    moves with its raw folder (`pipelines.resources.connect_readonly` sets the same path).
    Another engine (Spark) gets the absolute folder.
    """
    warehouse_dir = settings.duckdb_path.parent
    raw_dir = str(settings.raw_dir)
    if settings.engine == "duckdb":
        raw_dir = os.path.relpath(settings.raw_dir, warehouse_dir)
    return {
        "TREMPLIN_DUCKDB_PATH": str(duckdb_path or settings.duckdb_path),
        "TREMPLIN_DUCKDB_DIR": str(warehouse_dir),
        "TREMPLIN_RAW_DIR": raw_dir,
        "TREMPLIN_DBT_MEMORY_LIMIT": settings.dbt_memory_limit,
        "TREMPLIN_DBT_THREADS": str(settings.dbt_threads),
        "TREMPLIN_DBT_CONCURRENCY": str(settings.dbt_concurrency),
        # Target `spark` only: its metastore and tables (never the working directory).
        "TREMPLIN_SPARK_DIR": str(settings.spark_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


# profiles.yml target of each engine (assets/foundation/settings.py ENGINES).
ENGINE_TARGETS = {"duckdb": "dev", "spark": "spark"}


class TremplinDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without the two things it does before each build that tremplin
    never uses: `dbt --version` in a subprocess (2 s) to learn the dbt version, which is
    the installed dbt-core's (pinned in pyproject.toml), and a dbt adapter opened in the
    Dagster process (about 3 s of imports and profile loading), used only by
    `fetch_row_counts` / `fetch_column_metadata`. Together 5 s of every embedded build.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args):
        return None


def spark_dbt_resource() -> DbtCliResource:
    """dbt on the `spark` target, through `tremplin-dbt`: the dbt command line with the
    exact quantile functions registered on dbt-spark's session (assets/dbt_spark.py)."""
    executable = Path(sys.executable).with_name("tremplin-dbt")
    return TremplinDbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(executable) if executable.exists() else "tremplin-dbt",
        target=ENGINE_TARGETS["spark"],
    )


def dbt_executable() -> str:
    """dbt from this environment, so `dagster dev` works without dbt on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def prepare_manifest(settings: Settings | None = None) -> Path:
    """Run `dbt parse` (install/test time, never at import).

    It parses with the profile a build uses (the building copy's path): dbt reuses this
    parse in every build (partial parsing) only when the profile is the same.
    """
    settings = settings or get_settings()
    env = {**os.environ, **dbt_env(settings, building_path(settings.duckdb_path))}
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


def compile_models(work_dir: Path, settings: Settings | None = None) -> Path:
    """`dbt compile` of the models into `work_dir` (its own target and a scratch DuckDB
    file, so the warehouse is never opened); returns the compiled manifest, whose nodes
    carry the SQL with every ref resolved (the column lineage reads it).

    The raw folder it names is an empty scratch one: compiling must read no data, so the
    SQL is the same on a fresh clone as beside a built warehouse.
    """
    settings = settings or get_settings()
    work_dir = Path(work_dir)
    env = {**os.environ, **dbt_env(settings, duckdb_path=work_dir / "compile.duckdb")}
    env["TREMPLIN_RAW_DIR"] = str(work_dir / "no-raw-data")
    command = [
        dbt_executable(),
        "compile",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--select",
        "resource_type:model",
        "--quiet",
    ]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return work_dir / "target" / "manifest.json"


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


def building_path(duckdb_path: Path) -> Path:
    """The copy a build works on. One name, always: the write lock admits one build at a
    time, and dbt's partial parsing needs the profile (which names this file) unchanged."""
    return duckdb_path.with_name(f".{duckdb_path.name}.building")


def _remove_leftover_copies(duckdb_path: Path) -> None:
    # A build killed outright (SIGKILL, power loss) leaves its copy behind; the
    # write lock is held, so any copy found now is such a leftover (older builds named
    # theirs `.building-<random>`).
    for stale in duckdb_path.parent.glob(f".{duckdb_path.name}.building*"):
        stale.unlink(missing_ok=True)


@contextmanager
def _building_copy(duckdb_path: Path) -> Iterator[Path]:
    _remove_leftover_copies(duckdb_path)
    tmp = building_path(duckdb_path)
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
    identity = runner_identity()

    class BuildConfig(dg.Config):
        """`full_refresh` rebuilds the incremental models from every period (backfills)."""

        full_refresh: bool = False

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
        name="tremplin_dbt",
    )
    def tremplin_dbt(context: AssetExecutionContext, dbt: DbtCliResource, config: BuildConfig):
        settings = get_settings()
        duckdb_path = settings.duckdb_path
        duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        record_path = build_record_path(duckdb_path)
        # Only a full build is recorded and skipped: a subset's record would not say
        # anything about the models outside it.
        full = _is_full_selection(context)
        with warehouse_write_lock(duckdb_path):
            fingerprint = dbt_fingerprint(settings, identity) if full else None
            record = _unchanged_build(record_path, fingerprint, duckdb_path, context.log)
            if record is not None and not config.full_refresh:
                _remove_leftover_copies(duckdb_path)
                context.log.info(
                    "dbt build skipped: raw files, dbt project and versions unchanged since "
                    "the build of %s, whose warehouse is still in place (%s)",
                    record["recorded_at"],
                    duckdb_path,
                )
                yield from _unchanged_events(context, record)
                return
            remove_record(record_path)
            checks: list[dict] = []
            spark = settings.engine == "spark"
            runner = spark_dbt_resource() if spark else dbt
            with _building_copy(duckdb_path) as tmp, patched_environ(dbt_env(settings, tmp)):
                command = ["build", "--full-refresh"] if config.full_refresh else ["build"]
                invocation = runner.cli(command, context=context)
                try:
                    for event in _dagster_events(invocation, context):
                        if isinstance(event, dg.AssetCheckResult):
                            checks.append(_check_entry(event))
                        yield event
                finally:
                    prune_invocation_dirs(Path(invocation.target_path))
                if spark:
                    # The warehouse file becomes the Spark build: its tables, read from the
                    # Parquet Spark wrote, for the exports and `tremplin sql`.
                    tmp.unlink(missing_ok=True)
                    tables = load_spark_tables(tmp, settings.spark_dir)
                    context.log.info(
                        "%d Spark tables loaded from %s", len(tables), settings.spark_dir
                    )
            # The copy has replaced the warehouse: record what it was built from, with the
            # file's size and mtime so a replaced or restored warehouse is rebuilt.
            if fingerprint is not None:
                write_record(
                    record_path,
                    kind=BUILD_RECORD_KIND,
                    fingerprint=fingerprint,
                    warehouse=stat_of(duckdb_path),
                    run_id=context.run.run_id,
                    models=len(context.selected_asset_keys),
                    checks=checks,
                )
        context.log.info("warehouse replaced: %s", duckdb_path)

    return tremplin_dbt


def _source_test_of(event, manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The manifest node of a finished dbt test on a source, else None."""
    unique_id = event.raw_event["data"].get("node_info", {}).get("unique_id") or ""
    if not unique_id.startswith("test.") or not event.is_result_event:
        return None
    node = manifest["nodes"].get(unique_id)
    parents = node["depends_on"]["nodes"] if node else []
    return node if parents and all(p.startswith("source.") for p in parents) else None


def _dagster_events(invocation, context: AssetExecutionContext) -> Iterator[Any]:
    """dagster-dbt's events for the invocation, with the tests on sources reported our way.

    Source tests are not Dagster checks (see `build_dbt_assets`), yet `dbt build` runs
    them; dagster-dbt would record each as an observation with a warning that it was not
    in the check selection, 83 per build. They are recorded as observations of the raw
    table they test, with their status, without the warning; a failing one still fails the
    build (dbt exits non-zero).
    """
    manifest = invocation.manifest
    translator = invocation.dagster_dbt_translator
    for event in invocation.stream_raw_events():
        node = _source_test_of(event, manifest)
        if node is None:
            yield from event.to_default_asset_events(
                manifest=manifest,
                dagster_dbt_translator=translator,
                context=context,
                target_path=invocation.target_path,
                project=invocation.project,
            )
            continue
        status = str(event.raw_event["data"].get("node_info", {}).get("node_status", ""))
        for parent in node["depends_on"]["nodes"]:
            yield dg.AssetObservation(
                asset_key=translator.get_asset_key(manifest["sources"][parent]),
                metadata={"dbt_source_test": node["name"], "status": status},
            )


def dbt_resource() -> DbtCliResource:
    return TremplinDbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )


# Each dbt invocation gets its own folder under dbt_project/target (compiled SQL, logs,
# run_results.json): about 100 MB nationally, every scheduled run.
KEPT_INVOCATION_DIRS = 5


def prune_invocation_dirs(current: Path, keep: int = KEPT_INVOCATION_DIRS) -> list[Path]:
    """Remove the oldest invocation folders beside `current` (same op-name prefix), keeping
    the `keep` newest, `current` included, for debugging the last builds. Returns what
    was removed."""
    prefix = current.name.split("-", 1)[0] + "-"
    siblings = [
        p for p in current.parent.glob(f"{prefix}*") if p.is_dir() and p.name != current.name
    ]
    siblings.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    removed = siblings[max(keep - 1, 0) :]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


# ------------------------------------------------------------------ unchanged re-runs


def build_record_path(duckdb_path: Path) -> Path:
    """The record of the last successful full build, beside the warehouse file."""
    return duckdb_path.with_name(f".{duckdb_path.name}.build.json")


def raw_files_state(raw_dir: Path) -> list[list]:
    """(relative path, size, mtime_ns) of every published raw parquet file.

    A superset of what the dbt sources read: the `_rejected`, `_staging` and `_published`
    areas and hidden temporary files are left out; any other parquet counts.
    """
    entries = []
    for folder, dirs, names in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        for name in names:
            if name.startswith(".") or not name.endswith(".parquet"):
                continue
            path = Path(folder) / name
            state = stat_of(path)
            if state is not None:
                entries.append([str(path.relative_to(raw_dir)), state["size"], state["mtime_ns"]])
    return sorted(entries)


def dbt_project_digest(project_dir: Path) -> str:
    """Contents of the dbt project's files: models, macros, tests, seeds, dbt_project.yml,
    profiles.yml..., without what dbt writes itself (target/, logs/, hidden files)."""
    files = []
    for folder, dirs, names in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in DBT_PROJECT_IGNORED and not d.startswith(".")]
        files.extend(Path(folder) / n for n in names if not n.startswith("."))
    return files_digest(project_dir, files)


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"module {name} not found")
    return Path(spec.origin).resolve()


def runner_identity() -> dict:
    """This module (how dbt is run), the SQL functions dbt's connections get (the plugin),
    and the dbt / DuckDB / scipy versions, taken when the assets are defined, right after
    the import, so they describe the code that will run."""
    return {
        "runner": code_digest(sys.modules[__name__]),
        # The SQL functions the plugin registers, read as a file: importing them would
        # load scipy whenever the Dagster definitions load.
        "functions": files_digest(PROJECT_ROOT, [_module_file("assets.quantiles")]),
        "versions": package_versions(DBT_PACKAGES),
    }


def dbt_fingerprint(settings: Settings, identity: dict) -> str:
    """What a full `dbt build` depends on, apart from the warehouse file it starts from:
    every raw parquet file, the dbt project files (read by dbt when it runs) and
    `runner_identity()`."""
    return digest(
        {
            # The staging views name the raw files relative to the warehouse file.
            "raw_dir": dbt_env(settings)["TREMPLIN_RAW_DIR"],
            "raw": raw_files_state(settings.raw_dir),
            "project": dbt_project_digest(DBT_PROJECT_DIR),
            **identity,
            # Named only when not the default, so DuckDB builds keep their fingerprints.
            **({"engine": settings.engine} if settings.engine != "duckdb" else {}),
        }
    )


def _is_full_selection(context: AssetExecutionContext) -> bool:
    assets_def = context.assets_def
    return (
        not context.has_partition_key
        and set(context.selected_asset_keys) == set(assets_def.keys)
        and set(context.selected_asset_check_keys) == set(assets_def.check_keys)
    )


def _unchanged_build(
    record_path: Path, fingerprint: str | None, duckdb_path: Path, log
) -> dict | None:
    """The last full build's record when a new build would start from the same inputs and
    the warehouse file is still the one it swapped in; else None."""
    if fingerprint is None:
        return None
    record = read_record(record_path, kind=BUILD_RECORD_KIND)
    if record is None:
        return None
    if record["fingerprint"] != fingerprint:
        log.info("dbt inputs changed since the build of %s: building", record["recorded_at"])
        return None
    if stat_of(duckdb_path) != record.get("warehouse") or not isinstance(
        record.get("checks"), list
    ):
        log.info(
            "%s is not the file the build of %s swapped in: building",
            duckdb_path,
            record["recorded_at"],
        )
        return None
    return record


def _check_entry(event: dg.AssetCheckResult) -> dict:
    """What a replay needs of a dbt test's result."""
    metadata = {}
    for name, value in (event.metadata or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, str | int | bool) or (isinstance(raw, float) and math.isfinite(raw)):
            metadata[name] = raw
    severity = event.severity.value if event.severity is not None else "ERROR"
    return {
        "asset": list(event.asset_key.path) if event.asset_key else None,
        "name": event.check_name,
        "passed": bool(event.passed),
        "severity": severity,
        "description": event.description or "",
        "metadata": metadata,
    }


def _unchanged_events(context: AssetExecutionContext, record: dict) -> Iterator[Any]:
    """Every selected model reported unchanged (in dependency order, as Dagster wants),
    then the last build's test results, replayed and labelled as such."""
    when = record["recorded_at"]
    selected = set(context.selected_asset_keys)
    specs = {spec.key: spec for spec in context.assets_def.specs}
    graph = {
        key: {dep.asset_key for dep in specs[key].deps if dep.asset_key in selected}
        for key in sorted(selected, key=lambda k: k.to_user_string())
    }
    for key in TopologicalSorter(graph).static_order():
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "unchanged": True,
                "built_at": when,
                "build_run_id": record.get("run_id") or "",
            },
        )
    wanted = set(context.selected_asset_check_keys)
    for entry in record["checks"]:
        if not isinstance(entry, dict) or not entry.get("asset") or not entry.get("name"):
            continue
        asset_key = dg.AssetKey(entry["asset"])
        if dg.AssetCheckKey(asset_key, entry["name"]) not in wanted:
            continue
        outcome = "passed" if entry["passed"] else "failed"
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=entry["name"],
            passed=bool(entry["passed"]),
            severity=dg.AssetCheckSeverity(entry.get("severity", "ERROR")),
            description=f"not re-run: the inputs are unchanged since the dbt build of {when}, "
            f"where this test {outcome}"
            + (f": {entry['description']}" if entry.get("description") else ""),
            metadata={**entry.get("metadata", {}), "unchanged": True, "built_at": when},
        )
