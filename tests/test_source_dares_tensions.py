"""DARES tension indicators 2019: parser (float région codes, `reg `, `Tension `), drift,
contracts and staging, on line extracts of the published CSVs and on the real files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dbt_runner import run_dbt_build

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, raw_path, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import dares_tensions as dt

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / dt.SLUG
MIRROR = ROOT / "warehouse" / "mirror" / dt.SLUG


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, dt.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


@pytest.fixture(scope="module")
def real_tables(tmp_path_factory):
    files = [MIRROR / "tensions.csv", MIRROR / "evol_tensions.csv"]
    return dt.parse(land(files, tmp_path_factory.mktemp("landing")))


@pytest.fixture
def fixture_tables(tmp_path):
    return dt.parse(land(sorted(FIXTURES.glob("*.csv")), tmp_path))


def write(dir_: Path, name: str, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    path = dir_ / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fixture_columns_and_codes(fixture_tables):
    frame = fixture_tables["tensions"].frame
    assert list(frame.columns[:15]) == [
        "fap",
        "emploi_moyen",
        "tension",
        "categorie_tension",
        *dt.COMPONENTS,
        "annee",
        "niveau_geo",
        "niveau_fap",
        "reg",
        "dep",
    ]
    assert set(frame["niveau_geo"]) == {"nat", "reg", "dep"}  # `reg ` trimmed
    regions = frame[frame["niveau_geo"] == "reg"]
    assert set(regions["reg"]) == {"01", "02", "84"}  # from 1.0, 2.0, 84.0
    assert set(frame.loc[frame["niveau_geo"] == "dep", "dep"]) >= {"01", "2A", "971"}
    national = frame[frame["niveau_geo"] == "nat"]
    assert national["reg"].isna().all() and national["dep"].isna().all()


def test_fixture_empty_indicators_stay_null(fixture_tables):
    frame = fixture_tables["tensions"].frame
    paris = frame[(frame["dep"] == "75")].iloc[0]
    assert pd.isna(paris["tension"]) and pd.isna(paris["categorie_tension"])
    assert paris["emploi_moyen"] == "200"
    hautes_alpes = frame[frame["dep"] == "05"].iloc[0]
    assert hautes_alpes["tension"] == "-0.7889413664650795"
    assert pd.isna(hautes_alpes["categorie_tension"])


def test_real_files(real_tables):
    frame = real_tables["tensions"].frame
    evol = real_tables["evol_tensions"].frame
    assert len(frame) == 31_034 and len(evol) == 2_367
    assert frame.groupby("niveau_geo").size().to_dict() == {
        "dep": 26_300,
        "nat": 263,
        "reg": 4_471,
    }
    assert frame["reg"].dropna().nunique() == 17 and frame["dep"].dropna().nunique() == 100
    assert sorted(frame["reg"].dropna().unique())[:5] == ["01", "02", "03", "04", "11"]
    assert set(frame["annee"]) == {"2019"}
    assert sorted(evol["annee"].unique()) == [str(y) for y in range(2011, 2020)]
    for table, parsed in real_tables.items():
        report = validate_frame(parsed.frame, dt.CONTRACTS[table], slug=dt.SLUG, table=table)
        assert report.success, report.describe()


def test_renamed_files_reordered_and_added_columns(tmp_path):
    src = tmp_path / "src"
    lines = (FIXTURES / "tensions.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    order = [14, 13, 12, 11, *range(11)]
    moved = [
        ",".join([r[i] for i in order] + ["x" if n else "Nouvelle colonne"])
        for n, r in enumerate(rows)
    ]
    a = write(src, "tensions_2019_v2.csv", "\n".join(moved) + "\n")
    b = write(src, "evolution_tensions.csv", (FIXTURES / "evol_tensions.csv").read_text())
    tables = dt.parse(land([a, b], tmp_path / "landing"))
    frame = tables["tensions"].frame
    assert "nouvelle_colonne" in frame.columns
    row = frame[(frame["niveau_geo"] == "reg") & (frame["reg"] == "84")].iloc[0]
    assert (row["fap"], row["emploi_moyen"]) == ("A0Z40", "4500")
    assert len(tables["evol_tensions"].frame) == 18


def test_missing_column_fails_the_contract_with_its_name(tmp_path):
    text = (FIXTURES / "tensions.csv").read_text(encoding="utf-8")
    text = text.replace("Lien formation-emploi", "Lien formation")
    src = tmp_path / "src"
    a = write(src, "tensions.csv", text)
    b = write(src, "evol_tensions.csv", (FIXTURES / "evol_tensions.csv").read_text())
    parsed = dt.parse(land([a, b], tmp_path / "landing"))["tensions"]
    report = validate_frame(
        parsed.frame,
        dt.CONTRACTS["tensions"],
        slug=dt.SLUG,
        table="tensions",
        source_files=("tensions.csv",),
    )
    assert not report.success
    assert "lien_formation_emploi" in report.describe() and "tensions.csv" in report.describe()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParseError, match="for table evol_tensions"):
        dt.parse(land([FIXTURES / "tensions.csv"], tmp_path))


def test_contract_reports_bad_values(fixture_tables):
    frame = fixture_tables["tensions"].frame.copy()
    frame.loc[0, "categorie_tension"] = "6.0"
    frame.loc[1, "dep"] = "1"
    report = validate_frame(frame, dt.CONTRACTS["tensions"], slug=dt.SLUG, table="tensions")
    assert {"categorie_tension", "dep"} <= {f.column for f in report.failures}


@pytest.mark.parametrize(
    ("value", "expected"), [("1.0", "01"), ("84.0", "84"), ("2A", "2A"), ("971", "971"), ("", None)]
)
def test_code_text(value, expected):
    assert dt.code_text(value, 2) == expected


@pytest.mark.slow
def test_dbt_staging_build(real_tables, tmp_path):
    for table, parsed in real_tables.items():
        write_parquet_atomically(parsed.frame, raw_path(tmp_path / "raw", dt.SLUG, table))
    result = run_dbt_build(tmp_path, [f"staging.{dt.SLUG}", f"source:{dt.SLUG}"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        by_type = con.execute(
            "select territory_type, count(*), count(distinct territory_code) "
            "from stg_dares_tensions__tensions group by territory_type order by territory_type"
        ).fetchall()
        row = con.execute(
            "select fap_level, reference_year, average_employment, tension_index, tension_class, "
            "hiring_intensity_class, geographic_mismatch_class from stg_dares_tensions__tensions "
            "where fap_code = 'A0Z40' and territory_type = 'national'"
        ).fetchone()
        guadeloupe = con.execute(
            "select count(*) from stg_dares_tensions__tensions "
            "where territory_type = 'region' and territory_code = '01'"
        ).fetchone()
    finally:
        con.close()
    assert by_type == [("departement", 26_300, 100), ("national", 263, 1), ("region", 4_471, 17)]
    assert row[:3] == ("fap225", 2019, 63_100)
    assert row[3] == pytest.approx(-0.006062928049646171)
    assert row[4:] == (3, 5, 5)
    assert guadeloupe == (263,)
