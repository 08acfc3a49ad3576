"""Exports: real DuckDB warehouses in tmp_path, published and re-read from disk."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import os
from pathlib import Path

import duckdb
import pytest
from diag_warehouse import make_warehouse, run_sql, write_manifest
from jsonschema import Draft202012Validator

from assets.export import schemas, writing
from assets.export.errors import ExportError
from assets.export.json_shape import camel_case, json_path
from assets.export.publish import publish_export
from assets.export.tables import EXPORT_TABLES, PENDING_TABLES, tables_to_export
from assets.export.vintages import read_latest_manifest, verify_export

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
    assert result.row_counts == {
        "local_diagnosis": 4,
        "job_group_info": 2,
        "best_jobs_in_area": 3,
        "job_groups": 3,
        "departements": 4,
        "regions": 3,
        "hiring_headlines": 2,
    }
    assert not result.held
    latest = exports_dir / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "20250301T120000Z"
    assert sorted(p.name for p in result.path.iterdir()) == sorted(
        ["manifest.json"]
        + [
            f"{name}.{ext}"
            for name in EXPORT_TABLES
            for ext in ("parquet", "jsonl", "jsonl.gz", "schema.json")
        ]
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
        return {camel_case(key): _expected_json(item) for key, item in value.items()}
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
            {camel_case(c): _expected_json(v) for c, v in zip(columns, row, strict=True)}
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
    assert parquet_order == [(r["romeCode"], r["departementCode"]) for r in records]
    # Codes stay text, NULLs stay null, nothing is coerced to 0; struct fields camelCased.
    guadeloupe = next(
        r for r in records if r["departementCode"] == "971" and r["romeCode"] == "M1805"
    )
    assert guadeloupe["offersCount"] is None and guadeloupe["isTight"] is None
    assert [r["departementCode"] for r in records] == ["971", "01", "2A", "971"]
    assert records[2]["tension"] == {"rank": 2, "tensionLabel": "tendu"}

    jobs = read_jsonl(result.path / "job_groups.jsonl")
    assert jobs[2]["romeCode"] == "M1805"
    assert jobs[2]["refreshedAt"] == "2025-02-28T09:00:00Z"  # timestamptz written in UTC
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
    assert props["departementCode"] == {"description": "INSEE code, e.g. 2A", "type": "string"}
    assert props["offersCount"] == {"type": ["integer", "null"]}
    assert props["difficultPct"] == {"type": ["number", "null"]}
    assert props["isTight"] == {"type": ["boolean", "null"]}
    assert props["periodStart"] == {"type": ["string", "null"], "format": "date"}
    assert props["hiringMonths"] == {
        "type": ["array", "null"],
        "items": {"type": ["integer", "null"]},
    }
    assert props["tension"]["type"] == ["object", "null"]
    assert props["tension"]["properties"]["tensionLabel"] == {"type": ["string", "null"]}
    assert props["tension"]["required"] == ["rank", "tensionLabel"]
    assert props["tension"]["additionalProperties"] is False
    jobs = json.loads((result.path / "job_groups.schema.json").read_text(encoding="utf-8"))
    assert jobs["properties"]["refreshedAt"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }


def test_a_record_that_breaks_the_schema_is_refused(
    warehouse: Path, exports_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = schemas.json_schema_for_type

    def integers_as_strings(duckdb_type, *, nullable):
        if duckdb_type.id == "integer":
            return {"type": "string"}  # a wrong schema: the data holds integers and NULLs
        return real(duckdb_type, nullable=nullable)

    monkeypatch.setattr(schemas, "json_schema_for_type", integers_as_strings)
    with pytest.raises(ExportError) as caught:
        publish_export(warehouse, exports_dir, tables={"departements": "diag_departements"})

    message = str(caught.value)
    assert "departements (diag_departements): row 1: field offersCount" in message
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
    real = writing.write_table
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(writing, "write_table", flaky)


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
        tables["missing"] = "diag_missing"
        expected = "relation main.diag_missing not found in .*warehouse.duckdb"
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


# --------------------------------------------------------------------------- nested JSON


def test_camel_case_and_json_paths() -> None:
    assert camel_case("offers_per_10_job_seekers") == "offersPer10JobSeekers"
    assert camel_case("difficult_pct") == "difficultPct"
    assert json_path("market__offers_per_10_job_seekers") == ("market", "offersPer10JobSeekers")
    assert json_path("market__interval_80__low") == ("market", "interval80", "low")
    assert json_path("synthetic") == ("synthetic",)
    with pytest.raises(ExportError, match="market____low"):
        json_path("market____low")


def _flatten(record: dict, columns: list[str]) -> dict:
    """Back from the nested JSON record to flat snake_case columns (struct fields too)."""
    flat = {}
    for column in columns:
        value = record
        for part in json_path(column):
            value = value[part]
        flat[column] = value
    return flat


def test_nested_records_round_trip_to_the_flat_parquet(warehouse: Path, exports_dir: Path):
    result = publish_export(warehouse, exports_dir, now=NOW)

    records = read_jsonl(result.path / "local_diagnosis.jsonl")
    first = next(r for r in records if r["diagnosisKey"] == "01:M1805")
    assert first == {
        "diagnosisKey": "01:M1805",
        "departementCode": "01",
        "jobGroupCode": "M1805",
        "market": {
            "offersPer10JobSeekers": 3.2,
            "interval80": {"low": 2.5, "high": 4.1},
            "confidence": "high",
            "level": "departement",
        },
        "hiring": {"projectsCount": 120, "difficultPct": 41.5},
        "trend": {"activeMonths": [3, 4, 9]},
        "lessStressfulJobGroups": [
            {"jobGroupCode": "M1806", "mobilityType": "proche", "offersPer10JobSeekers": 5.5}
        ],
        "synthetic": False,
    }
    # Unknown values are null leaves; the blocks are always there.
    corse = next(r for r in records if r["diagnosisKey"] == "2A:M1805")
    assert corse["market"]["interval80"] == {"low": None, "high": None}
    assert corse["lessStressfulJobGroups"] is None and corse["trend"] == {"activeMonths": None}
    guadeloupe = next(r for r in records if r["diagnosisKey"] == "971:A1203")
    assert guadeloupe["lessStressfulJobGroups"] == [
        {"jobGroupCode": "A1201", "mobilityType": None, "offersPer10JobSeekers": None},
        None,
    ]

    con = duckdb.connect()
    try:
        parquet = con.sql(
            f"select * from read_parquet('{result.path / 'local_diagnosis.parquet'}')"
        )
        columns = parquet.columns
        rows = parquet.fetchall()
    finally:
        con.close()
    assert "market__interval_80__low" in columns  # Parquet stays flat snake_case
    flat_records = [_flatten(r, columns) for r in records]
    assert len(rows) == len(records)
    for row, flat in zip(rows, flat_records, strict=True):
        for column, value in zip(columns, row, strict=True):
            assert _expected_json(value) == flat[column], column


def test_nested_schema_is_closed_camel_case_and_documented_from_dbt(
    warehouse: Path, exports_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The yml text alone: the lineage notes are tested in test_field_lineage.py.
    monkeypatch.setattr("assets.export.lineage.FIELD_LINEAGE_PATH", tmp_path / "none.json")
    manifest = write_manifest(
        tmp_path / "manifest.json",
        {
            "diag_local_diagnosis": {
                "description": "One record per job group and département.",
                "columns": {
                    "diagnosis_key": "`<departement>:<rome>`.",
                    "market__offers_per_10_job_seekers": "Offers per 10 job seekers, raw.",
                    "market__interval_80__low": "Lower bound of the 80 % interval.",
                },
            }
        },
    )
    run_sql(
        warehouse,
        "comment on column diag_local_diagnosis.market__confidence is 'high, medium or low';"
        "comment on column diag_local_diagnosis.diagnosis_key is 'overridden by the yml'",
    )
    result = publish_export(warehouse, exports_dir, now=NOW, dbt_manifest=manifest)
    schema = json.loads((result.path / "local_diagnosis.schema.json").read_text(encoding="utf-8"))

    Draft202012Validator.check_schema(schema)
    assert schema["description"] == "One record per job group and département."
    assert schema["additionalProperties"] is False
    assert schema["required"] == [
        "diagnosisKey",
        "departementCode",
        "jobGroupCode",
        "market",
        "hiring",
        "trend",
        "lessStressfulJobGroups",
        "synthetic",
    ]
    assert schema["properties"]["diagnosisKey"]["description"] == "`<departement>:<rome>`."
    market = schema["properties"]["market"]
    assert market["type"] == "object" and market["additionalProperties"] is False
    assert market["required"] == ["offersPer10JobSeekers", "interval80", "confidence", "level"]
    assert market["properties"]["offersPer10JobSeekers"] == {
        "description": "Offers per 10 job seekers, raw.",
        "type": ["number", "null"],
        "x-decimals": 2,  # the precision declared in assets/export/precision.py
    }
    assert market["properties"]["confidence"]["description"] == "high, medium or low"
    interval = market["properties"]["interval80"]
    assert interval["properties"]["low"]["description"] == "Lower bound of the 80 % interval."
    assert interval["required"] == ["low", "high"]
    items = schema["properties"]["lessStressfulJobGroups"]["items"]
    assert items["type"] == ["object", "null"]
    assert items["required"] == ["jobGroupCode", "mobilityType", "offersPer10JobSeekers"]
    validator = Draft202012Validator(schema)
    for record in read_jsonl(result.path / "local_diagnosis.jsonl"):
        validator.validate(record)


def test_a_wrong_nested_type_is_caught_and_named(
    warehouse: Path, exports_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = schemas.json_schema_for_type

    def doubles_as_strings(duckdb_type, *, nullable):
        if duckdb_type.id == "double":
            return {"type": "string"}  # wrong: the data holds numbers
        return real(duckdb_type, nullable=nullable)

    monkeypatch.setattr(schemas, "json_schema_for_type", doubles_as_strings)
    with pytest.raises(ExportError) as caught:
        publish_export(warehouse, exports_dir, tables={"local_diagnosis": "diag_local_diagnosis"})
    message = str(caught.value)
    assert "local_diagnosis (diag_local_diagnosis): row 1: field market.offersPer10JobSeekers" in (
        message
    )
    assert "(column market__offers_per_10_job_seekers)" in message
    assert "local_diagnosis.schema.json" in message
    assert not exports_dir.joinpath("latest").exists()


def test_a_wrong_type_inside_a_list_of_structs_is_named(tmp_path: Path, exports_dir: Path):
    path = tmp_path / "nested.duckdb"
    run_sql(
        path,
        "create table diag_nested (code varchar, job_groups struct(code varchar, job_rank "
        "integer)[]); insert into diag_nested values ('01', [{'code': 'A', 'job_rank': 1}]);",
    )
    real = schemas.json_schema_for_type

    def wrong_rank(duckdb_type, *, nullable):
        if duckdb_type.id == "integer":
            return {"type": "string"}
        return real(duckdb_type, nullable=nullable)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(schemas, "json_schema_for_type", wrong_rank)
        with pytest.raises(ExportError) as caught:
            publish_export(path, exports_dir, tables={"nested": "diag_nested"})
    assert "row 1: field jobGroups[0].jobRank (column job_groups)" in str(caught.value)


def test_columns_landing_on_one_json_field_are_refused(tmp_path: Path, exports_dir: Path):
    path = tmp_path / "clash.duckdb"
    run_sql(
        path,
        "create table diag_clash (code varchar, market double, market__rank integer);"
        "insert into diag_clash values ('01', 1.0, 2);",
    )
    with pytest.raises(ExportError, match="columns 'market' and 'market__rank' both map"):
        publish_export(path, exports_dir, tables={"clash": "diag_clash"})


def _mutations(record: dict) -> list[dict]:
    """Records one change away from a valid one, each breaking the schema in its own way."""
    broken = []
    for change in (
        lambda r: r["market"].__setitem__("offersPer10JobSeekers", "3.2"),
        lambda r: r["market"]["interval80"].__setitem__("low", True),
        lambda r: r["market"].pop("confidence"),
        lambda r: r["market"].__setitem__("extra", 1),
        lambda r: r.__setitem__("market", None),
        lambda r: r["trend"].__setitem__("activeMonths", [1, "2"]),
        lambda r: r["lessStressfulJobGroups"].append({"jobGroupCode": "X"}),
        lambda r: r["lessStressfulJobGroups"].__setitem__(0, "M1806"),
        lambda r: r.__setitem__("synthetic", None),
        lambda r: r["hiring"].__setitem__("projectsCount", 1.5),
    ):
        copy = json.loads(json.dumps(record))
        change(copy)
        broken.append(copy)
    return broken


def test_the_compiled_validator_agrees_with_jsonschema(warehouse: Path, exports_dir: Path):
    result = publish_export(warehouse, exports_dir, now=NOW)
    schema = json.loads((result.path / "local_diagnosis.schema.json").read_text(encoding="utf-8"))
    check = schemas.record_validator(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    records = read_jsonl(result.path / "local_diagnosis.jsonl")
    first = next(r for r in records if r["diagnosisKey"] == "01:M1805")
    for record in records:
        assert check(record) is None and validator.is_valid(record)
    for bad in _mutations(first):
        assert check(bad) is not None, bad
        assert not validator.is_valid(bad), bad
    dates = json.loads((result.path / "departements.schema.json").read_text(encoding="utf-8"))
    check_dates = schemas.record_validator(dates)
    record = read_jsonl(result.path / "departements.jsonl")[0]
    for value, ok in (("2024-01-01", True), ("2024-13-01", False), ("01/02/2024", False)):
        record["periodStart"] = value
        assert (check_dates(record) is None) is ok, value
    # Several errors: the first in the record's field order is reported.
    record["offersCount"], record["isTight"] = "x", "y"
    assert check_dates(record)[0] == ("offersCount",)


def test_doubles_are_rounded_to_their_declared_decimals(tmp_path: Path, exports_dir: Path):
    path = tmp_path / "rounding.duckdb"
    run_sql(
        path,
        "create table diag_rounding (code varchar, unemployment__rate_pct double, "
        "free_ratio double, less_stressful__job_groups struct(job_group_code varchar, "
        "offers_per_10_job_seekers_shrunk double)[]);"
        "insert into diag_rounding values ('01', 56.00000000000001, 0.1::double + 0.2, "
        "[{'job_group_code': 'A', 'offers_per_10_job_seekers_shrunk': 3.14159}, null]),"
        "('02', -0.04, null, null),"
        # A half reached by two summation orders (the last bits differ): the same digits.
        "('03', 194.24999999999997, null, null), ('04', 194.25000000000003, null, null),"
        "('05', 6668.15, null, null), ('06', -0.05000000000000001, null, null);",
    )
    result = publish_export(path, exports_dir, tables={"rounding": "diag_rounding"}, now=NOW)
    records = read_jsonl(result.path / "rounding.jsonl")
    assert records[0] == {
        "code": "01",
        "unemployment": {"ratePct": 56.0},
        "freeRatio": 0.30000000000000004,  # no precision declared: published as it is
        "lessStressful": {
            "jobGroups": [{"jobGroupCode": "A", "offersPer10JobSeekersShrunk": 3.14}, None]
        },
    }
    assert records[1]["unemployment"] == {"ratePct": 0.0}  # never -0.0
    # Half away from zero on the decimal value, whatever side of it the double fell.
    assert [r["unemployment"]["ratePct"] for r in records[2:]] == [194.3, 194.3, 6668.2, -0.1]
    assert '"ratePct":0.0' in (result.path / "rounding.jsonl").read_text(encoding="utf-8")
    con = duckdb.connect()
    try:
        parquet = con.execute(
            "select unemployment__rate_pct, less_stressful__job_groups "
            f"from read_parquet('{result.path / 'rounding.parquet'}') order by code"
        ).fetchall()[:1]
    finally:
        con.close()
    assert parquet[0] == (
        56.0,
        [{"job_group_code": "A", "offers_per_10_job_seekers_shrunk": 3.14}, None],
    )
    schema = json.loads((result.path / "rounding.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["unemployment"]["properties"]["ratePct"]["x-decimals"] == 1
    assert "x-decimals" not in schema["properties"]["freeRatio"]
    items = schema["properties"]["lessStressful"]["properties"]["jobGroups"]["items"]
    assert items["properties"]["offersPer10JobSeekersShrunk"]["x-decimals"] == 2
    gz = result.path / "rounding.jsonl.gz"
    assert gzip.decompress(gz.read_bytes()) == (result.path / "rounding.jsonl").read_bytes()
    assert result.manifest["tables"]["rounding"]["files"]["jsonl_gz"]["bytes"] == (
        gz.stat().st_size
    )


# --------------------------------------------------------------------------- table list


def test_pending_tables_wait_for_their_dbt_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = write_manifest(
        tmp_path / "manifest.json", {"diag_local_diagnosis": {}, "diag_regions": {}}
    )
    with caplog.at_level("INFO", logger="assets.export.tables"):
        tables = tables_to_export(manifest)
    assert list(tables) == [
        "local_diagnosis",
        "job_groups",
        "departements",
        "regions",
        "hiring_headlines",
    ]  # job_groups, departements are not pending: a missing model is the export's error
    assert "export job_group_info skipped: dbt model diag_job_group_info" in caplog.text
    assert "export best_jobs_in_area skipped" in caplog.text
    assert set(EXPORT_TABLES) - set(tables) == {"job_group_info", "best_jobs_in_area"}
    assert set(EXPORT_TABLES) >= PENDING_TABLES
    assert set(tables_to_export(None)) == set(EXPORT_TABLES) - PENDING_TABLES


def test_every_exported_column_of_the_dbt_project_is_documented() -> None:
    """Skips tables whose diag model does not exist yet (they are not exported either)."""
    from assets.dbt_manifest import default_manifest_path, load_models

    models = load_models(default_manifest_path())
    checked = 0
    for name, relation in EXPORT_TABLES.items():
        model = models.get(relation)
        if model is None:
            continue
        assert model.description, f"{relation} (export {name}) has no dbt description"
        assert model.columns, f"{relation} (export {name}) documents no column"
        undocumented = [c for c, doc in model.columns.items() if not doc.description]
        assert not undocumented, f"{relation}: columns without a description: {undocumented}"
        checked += 1
    assert checked >= 3


def test_exports_doc_lists_every_field(tmp_path: Path) -> None:
    from assets.export.docs import render_exports_doc

    manifest = write_manifest(
        tmp_path / "manifest.json",
        {
            "diag_local_diagnosis": {
                "description": "One record per job group and département.",
                "columns": {
                    "diagnosis_key": "Key `<dep>:<rome>`.",
                    "market__offers_per_10_job_seekers": "Offers | per 10\njob seekers.",
                },
            }
        },
    )
    text = render_exports_doc(manifest, lineage={})
    assert "## `local_diagnosis`" in text
    assert (
        "| `market.offersPer10JobSeekers` | `market__offers_per_10_job_seekers` | varchar | "
        "Offers \\| per 10 job seekers. |" in text
    )
    assert "`regions` (`diag_regions`)" in text.split("## Not built yet")[1]


def test_every_exported_double_of_the_dbt_project_declares_its_decimals() -> None:
    """A DOUBLE of a diag model (or a DOUBLE field of its list of structs) is rounded to the
    decimals declared in assets/export/precision.py; a new one must be declared there."""
    import re

    from assets.dbt_manifest import default_manifest_path, load_models
    from assets.export.precision import decimals_for

    models = load_models(default_manifest_path())
    undeclared, checked = [], 0
    for relation in EXPORT_TABLES.values():
        model = models.get(relation)
        if model is None:
            continue
        for name, column in model.columns.items():
            data_type = " ".join(str(column.data_type or "").lower().split())
            if data_type in ("double", "float"):
                checked += 1
                if decimals_for(name) is None:
                    undeclared.append(f"{relation}.{name}")
            for field in re.findall(r'"?(\w+)"? (?:double|float)\b', data_type):
                checked += 1
                if decimals_for(f"{name}[].{field}") is None:
                    undeclared.append(f"{relation}.{name}[].{field}")
    assert checked >= 50
    assert not undeclared, f"no decimals in assets/export/precision.py for {undeclared}"
