"""`tremplin explain`: every field of the six explained tables, on a warehouse built by dbt
from the embedded mirror, checked against the publisher's cells it cites."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from dbt_fixtures import DEFAULT_MIRROR_DIR, _parsed_mirror, write_raw_fixtures
from test_dbt_build import _run_dbt

from assets.dbt_manifest import load_models
from assets.export.explain import TABLE_KEYS, ExplainError, explain

pytestmark = pytest.mark.slow

# One record with data in every block, per table (the where clause of its key query).
KEY_QUERIES = {
    "local_diagnosis": """
        select diagnosis_key from diag_local_diagnosis
        where market__offers_count is not null and hiring__recruitment_projects > 0
          and contract_mix__cdi_pct is not null and salary__median_monthly_gross_eur is not null
          and tension__dares_index is not null and less_stressful__count > 0
          and unemployment__rate_pct is not null and market__level = 'departement'
          and offers_trend__level is not null
        order by diagnosis_key limit 1""",
    "job_group_info": """
        select job_group_code from diag_job_group_info
        where hiring__national_recruitment_projects > 0
          and market__national_offers_per_10_job_seekers is not null
        order by job_group_code limit 1""",
    "best_jobs_in_area": """
        select best_jobs_key from diag_best_jobs_in_area where scope = 'all'
        order by best_jobs_key limit 1""",
    "hiring_headlines": """
        select concat(survey_year, ':', scope, ':', area_code) from diag_hiring_headlines
        where scope = 'departement' order by 1 limit 1""",
    "departements": "select departement_code from diag_departements order by 1 limit 1",
    "regions": "select region_code from diag_regions order by 1 limit 1",
}


class Built:
    def __init__(self, work: Path, manifest: Path):
        self.work = work
        self.manifest = manifest
        self.duckdb_path = work / "warehouse.duckdb"
        self.models = load_models(manifest)
        self.con = duckdb.connect(str(self.duckdb_path), read_only=True)
        self.keys = {t: self.con.execute(q).fetchone()[0] for t, q in KEY_QUERIES.items()}

    def explain(self, table: str, key: str, field: str | None = None):
        return explain(
            self.con,
            table,
            key,
            field,
            manifest_path=self.manifest,
            raw_dir=self.work / "raw",
            landing_dir=self.work / "landing",
            models=self.models,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("explain")
    write_raw_fixtures(work / "raw")
    shutil.copytree(_parsed_mirror(DEFAULT_MIRROR_DIR).parent / "landing", work / "landing")
    for command in (["seed"], ["run"]):
        done = _run_dbt(
            command, work_dir=work, raw_dir=work / "raw", duckdb_path=work / "warehouse.duckdb"
        )
        assert done.returncode == 0, done.output
    result = Built(work, work / "target" / "manifest.json")
    yield result
    result.con.close()


def test_every_field_of_every_explained_table_is_explained(built: Built) -> None:
    # How fast each value is explained is measured by the benchmark (`python -m
    # pipelines.bench --explain-only`, docs/BENCHMARK.md), not here: on a loaded CI
    # machine (load 6) a 2 s bound per value failed; idle, this whole test takes 16 s.
    for table in TABLE_KEYS:
        key = built.keys[table]
        record = built.explain(table, key)
        assert record.fields, table
        for field in record.fields:
            one = built.explain(table, key, field["json_field"])
            assert [f["column"] for f in one.fields] == [field["column"]]
            assert one.fields[0]["value"] == field["value"]
            assert one.fields[0]["formula"], f"{table}.{field['column']} is undocumented"
            if field["value"] is not None:
                traced = one.steps or one.cells
                assert traced, f"{table} {key} {field['column']}: nothing traced"


def test_market_cells_add_up_to_the_exported_offers(built: Built) -> None:
    key = built.keys["local_diagnosis"]
    result = built.explain("local_diagnosis", key, "market.offersCount")
    (field,) = result.fields
    offers = [c for c in result.cells if c["column"] == "value" and c["label"].startswith("OFF_1")]
    assert len(offers) == 4  # the four quarters of the window
    assert sum(float(c["value"]) for c in offers) == field["value"]
    assert field["synthetic"] and field["sources"] == ["francetravail_marche_travail"]
    for cell in offers:
        assert cell["source"] == "francetravail_marche_travail"
        assert cell["sha256"] and len(cell["sha256"]) == 64
        assert cell["landed_file"] and Path(cell["landed_file"]).is_file()
        assert cell["row_number"] >= 1
    steps = {s["model"]: s["rows"] for s in result.steps}
    (own,) = steps["int_market__job_group_departement"]
    assert own["offers_count"] == field["value"]


def test_bmo_cells_are_the_workbook_rows(built: Built) -> None:
    key = built.keys["local_diagnosis"]
    result = built.explain("local_diagnosis", key, "hiring.recruitmentProjects")
    cells = {
        (c["row_number"], c["column"]): c
        for c in result.cells
        if c["source"] == "francetravail_bmo"
    }
    assert cells
    assert {c["sheet"] for c in cells.values()} == {"BMO_2024_open_data"}
    assert all(c["publisher_url"].startswith("https://") for c in cells.values())
    bmo_cells = {s["model"]: s["rows"] for s in result.steps}["int_bmo__cells"]
    # A published count reaches int_bmo__cells unchanged; a masked one (`*`) is estimated.
    published = {
        (c["label"].split()[1], c["label"].split()[-1]): int(c["value"])
        for (row, column), c in cells.items()
        if column == "met" and cells[(row, "met_masked")]["value"] is False
    }
    assert published
    for row in bmo_cells:
        cell = (row["bmo_job_code"], row["bassin_code"])
        if cell in published:
            assert row["recruitment_projects"] == published[cell]


def test_unknown_table_key_or_field_names_the_valid_choices(built: Built) -> None:
    with pytest.raises(ExplainError, match="unknown table 'nope'; valid tables: local_diagnosis"):
        built.explain("nope", "x")
    with pytest.raises(ExplainError, match=r"must look like <departement_code>:<job_group_code>"):
        built.explain("local_diagnosis", "75")
    with pytest.raises(ExplainError, match=r"unknown key '00:Z9999' of local_diagnosis.*e\.g\."):
        built.explain("local_diagnosis", "00:Z9999")
    key = built.keys["regions"]
    with pytest.raises(ExplainError, match=r"unknown field 'nope' of regions; valid fields: .*"):
        built.explain("regions", key, "nope")


def test_cli_exit_codes(built: Built, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from pipelines.cli import main

    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(built.work))
    monkeypatch.delenv("TREMPLIN_DUCKDB_PATH", raising=False)
    assert main(["explain", "regions", built.keys["regions"], "unemployment.ratePct"]) == 0
    out = capsys.readouterr().out
    assert "formula:" in out and "publisher's cells:" in out and "insee_chomage_localise" in out
    assert main(["explain", "regions", "zz"]) == 2
    assert "unknown key 'zz' of regions" in capsys.readouterr().err
    assert main(["explain", "tables", "1"]) == 2
    assert "valid tables" in capsys.readouterr().err
