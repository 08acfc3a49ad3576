"""What a user sees of `tremplin run`, where its runs show in the Dagster UI, and the
warehouse as analysts get it (issue 15).

One real run on the embedded mirror, in a temporary warehouse with a persistent Dagster
instance, then: the console stays short and names its log file; the run is found the way
the UI's Jobs page looks for a job's runs; the tables and columns carry their descriptions
as DuckDB comments; a copy of the warehouse and its raw folder is queried elsewhere;
`tremplin sql --format csv|json|parquet`; `tremplin docs` while a reader holds the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.foundation.settings import PROJECT_ROOT
from pipelines import cli

pytestmark = pytest.mark.slow

MIRROR = PROJECT_ROOT / "warehouse" / "mirror"


def _env(mp: pytest.MonkeyPatch, warehouse: Path, home: Path) -> None:
    mp.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse))
    mp.setenv("TREMPLIN_MIRROR", str(MIRROR))
    mp.setenv("DAGSTER_HOME", str(home))
    mp.delenv("TREMPLIN_DUCKDB_PATH", raising=False)
    mp.delenv("TREMPLIN_MODE", raising=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    warehouse, home = root / "warehouse", root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, warehouse, home)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["run"])
    assert code == 0, out.getvalue() + err.getvalue()
    return {
        "root": root,
        "warehouse": warehouse,
        "home": home,
        "out": out.getvalue(),
        "err": err.getvalue(),
    }


@pytest.fixture
def env(run, monkeypatch):
    _env(monkeypatch, run["warehouse"], run["home"])
    return run


def test_console_is_short_and_names_its_log_file(run):
    lines = (run["out"] + run["err"]).splitlines()
    assert len(lines) <= 50, "\n".join(lines)
    # One line per source, the build and the export, then the summary.
    assert sum(line.startswith("  ingest ") for line in lines) == 11
    assert any(line.startswith("  build    dbt:") for line in lines)
    assert "tremplin run succeeded" in run["out"]
    log = Path(run["out"].split("log:")[1].split()[0])
    assert log.parent == run["warehouse"] / "runs" / "logs" and log.is_file()
    text = log.read_text()
    # The full stream is in the log (Dagster's event lines, dbt's own output) ...
    assert "tremplin_dbt - warehouse replaced" in text and " PASS " in text
    # ... and the warnings whose causes were fixed are gone from it too.
    assert "instead of an `AssetCheckResult`" not in text
    assert "ephemeral docs site" not in text
    assert "warehouse relations (rows):" in text and "dim_departement" in text


def test_cli_run_is_listed_under_its_job_in_the_ui(env):
    """The UI's Jobs page filters a job's runs by name and repository label."""
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from pipelines.launch import repository_label, repository_origin

    assert repository_label() == "__repository__@pipelines.definitions"
    instance = dg.DagsterInstance.get()
    try:
        runs = instance.get_runs(
            dg.RunsFilter(job_name="refresh_all", tags={REPOSITORY_LABEL_TAG: repository_label()})
        )
        assert len(runs) == 1 and runs[0].is_success
        origin = runs[0].remote_job_origin
        assert origin.repository_origin == repository_origin()
        assert origin.repository_origin.code_location_origin.location_name == (
            "pipelines.definitions"
        )
        # The periodic sources' runs belong to their ingest jobs the same way.
        offers = instance.get_runs(
            dg.RunsFilter(
                job_name="ingest_francetravail_offres",
                tags={REPOSITORY_LABEL_TAG: repository_label()},
            )
        )
        assert offers and all(r.is_success for r in offers)
    finally:
        instance.dispose()


def test_tables_and_columns_carry_their_descriptions(env):
    con = duckdb.connect(str(env["warehouse"] / "warehouse.duckdb"), read_only=True)
    try:
        commented, columns = con.sql(
            "select count(comment), count(*) from duckdb_columns() where schema_name = 'main'"
        ).fetchall()[0]
        tables = con.sql(
            "select count(*) from duckdb_tables() where schema_name = 'main' and comment "
            "is not null"
        ).fetchall()[0][0]
        comment = con.sql(
            "select comment from duckdb_columns() where table_name = 'dim_departement' "
            "and column_name = 'departement_code'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert commented >= 300 and commented >= columns // 2, (commented, columns)
    assert tables >= 20
    assert comment and len(comment) > 10


def test_a_copied_warehouse_is_queried_elsewhere(env, tmp_path, monkeypatch):
    """The staging views name raw files relative to the warehouse file: copy both, delete
    nothing, and query the copy from another working directory."""
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    shutil.copy(env["warehouse"] / "warehouse.duckdb", copy / "warehouse.duckdb")
    shutil.copytree(env["warehouse"] / "raw", copy / "raw")
    con = duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True)
    try:
        definitions = " ".join(r[0] for r in con.sql("select sql from duckdb_views()").fetchall())
        assert str(env["warehouse"]) not in definitions and "raw/" in definitions
    finally:
        con.close()
    query = "select count(*) from stg_francetravail_bmo__projects"
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(copy))
    monkeypatch.chdir(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sql", query, "--format", "csv"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "count_star()"
    assert int(done.stdout.splitlines()[1]) > 50_000
    # A plain DuckDB client started in the warehouse folder reads the views too.
    monkeypatch.chdir(copy)
    with duckdb.connect("warehouse.duckdb", read_only=True) as plain:
        assert plain.sql(query).fetchall()[0][0] > 50_000


def test_sql_writes_csv_json_and_parquet(env, tmp_path, capsys):
    query = "select departement_code, name from dim_departement order by 1 limit 3"
    assert cli.main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "departement_code,name",
        "01,Ain",
        "02,Aisne",
        "03,Allier",
    ]
    assert cli.main(["sql", query, "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0] == {"departement_code": "01", "name": "Ain"}
    target = tmp_path / "departements.parquet"
    assert cli.main(["sql", "select * from dim_departement", "--output", str(target)]) == 0
    assert duckdb.sql(f"select count(*) from '{target}'").fetchall()[0][0] == 101
    assert cli.main(["sql", query, "--format", "parquet"]) == 2  # parquet needs --output
    assert "--output" in capsys.readouterr().err


def test_docs_build_while_a_reader_holds_the_warehouse(env):
    live = env["warehouse"] / "warehouse.duckdb"
    before = live.stat().st_mtime_ns
    reader = duckdb.connect(str(live), read_only=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "docs"],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
        )
    finally:
        reader.close()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert live.stat().st_mtime_ns == before
    site = PROJECT_ROOT / "dbt_project" / "target" / "docs"
    catalog = json.loads((site / "catalog.json").read_text())
    assert "model.tremplin.dim_departement" in catalog["nodes"]
    manifest = json.loads((site / "manifest.json").read_text())
    overview = manifest["docs"]["doc.tremplin.__overview__"]["block_contents"]
    assert "tremplin" in overview and "How to query" in overview
    assert not (site / ".warehouse" / "warehouse.duckdb").exists()
