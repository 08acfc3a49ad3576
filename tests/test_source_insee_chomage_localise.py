"""INSEE localised unemployment rates: the real 2021-Q4 XLS, publisher drift, contract, staging.

tests/fixtures/insee_chomage_localise/ holds the two data sheets of the real file cut down
to a few areas and quarters, cell for cell (title rows, header, notes). The drift tests
rebuild a workbook from them with openpyxl, writing codes 10-95 and the rates as numeric
cells as INSEE does. The real legacy XLS (the mirror) is parsed once per module.
"""

from __future__ import annotations

import csv
import fnmatch
from pathlib import Path

import duckdb
import pytest
from dbt_runner import run_dbt_build
from openpyxl import Workbook

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import insee_chomage_localise as insee

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / insee.SLUG
MIRROR = ROOT / "warehouse" / "mirror" / insee.SLUG
REAL_FILE = MIRROR / "sl_etc_2021T4.xls"


def grid(kind: str) -> list[list[str]]:
    path = FIXTURES / f"sl_etc_2021T4_{kind}_extract.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [list(row) for row in csv.reader(fh)]


def typed(value: str, column: int, row: int, header: int) -> object:
    """Cells as INSEE types them: codes 10-95 and every rate are numbers, the rest text."""
    if value == "":
        return None
    if row > header and column == 0 and value.isdigit() and 10 <= int(value) <= 95:
        return int(value)
    if row > header and column >= 2:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def write_workbook(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    wb = Workbook()
    notes = wb.active
    notes.title = "Sources_et_méthodes"
    notes.append(["Taux de chômage localisé par région et département"])
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        header = next(i for i, r in enumerate(rows) if r and r[0] == "Code")
        for i, row in enumerate(rows):
            ws.append([typed(v, j, i, header) for j, v in enumerate(row)])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, insee.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return insee.parse(land([REAL_FILE], tmp_path_factory.mktemp("landing")))["rates"]


@pytest.fixture
def extract_file(tmp_path):
    return write_workbook(
        tmp_path / "src" / "sl_etc_2021T4.xlsx",
        {"Département": grid("departement"), "Région": grid("region")},
    )


def parse_file(path: Path, landing: Path):
    return insee.parse(land([path], landing))["rates"].frame


# ------------------------------------------------------------------------ real file


def test_real_file_long_form(real):
    frame = real.frame
    # (100 départements + 17 régions + 2 national rows) x 160 quarters 1982-Q1..2021-Q4.
    assert len(frame) == 119 * 160
    assert frame["quarter"].min() == "1982-Q1" and frame["quarter"].max() == "2021-Q4"
    assert set(frame["vintage"]) == {"2021-Q4"}
    counts = frame.groupby("area_type")["area_code"].nunique().to_dict()
    assert counts == {"departement": 100, "region": 17, "france": 2}
    one = frame[(frame["area_code"] == "01") & (frame["area_type"] == "departement")]
    assert one.set_index("quarter").loc["2021-Q4", "rate"] == "5.5"


def test_real_file_codes_are_text_without_decimals(real):
    deps = set(real.frame.loc[real.frame["area_type"] == "departement", "area_code"])
    assert {"01", "10", "2A", "2B", "95", "971", "974"} <= deps
    assert not any(code.endswith(".0") for code in deps)
    # Mayotte: INSEE publishes no localised rate, the file has no row for it.
    assert "976" not in deps
    assert len(deps) == 100


def test_real_file_national_rows_are_told_apart(real):
    france = real.frame[real.frame["area_type"] == "france"]
    labels = dict(france[["area_code", "area_label"]].drop_duplicates().values.tolist())
    assert labels == {
        "france_hors_mayotte": "FRANCE (HORS MAYOTTE)",
        "france_metropolitaine": "FRANCE METROPOLITAINE",
    }
    assert set(france["published_code"]) == {"00"}


def test_real_file_overseas_rates_are_null_before_2014(real):
    frame = real.frame
    missing = frame[frame["rate"].isna()]
    assert set(missing["area_code"]) == {
        "971",
        "972",
        "973",
        "974",
        "01",
        "02",
        "03",
        "04",
        "france_hors_mayotte",
    }
    assert missing["quarter"].max() == "2013-Q4"
    dom = frame[(frame["area_code"] == "971") & (frame["quarter"] == "2014-Q1")]
    assert dom["rate"].tolist() == ["23.4"]
    assert not frame["rate"].eq("0").any()


def test_real_file_meets_its_contract(real):
    report = validate_frame(real.frame, insee.CONTRACTS["rates"], slug=insee.SLUG, table="rates")
    assert report.success, report.describe()


# ------------------------------------------------------------------------------ drift


def test_extract_numeric_codes_and_footer(extract_file, tmp_path):
    frame = parse_file(extract_file, tmp_path / "landing")
    deps = frame[frame["area_type"] == "departement"]
    assert sorted(deps["area_code"].unique()) == sorted(
        ["01", "10", "2A", "2B", "75", "95", "971", "974"]
    )
    assert set(frame["quarter"]) == {"1982-Q1", "2013-Q4", "2014-Q1", "2021-Q3", "2021-Q4"}
    assert len(frame) == (8 + 6) * 5  # the notes under each table are not areas
    aube = deps[(deps["area_code"] == "10") & (deps["quarter"] == "2021-Q4")]
    assert aube["rate"].tolist() == ["9.7"]


def test_renamed_sheets_new_vintage_added_column_and_moved_title(tmp_path):
    dep, reg = grid("departement"), grid("region")
    # Next quarter: a 2022-Q1 column is added, plus a publisher's comment column.
    for rows in (dep, reg):
        rows[3] = [*rows[3], "T1_2022", "Commentaire"]
        for row in rows[4:]:
            row.extend(["7.1", ""] if row[0] and row[0][:1].isdigit() else ["", ""])
    dep.insert(0, ["Insee"])  # one more title row
    path = write_workbook(tmp_path / "sl_etc_2022T1.xlsx", {"Dep": dep, "Reg": reg})
    assert fnmatch.fnmatch(path.name, insee.SPEC.mirror_patterns[0])
    frame = parse_file(path, tmp_path / "landing")
    assert set(frame["vintage"]) == {"2022-Q1"}
    assert "2022-Q1" in set(frame["quarter"])
    assert set(frame["source_sheet"]) == {"Dep", "Reg"}
    assert set(frame["area_type"]) == {"departement", "region", "france"}


def test_sheets_are_told_apart_by_content_when_names_say_nothing(tmp_path):
    dep, reg = grid("departement"), grid("region")
    dep[0] = ["Estimations de taux de chômage localisé"]
    reg[0] = ["Estimations de taux de chômage localisé"]
    path = write_workbook(tmp_path / "sl_etc_2021T4.xlsx", {"Feuil1": dep, "Feuil2": reg})
    frame = parse_file(path, tmp_path / "landing")
    kinds = frame.groupby("source_sheet")["area_type"].agg(lambda s: sorted(set(s))).to_dict()
    assert kinds == {"Feuil1": ["departement"], "Feuil2": ["france", "region"]}


def test_missing_region_sheet_is_named(tmp_path):
    path = write_workbook(tmp_path / "sl_etc_2021T4.xlsx", {"Département": grid("departement")})
    with pytest.raises(ParseError, match=r"sl_etc_2021T4.xlsx: no region sheet"):
        parse_file(path, tmp_path / "landing")


def test_unknown_national_label_is_refused(tmp_path):
    reg = grid("region")
    reg[4][1] = "FRANCE (Y COMPRIS OUTRE-MER)"
    path = write_workbook(
        tmp_path / "sl_etc_2021T4.xlsx", {"Département": grid("departement"), "Région": reg}
    )
    with pytest.raises(ParseError, match="unknown label"):
        parse_file(path, tmp_path / "landing")


def test_quarter_and_vintage_helpers():
    assert insee.quarter_of("T4_2021") == "2021-Q4"
    assert insee.quarter_of("2003-T1") == "2003-Q1"
    assert insee.quarter_of("Libellé") is None
    assert insee.vintage_of("sl_etc_2021T4.xls") == "2021-Q4"


def test_contract_reports_bad_rate_and_code(real):
    frame = real.frame.head(500).copy()
    frame.loc[0, "rate"] = "n.d."
    frame.loc[1, "area_code"] = "1.0"
    report = validate_frame(
        frame,
        insee.CONTRACTS["rates"],
        slug=insee.SLUG,
        table="rates",
        source_files=("sl_etc_2021T4.xls",),
    )
    assert "sl_etc_2021T4.xls" in report.describe()
    assert {"rate", "area_code"} <= {f.column for f in report.failures}
    assert {"n.d.", "1.0"} <= {s for f in report.failures for s in f.samples}


# ------------------------------------------------------------------------- dbt staging


def test_dbt_staging_builds_on_the_real_file(real, tmp_path):
    raw_dir = tmp_path / "raw"
    write_parquet_atomically(
        real.frame, raw_dir / insee.SLUG / "rates" / f"{real.partition}.parquet"
    )
    duckdb_path = tmp_path / "warehouse.duckdb"
    done = run_dbt_build(tmp_path, [f"source:{insee.SLUG}", f"staging.{insee.SLUG}"])
    assert done.returncode == 0, done.stdout + done.stderr
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        first = con.execute(
            "select quarter_label, quarter_start_date, unemployment_rate_pct "
            "from stg_insee_chomage_localise__rates "
            "where area_type = 'departement' and area_code = '10' "
            "order by quarter_start_date desc nulls last limit 1"
        ).fetchall()
        nulls = con.execute(
            "select count(*) from stg_insee_chomage_localise__rates "
            "where unemployment_rate_pct is null"
        ).fetchall()[0][0]
        deps = con.execute(
            "select count(distinct area_code) from stg_insee_chomage_localise__rates "
            "where area_type = 'departement' and unemployment_rate_pct is not null"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert str(first[0][0]) == "2021-Q4"
    assert str(first[0][1]) == "2021-10-01"
    assert float(first[0][2]) == 9.7
    assert nulls == real.frame["rate"].isna().sum()
    assert deps == 100  # all but Mayotte (976)
