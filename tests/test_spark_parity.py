"""The same dbt project on Spark: a build of the embedded mirror on both engines, compared.

Raw Parquet from the real parsers (tests/dbt_fixtures.py), then dbt on DuckDB and on Spark
(dbt-spark, local pyspark session on two cores, through `tremplin-dbt`, which registers the
exact quantile functions on the session). Every mart and diagnostic table must be equal row
for row: same columns, same keys, numbers to a relative 1e-9, lists and structs member by
member (`pipelines.spark_engine.compare_builds`). Then the export reads the Spark-built
tables (`load_spark_tables`) through the same export code.

Two depths, both marked `spark` (`pytest -m spark` runs them alone):

* in `make test`, every model and seed on both engines (`dbt build` without the data
  tests): the parity of the tables and the export, in the few minutes CI can give;
* with TREMPLIN_TEST_SPARK_FULL=1 (`make test-spark`), `dbt build` with every data test on
  Spark as well, which takes some 20 minutes on two cores (figures in docs/DESIGN.md,
  Engines); the default run skips the data-test check with that reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dbt_fixtures import repeat_api_rows, write_raw_fixtures

from assets.dbt_spark import JavaNotFoundError, resolve_java
from pipelines.spark_engine import (
    WITHOUT_TESTS,
    compare_builds,
    load_spark_tables,
    spark_table_dirs,
)

pytestmark = pytest.mark.spark

FULL = (
    "the data tests on Spark are opt-in: the whole-project Spark build (334 nodes, local[2]) "
    "took 20 min at load 5-11 on two shared cores (38 min at load 10-30); it passed on "
    "2026-12-03 in 23 min 46 s. Run it: make test-spark (TREMPLIN_TEST_SPARK_FULL=1); see "
    "docs/DESIGN.md, Engines"
)


ROOT = Path(__file__).resolve().parent.parent
REPEATED_ROWS = "_row_number <= 3"
MARCHE_STAGING = "stg_francetravail_marche_travail__indicators"
PROJECT = ROOT / "dbt_project"
# The whole build took 20-38 min on two loaded cores; models and seeds alone about 5 min.
FULL_TIMEOUT_S, MODELS_TIMEOUT_S = 5400, 1800


def _full() -> bool:
    return bool(os.environ.get("TREMPLIN_TEST_SPARK_FULL"))


def _dbt(work: Path, target: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TREMPLIN_RAW_DIR": str(work / "raw"),
        "TREMPLIN_DUCKDB_PATH": str(work / "duckdb.duckdb"),
        "TREMPLIN_SPARK_DIR": str(work / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    executable = Path(sys.executable).with_name("tremplin-dbt")
    command = (
        [str(executable), *args, "--target", target]
        + ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        + ["--target-path", str(work / f"target-{target}")]
        + ["--log-path", str(work / f"logs-{target}")]
    )
    timeout = FULL_TIMEOUT_S if _full() else MODELS_TIMEOUT_S
    # Its own process group: on a timeout the JVM that pyspark started goes too.
    process = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\nERROR: timed out after {timeout} s"
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def _failed_nodes(work: Path, target: str) -> list[str]:
    path = work / f"target-{target}" / "run_results.json"
    if not path.exists():
        return ["(no run_results.json)"]
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    return [
        f"{r['unique_id']}: {r['status']}: {(r.get('message') or '').splitlines()[0][:200]}"
        for r in results
        if r["status"] not in ("success", "pass")
    ]


def _nodes(work: Path, target: str) -> set[str]:
    path = work / f"target-{target}" / "run_results.json"
    return {r["unique_id"] for r in json.loads(path.read_text(encoding="utf-8"))["results"]}


def _summary(result: subprocess.CompletedProcess) -> str:
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if not line.startswith("{") and ("ERROR" in line or "FAIL" in line or "Done." in line)
    ]
    return "\n".join(lines[-40:])


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        resolve_java()  # what tremplin-dbt does before Spark starts: a clear error first
    except JavaNotFoundError as exc:
        pytest.fail(str(exc))
    work = tmp_path_factory.mktemp("spark_parity")
    write_raw_fixtures(work / "raw")
    # Three API rows published again: both engines' staging model must drop the repeats
    # (ranked only when a key hash repeats, macros/without_repeated_rows.sql).
    repeat_api_rows(work / "raw", REPEATED_ROWS)
    selection = () if _full() else WITHOUT_TESTS
    duck = _dbt(work, "dev", "build", *selection)
    assert duck.returncode == 0, _summary(duck)
    # A failed Spark node is reported by the tests below, which still compare what was built.
    spark = _dbt(work, "spark", "build", *selection)
    (work / "spark_build.log").write_text(_summary(spark), encoding="utf-8")
    return work


def test_every_model_and_seed_builds_on_spark(builds: Path) -> None:
    failed = _failed_nodes(builds, "spark")
    assert not failed, "\n".join(failed)
    built = _nodes(builds, "spark")
    assert built == _nodes(builds, "dev"), "the engines did not build the same nodes"
    assert any(node.startswith("model.") for node in built)
    assert any(node.startswith("seed.") for node in built)


def test_every_data_test_passes_on_spark(builds: Path) -> None:
    if not _full():
        pytest.skip(FULL)
    tests = [node for node in _nodes(builds, "spark") if node.startswith("test.")]
    assert len(tests) > 200, f"only {len(tests)} data tests ran on Spark"
    failed = _failed_nodes(builds, "spark")
    assert not failed, "\n".join(failed)


def test_spark_build_stays_under_the_work_dir(builds: Path) -> None:
    # The Derby metastore and the warehouse live under TREMPLIN_SPARK_DIR, never in the cwd
    # (here the work dir itself) or the repository; so do the shuffle files (spark.local.dir),
    # which Spark would otherwise write to /tmp.
    assert (builds / "spark" / "metastore_db").is_dir()
    assert (builds / "spark" / "local").is_dir()
    assert not (builds / "metastore_db").exists() and not (ROOT / "metastore_db").exists()
    assert not (builds / "spark-warehouse").exists() and not (ROOT / "spark-warehouse").exists()
    assert "diag_local_diagnosis" in spark_table_dirs(builds / "spark")


def test_every_mart_and_diagnostic_table_is_equal_on_both_engines(builds: Path) -> None:
    diffs = compare_builds(builds / "duckdb.duckdb", builds / "spark")
    names = [diff.name for diff in diffs]
    assert any(name.startswith("diag_") for name in names)
    assert any(name.startswith("fct_") for name in names)
    differing = [diff for diff in diffs if not diff.equal]
    assert not differing, "\n".join(str(diff) for diff in differing)


def test_the_export_reads_the_spark_build(builds: Path) -> None:
    from assets.export.tables import EXPORT_TABLES

    copy = builds / "from_spark.duckdb"
    loaded = load_spark_tables(copy, builds / "spark")
    assert set(EXPORT_TABLES.values()) <= set(loaded)
    diffs = compare_builds(builds / "duckdb.duckdb", builds / "spark", EXPORT_TABLES.values())
    assert all(diff.equal for diff in diffs), "\n".join(map(str, diffs))


def test_both_engines_delete_the_repeated_api_rows_keeping_the_latest(builds: Path) -> None:
    import duckdb

    query = "select count(*), count(*) filter (where _source_file like 'repeat-%') from {}"
    con = duckdb.connect(str(builds / "duckdb.duckdb"), read_only=True)
    try:
        on_duckdb = con.execute(query.format(MARCHE_STAGING)).fetchone()
    finally:
        con.close()
    folder = spark_table_dirs(builds / "spark")[MARCHE_STAGING]
    on_spark = duckdb.execute(query.format(f"read_parquet('{folder}/*.parquet')")).fetchone()
    raw = duckdb.execute(
        query.format(
            f"read_parquet('{builds / 'raw' / 'francetravail_marche_travail'}/indicators.parquet')"
        )
    ).fetchone()
    assert raw[1] == 3 and on_duckdb == (raw[0] - 3, 3)
    assert on_spark == on_duckdb
