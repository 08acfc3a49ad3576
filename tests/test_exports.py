"""Exports: real DuckDB warehouses in tmp_path, published and re-read from disk."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
from pathlib import Path

import duckdb
import pytest

from assets import exports
from assets.exports import (
    EXPORT_TABLES,
    ExportError,
    publish_export,
    read_latest_manifest,
    verify_export,
)

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
SOURCES = [
    {
        "slug": "francetravail_bmo",
        "files": [{"name": "Base_open_data_BMO_2024.xlsx", "sha256": "ab" * 32}],
        "vintage": "2024",
        "synthetic": False,
    },
    {
        "slug": "francetravail_offers",
        "files": [{"name": "offers.json", "sha256": "cd" * 32}],
        "vintage": "2025-02",
        "synthetic": True,
    },
]


def make_warehouse(path: Path) -> Path:
    """Three small diag tables shaped like the dbt ones (codes as text, NULLs, nested types)."""
    con = duckdb.connect(str(path))
    con.execute(
        """
        create table diag_job_groups (
            rome_code varchar not null,
            label varchar not null,
            related_rome_codes varchar[],
            refreshed_at timestamptz
        )
        """
    )
    con.execute(
        """
        insert into diag_job_groups values
            ('M1805', 'Études et développement informatique', ['M1806', 'M1810'],
             timestamptz '2025-02-28 10:00:00+01'),
            ('A1203', 'Aménagement et entretien des espaces verts', [], null),
            ('K2204', 'Nettoyage de locaux', null, timestamptz '2025-02-28 09:30:00+00')
        """
    )
    con.execute(
        """
        create table diag_departements (
            rome_code varchar not null,
            departement_code varchar not null,
            departement_name varchar,
            offers_count integer,
            difficult_pct decimal(5, 1),
            is_tight boolean,
            hiring_months integer[],
            tension struct(rank integer, label varchar),
            period_start date
        )
        """
    )
    con.execute("comment on table diag_departements is 'Market diagnosis per job and département'")
    con.execute("comment on column diag_departements.departement_code is 'INSEE code, e.g. 2A'")
    con.execute(
        """
        insert into diag_departements values
            ('M1805', '2A', 'Corse-du-Sud', 12, 41.5, true, [3, 4, 9],
             {'rank': 2, 'label': 'tendu'}, date '2024-01-01'),
            ('M1805', '971', 'Guadeloupe', null, null, null, null, null, null),
            ('M1805', '01', 'Ain', 0, 12.0, false, [], {'rank': null, 'label': null},
             date '2024-01-01'),
            ('A1203', '971', null, 7, 88.8, true, [null, 5], {'rank': 1, 'label': 'très tendu'},
             date '2024-04-01')
        """
    )
    con.execute(
        """
        create table diag_regions (
            rome_code varchar not null,
            region_code varchar not null,
            offers_count bigint
        )
        """
    )
    con.execute(
        "insert into diag_regions values ('M1805', '94', 12), ('M1805', '01', null), "
        "('A1203', '84', 40)"
    )
    con.close()
    return path


def run_sql(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def snapshot(directory: Path) -> dict[str, object]:
    """Every entry under the exports dir: file bytes, symlink targets, directory names."""
    state: dict[str, object] = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            full = Path(root) / name
            key = str(full.relative_to(directory))
            if full.is_symlink():
                state[key] = ("link", os.readlink(full))
            elif full.is_dir():
                state[key] = "dir"
            else:
                state[key] = full.read_bytes()
    return state


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def exports_dir(tmp_path: Path) -> Path:
    return tmp_path / "exports"


def test_publish_writes_files_manifest_and_latest(warehouse: Path, exports_dir: Path) -> None:
    result = publish_export(warehouse, exports_dir, sources=SOURCES, now=NOW)

    assert result.changed
    assert result.vintage == "20250301T120000Z"
    assert result.path == exports_dir / "20250301T120000Z"
    assert result.row_counts == {"job_groups": 3, "departements": 4, "regions": 3}
    latest = exports_dir / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "20250301T120000Z"
    assert sorted(p.name for p in result.path.iterdir()) == sorted(
        ["manifest.json"]
        + [f"{name}.{ext}" for name in EXPORT_TABLES for ext in ("parquet", "jsonl", "schema.json")]
    )
    assert not list(exports_dir.glob(".tmp-*")) and not list(exports_dir.glob("latest.tmp-*"))

    manifest = verify_export(result.path)
    assert manifest == result.manifest == read_latest_manifest(exports_dir)
    assert manifest["vintage"] == result.vintage
    assert manifest["created_at"] == "2025-03-01T12:00:00Z"
    assert manifest["synthetic"] is True  # one source is synthetic
    assert manifest["sources"] == SOURCES
    assert set(manifest["versions"]) == {
        "tremplin",
        "dbt-core",
        "dbt-duckdb",
        "duckdb",
        "dagster",
        "pandas",
    }
    assert manifest["versions"]["duckdb"] == duckdb.__version__
    entry = manifest["tables"]["departements"]
    assert entry["relation"] == "diag_departements" and entry["rows"] == 4
    jsonl = entry["files"]["jsonl"]
    assert jsonl["path"] == "departements.jsonl"
    assert jsonl["bytes"] == (result.path / "departements.jsonl").stat().st_size
    assert len(manifest["content_sha256"]) == 64


def test_synthetic_flag_false_when_every_input_is_real(warehouse: Path, exports_dir: Path) -> None:
    result = publish_export(warehouse, exports_dir, sources=SOURCES[:1], now=NOW)
    assert result.manifest["synthetic"] is False


def _expected_json(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _expected_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expected_json(item) for item in value]
    return value


def test_jsonl_and_parquet_equal_the_duckdb_rows(warehouse: Path, exports_dir: Path) -> None:
    result = publish_export(warehouse, exports_dir, now=NOW)

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute(
            "select * from diag_departements order by rome_code, departement_code nulls last"
        )
        columns = [d[0] for d in cursor.description]
        expected = [
            {c: _expected_json(v) for c, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()
        ]
        parquet = str(result.path / "departements.parquet")
        differences = con.execute(
            f"""
            select count(*) from (
                (select * from diag_departements except all select * from read_parquet('{parquet}'))
                union all
                (select * from read_parquet('{parquet}') except all select * from diag_departements)
            )
            """
        ).fetchone()[0]
        parquet_order = con.execute(
            f"select rome_code, departement_code from read_parquet('{parquet}')"
        ).fetchall()
    finally:
        con.close()

    records = read_jsonl(result.path / "departements.jsonl")
    assert records == expected
    assert differences == 0
    assert parquet_order == [(r["rome_code"], r["departement_code"]) for r in records]
    # Codes stay text, NULLs stay null, nothing is coerced to 0.
    guadeloupe = next(
        r for r in records if r["departement_code"] == "971" and r["rome_code"] == "M1805"
    )
    assert guadeloupe["offers_count"] is None and guadeloupe["is_tight"] is None
    assert [r["departement_code"] for r in records] == ["971", "01", "2A", "971"]

    jobs = read_jsonl(result.path / "job_groups.jsonl")
    assert jobs[2]["rome_code"] == "M1805"
    assert jobs[2]["refreshed_at"] == "2025-02-28T09:00:00Z"  # timestamptz written in UTC
    assert jobs[2]["label"] == "Études et développement informatique"
    assert "Études" in (result.path / "job_groups.jsonl").read_text(encoding="utf-8")


def test_schema_follows_duckdb_types(warehouse: Path, exports_dir: Path) -> None:
    result = publish_export(warehouse, exports_dir, now=NOW)
    schema = json.loads((result.path / "departements.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["description"] == "Market diagnosis per job and département"
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(props)
    assert props["departement_code"] == {"description": "INSEE code, e.g. 2A", "type": "string"}
    assert props["offers_count"] == {"type": ["integer", "null"]}
    assert props["difficult_pct"] == {"type": ["number", "null"]}
    assert props["is_tight"] == {"type": ["boolean", "null"]}
    assert props["period_start"] == {"type": ["string", "null"], "format": "date"}
    assert props["hiring_months"] == {
        "type": ["array", "null"],
        "items": {"type": ["integer", "null"]},
    }
    assert props["tension"]["type"] == ["object", "null"]
    assert props["tension"]["properties"]["label"] == {"type": ["string", "null"]}
    assert props["tension"]["additionalProperties"] is False
    jobs = json.loads((result.path / "job_groups.schema.json").read_text(encoding="utf-8"))
    assert jobs["properties"]["refreshed_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }


def test_a_record_that_breaks_the_schema_is_refused(
    warehouse: Path, exports_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = exports.json_schema_for_type

    def integers_as_strings(duckdb_type, *, nullable):
        if duckdb_type.id == "integer":
            return {"type": "string"}  # a wrong schema: the data holds integers and NULLs
        return real(duckdb_type, nullable=nullable)

    monkeypatch.setattr(exports, "json_schema_for_type", integers_as_strings)
    with pytest.raises(ExportError) as caught:
        publish_export(warehouse, exports_dir, tables={"departements": "diag_departements"})

    message = str(caught.value)
    assert "departements (diag_departements): row 1: field offers_count" in message
    assert "departements.schema.json" in message
    assert not exports_dir.joinpath("latest").exists()
    assert [p.name for p in exports_dir.iterdir()] == [".publish.lock"]


def test_a_value_with_no_json_form_is_refused(tmp_path: Path, exports_dir: Path) -> None:
    path = tmp_path / "nan.duckdb"
    run_sql(
        path,
        "create table diag_scores (code varchar, score double);"
        "insert into diag_scores values ('01', 1.5), ('2A', 'nan'::double);",
    )
    with pytest.raises(ExportError, match=r"scores \(diag_scores\): row 2: field score: nan"):
        publish_export(path, exports_dir, tables={"scores": "diag_scores"})


def test_unchanged_data_publishes_nothing(warehouse: Path, exports_dir: Path) -> None:
    first = publish_export(warehouse, exports_dir, now=NOW)
    before = snapshot(exports_dir)

    second = publish_export(warehouse, exports_dir, now=NOW + dt.timedelta(hours=1))

    assert not second.changed
    assert second.vintage == first.vintage and second.path == first.path
    assert second.row_counts == first.row_counts
    assert second.manifest == first.manifest
    assert snapshot(exports_dir) == before


def test_changed_data_publishes_a_new_vintage(warehouse: Path, exports_dir: Path) -> None:
    first = publish_export(warehouse, exports_dir, now=NOW)
    run_sql(warehouse, "insert into diag_regions values ('K2204', '11', 3)")

    second = publish_export(warehouse, exports_dir, now=NOW)  # same second: suffixed vintage

    assert second.changed
    assert second.vintage == "20250301T120000Z-2"
    assert os.readlink(exports_dir / "latest") == "20250301T120000Z-2"
    assert second.row_counts["regions"] == 4
    assert second.manifest["content_sha256"] != first.manifest["content_sha256"]
    assert read_latest_manifest(exports_dir)["vintage"] == "20250301T120000Z-2"
    # The previous vintage stays whole, and identical tables keep identical bytes.
    verify_export(first.path)
    for name in ("job_groups", "departements"):
        assert (first.path / f"{name}.parquet").read_bytes() == (
            second.path / f"{name}.parquet"
        ).read_bytes()


def _fail_on_second_table(monkeypatch: pytest.MonkeyPatch) -> None:
    real = exports._write_table
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(exports, "_write_table", flaky)


@pytest.mark.parametrize("failure", ["writer_raises", "relation_missing"])
def test_a_failed_export_leaves_latest_untouched(
    warehouse: Path, exports_dir: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    publish_export(warehouse, exports_dir, now=NOW)
    before = snapshot(exports_dir)
    run_sql(warehouse, "insert into diag_regions values ('K2204', '11', 3)")

    tables = dict(EXPORT_TABLES)
    if failure == "writer_raises":
        _fail_on_second_table(monkeypatch)
        expected = "No space left on device"
    else:
        tables["local_diagnosis"] = "diag_local_diagnosis"
        expected = "relation main.diag_local_diagnosis not found in .*warehouse.duckdb"
    with pytest.raises(ExportError, match=expected):
        publish_export(warehouse, exports_dir, tables=tables, now=NOW + dt.timedelta(days=1))

    assert snapshot(exports_dir) == before
    assert not list(exports_dir.glob(".tmp-*"))


def test_an_empty_table_is_never_published(warehouse: Path, exports_dir: Path) -> None:
    run_sql(warehouse, "delete from diag_regions")
    with pytest.raises(ExportError, match=r"regions \(diag_regions\) in .* has 0 rows"):
        publish_export(warehouse, exports_dir, now=NOW)
    assert read_latest_manifest(exports_dir) is None
    assert [p.name for p in exports_dir.iterdir()] == [".publish.lock"]


def test_missing_warehouse_is_a_clear_error(tmp_path: Path, exports_dir: Path) -> None:
    missing = tmp_path / "nowhere" / "warehouse.duckdb"
    with pytest.raises(ExportError, match=f"warehouse {missing} does not exist"):
        publish_export(missing, exports_dir)
    assert not missing.exists()


def test_a_file_that_is_not_a_warehouse_is_a_clear_error(tmp_path: Path, exports_dir: Path) -> None:
    bogus = tmp_path / "warehouse.duckdb"
    bogus.write_text("not a database")
    with pytest.raises(ExportError, match=f"cannot open warehouse {bogus} read-only"):
        publish_export(bogus, exports_dir)
    assert not list(exports_dir.glob(".tmp-*"))


def test_verify_export_names_a_tampered_file(warehouse: Path, exports_dir: Path) -> None:
    result = publish_export(warehouse, exports_dir, now=NOW)
    jsonl = result.path / "regions.jsonl"
    jsonl.write_bytes(jsonl.read_bytes().replace(b'"94"', b'"93"'))
    with pytest.raises(ExportError, match=r"regions\.jsonl: expected sha256"):
        verify_export(result.path)
    (result.path / "regions.parquet").unlink()
    with pytest.raises(ExportError, match=r"regions\.parquet: listed in .* but missing"):
        verify_export(result.path)


def test_leftover_temp_dirs_are_cleaned_and_broken_latest_is_replaced(
    warehouse: Path, exports_dir: Path
) -> None:
    stale = exports_dir / ".tmp-20240101T000000Z-dead"
    stale.mkdir(parents=True)
    (stale / "job_groups.jsonl").write_text("{}\n")
    (exports_dir / "latest").symlink_to("20240101T000000Z")  # dangling
    (exports_dir / "latest.tmp-dead").symlink_to("20240101T000000Z")
    with pytest.raises(ExportError, match="cannot read"):
        read_latest_manifest(exports_dir)

    result = publish_export(warehouse, exports_dir, now=NOW)

    assert result.changed
    assert not stale.exists()
    assert not os.path.lexists(exports_dir / "latest.tmp-dead")
    assert read_latest_manifest(exports_dir)["vintage"] == result.vintage


def test_read_latest_manifest_is_none_before_any_export(exports_dir: Path) -> None:
    assert read_latest_manifest(exports_dir) is None


def test_sources_without_a_slug_are_refused(warehouse: Path, exports_dir: Path) -> None:
    with pytest.raises(ExportError, match="'slug'"):
        publish_export(warehouse, exports_dir, sources=[{"files": []}])
    assert read_latest_manifest(exports_dir) is None
