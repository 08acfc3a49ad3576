"""A real `dbt build` of the dbt project on the real ROME v4.60 and Etalab referentials.

The raw parquet is written from the embedded mirror by tests/dbt_fixtures.py, dbt runs in a
subprocess exactly as the pipeline calls it (`--project-dir dbt_project --profiles-dir
dbt_project`, paths from the environment), and the assertions read the resulting DuckDB
file. Each dbt invocation costs seconds, so the good build is shared by the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dbt_fixtures import GEO_SLUG, ROME_SLUG, repeat_api_rows, rewrite_parquet, write_raw_fixtures

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
MARCHE_SLUG = "francetravail_marche_travail"
REPEATED_ROWS = "_row_number <= 3"


def _dbt_executable() -> str:
    beside_python = Path(sys.executable).with_name("dbt")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("dbt")
    if found is None:
        pytest.fail("dbt executable not found next to the interpreter nor on PATH")
    return found


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    output: str
    results: dict[str, str]  # unique_id -> status, from run_results.json
    duckdb_path: Path


def _run_dbt(
    command: list[str],
    *,
    work_dir: Path,
    raw_dir: Path,
    duckdb_path: Path,
    concurrency: int = 1,
) -> DbtRun:
    """Run dbt with its own target and log folders, so the repo's manifest is untouched.

    One node at a time by default (`concurrency`, TREMPLIN_DBT_CONCURRENCY)."""
    env = {
        **os.environ,
        "TREMPLIN_RAW_DIR": str(raw_dir),
        "TREMPLIN_DUCKDB_PATH": str(duckdb_path),
        "TREMPLIN_DBT_CONCURRENCY": str(concurrency),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    target_dir = work_dir / "target"
    completed = subprocess.run(
        [
            _dbt_executable(),
            *command,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target_dir),
            "--log-path",
            str(work_dir / "logs"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    results: dict[str, str] = {}
    run_results = target_dir / "run_results.json"
    if command[0] != "parse" and run_results.exists():
        payload = json.loads(run_results.read_text())
        results = {item["unique_id"]: item["status"] for item in payload["results"]}
    return DbtRun(completed.returncode, completed.stdout + completed.stderr, results, duckdb_path)


def _query(run: DbtRun, sql: str) -> list[tuple]:
    con = duckdb.connect(str(run.duckdb_path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    work_dir = tmp_path_factory.mktemp("dbt_build")
    raw_dir = work_dir / "raw"
    write_raw_fixtures(raw_dir)
    # An exact repeat of a published row: staging must drop it, the source test only warns.
    rewrite_parquet(
        raw_dir / ROME_SLUG / "grand_domaine.parquet",
        "select * from raw union all "
        "select * replace (_row_number + 100 as _row_number) from raw "
        "where code_grand_domaine = 'A'",
    )
    # Three API rows fetched again a day later under another file name: the staging view
    # drops the repeats, keeping the latest fetch (macros/without_repeated_rows.sql).
    repeat_api_rows(raw_dir, REPEATED_ROWS)
    # Parse with placeholder paths (no data, no database), as at install time; the build
    # then runs with the real paths in the same target folder, so a raw location frozen at
    # parse time would make it read the placeholder and fail.
    parsed = _run_dbt(
        ["parse"],
        work_dir=work_dir,
        raw_dir=Path("/nonexistent/tremplin/raw"),
        duckdb_path=Path("/nonexistent/tremplin/warehouse.duckdb"),
    )
    assert parsed.returncode == 0, parsed.output
    built = _run_dbt(
        ["build"], work_dir=work_dir, raw_dir=raw_dir, duckdb_path=work_dir / "wh.duckdb"
    )
    assert built.returncode == 0, built.output
    return built


def test_build_passes_every_node(build: DbtRun) -> None:
    assert "model.tremplin.diag_job_groups" in build.results
    not_passed = {
        uid: status for uid, status in build.results.items() if status not in {"success", "pass"}
    }
    # The one tolerated warning: the repeated grand_domaine row seen by the source test.
    assert len(not_passed) == 1, not_passed
    ((uid, status),) = not_passed.items()
    assert status == "warn"
    assert uid.startswith("test.tremplin.source_unique_francetravail_rome_grand_domaine_")


def _overlapping_nodes(work_dir: Path) -> int:
    """Pairs of nodes whose execution overlapped in time (run_results.json)."""
    from datetime import datetime

    spans = []
    for item in json.loads((work_dir / "target" / "run_results.json").read_text())["results"]:
        timing = {t["name"]: t for t in item["timing"]}
        if "execute" in timing:
            spans.append(
                tuple(
                    datetime.fromisoformat(timing["execute"][k].replace("Z", "+00:00"))
                    for k in ("started_at", "completed_at")
                )
            )
    spans.sort()
    return sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)


def test_nodes_built_at_once_leave_the_same_warehouse(build: DbtRun, tmp_path: Path) -> None:
    """TREMPLIN_DBT_CONCURRENCY=2: dbt builds two models at once, each query on one engine
    thread, and every table equals the one-node-at-a-time build's, bit for bit."""
    work_dir = tmp_path / "concurrent"
    concurrent = _run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
        work_dir=work_dir,
        raw_dir=build.duckdb_path.parent / "raw",
        duckdb_path=work_dir / "wh.duckdb",
        concurrency=2,
    )
    assert concurrent.returncode == 0, concurrent.output
    assert _overlapping_nodes(work_dir) > 0, "no two nodes ran at once"
    con = duckdb.connect()
    try:
        con.execute(f"attach '{build.duckdb_path}' as serial (read_only)")
        con.execute(f"attach '{concurrent.duckdb_path}' as parallel (read_only)")
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() where database_name = 'serial' "
                "and schema_name = 'main' order by 1"
            ).fetchall()
        ]
        assert any(t.startswith("diag_") for t in tables) and len(tables) > 20
        for table in tables:
            for left, right in (("serial", "parallel"), ("parallel", "serial")):
                extra = con.execute(
                    f"select count(*) from (select * from {left}.main.{table} "
                    f"except all select * from {right}.main.{table})"
                ).fetchone()[0]
                assert extra == 0, f"{table}: {extra} rows of the {left} build not in the other"
    finally:
        con.close()


def test_exact_duplicate_rows_are_dropped_in_staging(build: DbtRun) -> None:
    assert _query(build, "select count(*) from stg_francetravail_rome__grand_domaine") == [(14,)]


def test_repeated_api_rows_are_deleted_keeping_the_latest_fetch(build: DbtRun) -> None:
    raw = str(build.duckdb_path.parent / "raw" / MARCHE_SLUG / "indicators.parquet")
    ((raw_rows, first_file),) = _query(
        build,
        f"select count(*), min(_source_file) from read_parquet('{raw}') "
        "where _source_file not like 'repeat-%'",
    )
    staging = "stg_francetravail_marche_travail__indicators"
    assert _query(build, f"select count(*) from {staging}") == [(raw_rows,)]
    kept = _query(
        build,
        f"select _source_file, count(*) from {staging} "
        f"where (_source_file = '{first_file}' and {REPEATED_ROWS}) "
        f"or _source_file = 'repeat-{first_file}' group by all",
    )
    assert kept == [(f"repeat-{first_file}", 3)]


def test_departements_are_the_101_without_collectivites(build: DbtRun) -> None:
    codes = {row[0] for row in _query(build, "select departement_code from dim_departement")}
    assert len(codes) == 101
    assert {"01", "2A", "2B", "75", "95", "971", "972", "973", "974", "976"} <= codes
    assert not codes & {"20", "975", "977", "978", "984", "986", "987", "988", "989"}
    assert _query(
        build,
        "select name, region_code, region_name, is_overseas from dim_departement "
        "where departement_code = '976'",
    ) == [("Mayotte", "06", "Mayotte", True)]
    assert _query(build, "select count(*) from diag_departements") == [(101,)]
    # The collectivités d'outre-mer stay available in staging.
    assert _query(
        build,
        "select zone from stg_etalab_decoupage_administratif__departements "
        "where departement_code = '978'",
    ) == [("com",)]


def test_regions_are_the_18_with_their_departements(build: DbtRun) -> None:
    rows = dict(_query(build, "select region_code, departements_count from dim_region"))
    assert len(rows) == 18
    assert sum(rows.values()) == 101
    assert rows["11"] == 8 and rows["94"] == 2 and rows["06"] == 1
    assert _query(build, "select name from diag_regions where region_code = '84'") == [
        ("Auvergne-Rhône-Alpes",)
    ]


def test_job_groups_carry_domain_v3_parent_and_principal_title(build: DbtRun) -> None:
    assert _query(
        build,
        "select label, domain_code, grand_domain_code, rome_v3_code, rome_version "
        "from dim_job_group where job_group_code = 'A1101'",
    ) == [("Conducteur / Conductrice d'engins agricoles", "A11", "A", "A1101", "4.60")]
    assert _query(
        build,
        "select count(*), count(rome_v3_code), count(distinct rome_v3_code), "
        "count(principal_job_title), sum(job_titles_count) from dim_job_group",
    ) == [(1584, 1584, 532, 1584, 13120)]
    # Every v3 parent is itself a v4 fiche: sources coded in ROME v3 join through it.
    assert _query(
        build,
        "select count(*) from dim_job_group where rome_v3_code not in "
        "(select job_group_code from dim_job_group)",
    ) == [(0,)]
    assert _query(build, "select count(*) from diag_job_groups") == [(1584,)]


def test_job_titles_and_mobility_point_to_job_groups(build: DbtRun) -> None:
    assert _query(
        build, "select count(*), count(*) filter (where is_principal) from dim_job_title"
    ) == [(13120, 1584)]
    assert _query(
        build,
        "select count(*), min(order_number), count(to_label) from fct_job_group_mobility",
    ) == [(14912, 1, 14912)]


def test_diag_tables_have_the_contracted_types(build: DbtRun) -> None:
    types = dict(
        _query(
            build,
            "select table_name || '.' || column_name, data_type from information_schema.columns "
            "where table_name in ('diag_job_groups', 'diag_departements', 'diag_regions')",
        )
    )
    assert types["diag_job_groups.job_group_code"] == "VARCHAR"
    assert types["diag_job_groups.is_executive"] == "BOOLEAN"
    assert types["diag_job_groups.job_titles_count"] == "INTEGER"
    assert types["diag_departements.is_overseas"] == "BOOLEAN"
    assert types["diag_regions.departements_count"] == "INTEGER"


def test_conflicting_duplicate_departement_fails_the_build(tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    write_raw_fixtures(raw_dir)
    rewrite_parquet(
        raw_dir / GEO_SLUG / "departements.parquet",
        "select * from raw union all "
        "select * replace ('Corse du Sud (bis)' as nom, 999 as _row_number) from raw "
        "where code = '2A'",
    )
    run = _run_dbt(
        ["build", "--select", f"source:{GEO_SLUG}+"],
        work_dir=tmp_path,
        raw_dir=raw_dir,
        duckdb_path=tmp_path / "wh.duckdb",
    )
    assert run.returncode != 0, run.output
    failed = {uid for uid, status in run.results.items() if status in {"fail", "error"}}
    assert any(
        uid.startswith("test.tremplin.unique_stg_etalab_decoupage_administratif__departements")
        for uid in failed
    ), failed
    assert run.results["model.tremplin.dim_departement"] == "skipped"
    tables = {row[0] for row in _query(run, "select table_name from information_schema.tables")}
    assert "dim_departement" not in tables


def test_conflicting_value_and_malformed_code_fail_the_staging_tests(tmp_path: Path) -> None:
    """The same cell published twice with two values is not a repeat: it stays, and the
    key test (which groups hashes first on this table) names it. A malformed ROME code in
    3 rows is named once by the pattern test (which counts values before matching)."""
    raw_dir = tmp_path / "raw"
    write_raw_fixtures(raw_dir)
    first_rows = "where _source_file = (select min(_source_file) from raw) and _row_number"
    rewrite_parquet(
        raw_dir / MARCHE_SLUG / "indicators.parquet",
        "select * from raw union all "
        "select * replace (cast(coalesce(try_cast(value as double), 0) + 1 as varchar) as value, "
        f"false as value_masked, _row_number + 1000 as _row_number) from raw {first_rows} = 1 "
        "union all select * replace ('A11' as activity_code, _row_number + 2000 as _row_number) "
        f"from raw {first_rows} <= 3",
    )
    staging = "stg_francetravail_marche_travail__indicators"
    run = _run_dbt(
        ["build", "--select", staging],
        work_dir=tmp_path,
        raw_dir=raw_dir,
        duckdb_path=tmp_path / "wh.duckdb",
    )
    assert run.returncode != 0, run.output
    failed = {uid.split(".")[2] for uid, status in run.results.items() if status == "fail"}
    assert {name.split(f"{staging}_")[0] for name in failed} == {
        "unique_combination_",
        "columns_match_patterns_",
    }, failed
    assert any("activity_code" in name for name in failed if name.startswith("columns_match"))
    assert run.output.count("Got 1 result") == 2, run.output
