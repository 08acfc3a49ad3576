"""`tremplin diff`: two real export vintages of a small warehouse, compared from disk."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from diag_warehouse import make_warehouse, run_sql

from assets.export.diff import default_pair, diff_exports, format_diff, resolve_vintage
from assets.export.errors import ExportError
from assets.export.publish import publish_export
from pipelines import cli

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def warehouse_dir(tmp_path: Path) -> Path:
    make_warehouse(tmp_path / "warehouse.duckdb")
    return tmp_path


def publish(warehouse_dir: Path, hours: int = 0):
    return publish_export(
        warehouse_dir / "warehouse.duckdb",
        warehouse_dir / "exports",
        now=NOW + dt.timedelta(hours=hours),
    )


def test_one_changed_input_value_is_exactly_the_reported_change(warehouse_dir: Path) -> None:
    first = publish(warehouse_dir)
    run_sql(
        warehouse_dir / "warehouse.duckdb",
        "update diag_local_diagnosis set market__offers_per_10_job_seekers = 4.0 "
        "where diagnosis_key = '01:M1805'",
    )
    second = publish(warehouse_dir, hours=1)

    report = diff_exports(first.path, second.path)

    assert report["old"] == first.vintage and report["new"] == second.vintage
    assert report["tables_added"] == report["tables_removed"] == []
    local = report["tables"]["local_diagnosis"]
    assert local["key"] == ["diagnosis_key"]
    assert (local["rows_old"], local["rows_new"], local["added"], local["removed"]) == (4, 4, 0, 0)
    assert local["changed_rows"] == 1
    assert local["fields"] == [
        {
            "field": "market__offers_per_10_job_seekers",
            "json_field": "market.offersPer10JobSeekers",
            "changed": 1,
            "numeric": True,
            "examples": [{"key": "01:M1805", "old": 3.2, "new": 4.0, "delta": pytest.approx(0.8)}],
        }
    ]
    for name, table in report["tables"].items():
        if name != "local_diagnosis":
            assert (table["added"], table["removed"], table["changed_rows"]) == (0, 0, 0), name
            assert table["fields"] == []

    text = format_diff(report)
    assert f"export diff {first.vintage} -> {second.vintage}" in text
    assert "local_diagnosis (key diagnosis_key): 4 -> 4 rows, 0 added, 0 removed, 1 changed" in text
    assert "market__offers_per_10_job_seekers" in text and "01:M1805: 3.2 -> 4 (+0.8)" in text
    assert "regions (key rome_code, region_code): 3 -> 3 rows" in text


def test_added_removed_rows_and_text_fields(warehouse_dir: Path) -> None:
    first = publish(warehouse_dir)
    run_sql(
        warehouse_dir / "warehouse.duckdb",
        "delete from diag_regions where region_code = '84';"
        "insert into diag_regions values ('K2204', '11', 3);"
        "update diag_departements set departement_name = 'Ain (01)' where departement_code = '01';"
        "update diag_best_jobs_in_area set best_job_groups = [] where grand_domain_code = 'M';"
        "alter table diag_job_group_info add column domain_code varchar;",
    )
    second = publish(warehouse_dir, hours=1)

    report = diff_exports(first.path, second.path, top=2)

    regions = report["tables"]["regions"]
    assert regions["key"] == ["rome_code", "region_code"]  # rome_code alone is not unique
    assert (regions["added"], regions["removed"]) == (1, 1)
    assert regions["added_examples"] == ["K2204/11"] and regions["removed_examples"] == ["A1203/84"]
    departements = report["tables"]["departements"]
    assert departements["fields"][0]["field"] == "departement_name"
    assert departements["fields"][0]["examples"] == [
        {"key": "M1805/01", "old": "Ain", "new": "Ain (01)"}
    ]
    best = report["tables"]["best_jobs_in_area"]
    assert best["key"] == ["departement_code", "grand_domain_code"]
    assert [f["field"] for f in best["fields"]] == ["best_job_groups"]
    assert report["tables"]["job_group_info"]["fields_added"] == ["domain_code"]
    text = format_diff(report)
    assert "added: K2204/11" in text and "removed: A1203/84" in text
    assert "fields added: domain_code" in text


def test_cli_diff_defaults_to_previous_versus_latest(
    warehouse_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse_dir))
    monkeypatch.delenv("TREMPLIN_DUCKDB_PATH", raising=False)
    exports_dir = warehouse_dir / "exports"

    assert cli.main(["diff"]) == 2
    assert "no export vintage 'latest'" in capsys.readouterr().err
    first = publish(warehouse_dir)
    assert cli.main(["diff"]) == 0  # one vintage: nothing to compare yet, not a failure
    assert "nothing to compare yet" in capsys.readouterr().err
    run_sql(warehouse_dir / "warehouse.duckdb", "update diag_regions set offers_count = 13 "
            "where region_code = '94'")  # fmt: skip
    second = publish(warehouse_dir, hours=1)

    assert default_pair(exports_dir) == (exports_dir / first.vintage, second.path.resolve())
    assert cli.main(["diff"]) == 0
    out = capsys.readouterr().out
    assert "offers_count" in out and "M1805/94: 12 -> 13 (+1)" in out
    assert cli.main(["diff", first.vintage, "latest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tables"]["regions"]["fields"][0]["examples"][0]["delta"] == 1
    assert cli.main(["diff", "19990101T000000Z"]) == 2
    assert "no export vintage '19990101T000000Z'" in capsys.readouterr().err
    with pytest.raises(ExportError):
        resolve_vintage(exports_dir, "nope")
