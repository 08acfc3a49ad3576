"""France Travail BMO: the real 2024 workbook, publisher drift, the contract and staging.

Small workbooks are generated with openpyxl from tests/fixtures/francetravail_bmo/ (real
rows of the 2024 file) in the published layout: a dictionary sheet, then a data sheet
whose first row is the header, every cell text. The real workbook (the mirror) is parsed
once per module.
"""

from __future__ import annotations

import csv
import fnmatch
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dbt_runner import run_dbt_build
from openpyxl import Workbook

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import francetravail_bmo as bmo

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / bmo.SLUG
MIRROR = ROOT / "warehouse" / "mirror" / bmo.SLUG
REAL_FILE = MIRROR / "Base_open_data_BMO_2024.xlsx"
HEADER_2024 = [
    "annee",
    "Code métier BMO",
    "Nom métier BMO",
    "Famille_met",
    "Lbl_fam_met",
    "REG",
    "NOM_REG",
    "Dept",
    "NomDept",
    "BE24",
    "NOMBE24",
    "met",
    "xmet",
    "smet",
]


def extract_rows() -> list[dict[str, str]]:
    with (FIXTURES / "bmo_2024_extract.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_workbook(
    path: Path,
    header: list[str],
    rows: list[list[object]],
    *,
    sheet: str = "BMO_2024_open_data",
    dictionary: str = "Description des variables",
) -> Path:
    """A workbook in the published layout: dictionary sheet first, header on row 1."""
    wb = Workbook()
    ws = wb.active
    ws.title = dictionary
    ws.append([])
    ws.append([None, "Variables", "Description"])
    for name in header:
        ws.append([None, name, f"description of {name}"])
    data = wb.create_sheet(sheet)
    data.append(header)
    for row in rows:
        data.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, bmo.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


def vintage(
    rows: list[dict[str, str]], year: int, *, order: list[str] | None = None, fap2009=False
):
    """The extract rewritten as another vintage: BE<yy> headers, year, column order."""
    yy = f"{year % 100:02d}"
    rename = {"BE24": f"BE{yy}", "NOMBE24": f"NOMBE{yy}"}
    header = [rename.get(h, h) for h in (order or HEADER_2024)]
    out = []
    for row in rows:
        values = {rename.get(k, k): v for k, v in row.items()}
        values["annee"] = str(year)
        if fap2009:
            code = values["Code métier BMO"]
            values["Code métier BMO"] = code[:2] + ("Z" if code[2] == "X" else code[2]) + code[3:]
        out.append([values.get(h, "c") for h in header])
    return header, out


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    return bmo.parse(land([REAL_FILE], landing))["projects"]


@pytest.fixture
def extract_file(tmp_path):
    rows = extract_rows()
    return write_workbook(
        tmp_path / "src" / "Base_open_data_BMO_2024.xlsx",
        HEADER_2024,
        [[r[h] for h in HEADER_2024] for r in rows],
    )


# ----------------------------------------------------------------------- real workbook


def test_real_workbook_rows_codes_and_secret_cells(real):
    frame = real.frame
    assert len(frame) == 53_443
    assert set(frame["survey_year"]) == {"2024"}
    assert set(frame["nomenclature"]) == {"fap2021"}
    assert set(frame["source_sheet"]) == {"BMO_2024_open_data"}
    assert frame["code_metier_bmo"].nunique() == 217
    # 10,891 secret `met` cells: NULL and flagged, never 0, no '*' left.
    assert int(frame["met_masked"].sum()) == 10_891
    assert frame["met"].isna().sum() == 10_891
    assert (frame["met_masked"] == frame["met"].isna()).all()
    for column in bmo.COUNT_COLUMNS:
        assert not frame[column].eq("*").any()
        assert not frame.loc[frame[f"{column}_masked"], column].notna().any()
    assert {"01", "2A", "2B", "971", "976", "978"} <= set(frame["dept"])
    assert frame["dept"].nunique() == 102
    assert set(frame.loc[frame["dept"] == "978", "bassin_code"]) == {"104"}
    assert frame["bassin_code"].str.len().isin([3, 4]).all()
    assert frame["_row_number"].tolist()[:3] == [1, 2, 3]


def test_real_workbook_meets_its_contract(real):
    report = validate_frame(real.frame, bmo.CONTRACTS["projects"], slug=bmo.SLUG, table="projects")
    assert report.success, report.describe()


# ---------------------------------------------------------------------------- extract


def test_extract_masked_cells_are_null_and_flagged(extract_file, tmp_path):
    frame = bmo.parse(land([extract_file], tmp_path / "landing"))["projects"].frame
    assert len(frame) == len(extract_rows())
    row = frame[(frame["bassin_code"] == "103") & (frame["code_metier_bmo"] == "A0X40")].iloc[0]
    assert (row["met"], row["met_masked"]) == ("17", False)
    assert pd.isna(row["xmet"]) and row["xmet_masked"]
    masked_met = frame[frame["met_masked"]]
    assert len(masked_met) >= 1 and masked_met["met"].isna().all()
    assert list(frame.columns[: len(bmo.RAW_COLUMNS)]) == list(bmo.RAW_COLUMNS)


def test_numeric_cells_are_read_back_as_text_without_decimals(tmp_path):
    rows = extract_rows()[:2]
    numeric = [
        [int(r["annee"]), *[r[h] for h in HEADER_2024[1:9]], int(r["BE24"]), r["NOMBE24"]]
        + [int(r["met"]), r["xmet"], r["smet"]]
        for r in rows
    ]
    path = write_workbook(tmp_path / "Base_open_data_BMO_2024.xlsx", HEADER_2024, numeric)
    frame = bmo.parse(land([path], tmp_path / "landing"))["projects"].frame
    assert frame["bassin_code"].tolist() == ["101", "102"]
    assert frame["met"].tolist() == ["95", "167"]
    assert frame["survey_year"].tolist() == ["2024", "2024"]


# ------------------------------------------------------------------------------- drift


def test_next_vintage_with_renamed_sheets_year_columns_order_and_added_column(tmp_path):
    # 2023-like order (bassin before département), plus the `clpe` column added in 2026.
    order = [*HEADER_2024[:5], "BE24", "NOMBE24", "Dept", "NomDept", "REG", "NOM_REG"]
    order += ["clpe", "met", "xmet", "smet"]
    header, rows = vintage(extract_rows(), 2025, order=order)
    assert "BE25" in header and "NOMBE25" in header
    path = write_workbook(
        tmp_path / "Base_open_data_BMO_2025.xlsx",
        header,
        rows,
        sheet="Feuil1",
        dictionary="Description_des_variables",
    )
    frame = bmo.parse(land([path], tmp_path / "landing"))["projects"].frame
    assert set(frame["survey_year"]) == {"2025"}
    assert set(frame["bassin_year"]) == {"2025"}
    assert set(frame["source_sheet"]) == {"Feuil1"}
    assert "104" in set(frame["bassin_code"])
    assert "BASSIN ILES DU NORD" in set(frame["bassin_name"])
    assert set(frame["clpe"]) == {"c"}  # the added column is kept, as text
    assert set(frame["nomenclature"]) == {"fap2021"}
    report = validate_frame(frame, bmo.CONTRACTS["projects"], slug=bmo.SLUG, table="projects")
    assert {f.expectation for f in report.failures} == {"expect_table_row_count_to_be_between"}


def test_fap2009_vintage_is_detected(tmp_path):
    order = [*HEADER_2024[:5], "BE24", "NOMBE24", "Dept", "NomDept", "REG", "NOM_REG"]
    header, rows = vintage(
        extract_rows(), 2023, order=order + ["met", "xmet", "smet"], fap2009=True
    )
    path = write_workbook(
        tmp_path / "Base_open_data_23.xlsx", header, rows, sheet="BMO_2023_open_data"
    )
    assert fnmatch.fnmatch(path.name, bmo.SPEC.mirror_patterns[0])
    frame = bmo.parse(land([path], tmp_path / "landing"))["projects"].frame
    assert set(frame["nomenclature"]) == {"fap2009"}
    assert set(frame["survey_year"]) == {"2023"}
    assert "A0Z40" in set(frame["code_metier_bmo"])


def test_mixed_nomenclatures_are_refused():
    assert bmo.detect_nomenclature(["A0X40", "G0A40"], file_name="f") == "fap2021"
    assert bmo.detect_nomenclature(["A0Z40", "T2A60"], file_name="f") == "fap2009"
    with pytest.raises(ParseError, match="X-codes.*Z-codes"):
        bmo.detect_nomenclature(["A0X40", "A0Z40"], file_name="f.xlsx")
    with pytest.raises(ParseError, match="f.xlsx"):
        bmo.detect_nomenclature(["G0A40"], file_name="f.xlsx")


def test_removed_required_column_names_file_sheet_and_column(tmp_path):
    header = [h for h in HEADER_2024 if h != "smet"]
    rows = [[r[h] for h in header] for r in extract_rows()]
    path = write_workbook(tmp_path / "Base_open_data_BMO_2024.xlsx", header, rows)
    with pytest.raises(ParseError) as err:
        bmo.parse(land([path], tmp_path / "landing"))
    message = str(err.value)
    assert "Base_open_data_BMO_2024.xlsx" in message and "BMO_2024_open_data" in message
    assert "'smet'" in message and "found" in message


def test_workbook_without_bmo_sheet_is_refused(tmp_path):
    wb = Workbook()
    wb.active.append(["something", "else"])
    path = tmp_path / "Base_open_data_BMO_2024.xlsx"
    wb.save(path)
    with pytest.raises(ParseError, match="no workbook with a BMO data sheet"):
        bmo.parse(land([path], tmp_path / "landing"))


def test_published_zip_and_the_same_xlsx_beside_it(extract_file, tmp_path):
    archive = tmp_path / "src" / "Base_open_data_BMO_2024.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(extract_file, f"Donnees_consolidees_2024/{extract_file.name}")
    assert all(
        fnmatch.fnmatch(p.name, bmo.SPEC.mirror_patterns[0]) for p in (archive, extract_file)
    )
    only_zip = bmo.parse(land([archive], tmp_path / "l1"))["projects"]
    assert len(only_zip.frame) == len(extract_rows())
    assert only_zip.frame["_source_file"].iloc[0] == (
        "Base_open_data_BMO_2024.zip!Base_open_data_BMO_2024.xlsx"
    )
    both = bmo.parse(land([extract_file, archive], tmp_path / "l2"))["projects"]
    assert len(both.frame) == len(extract_rows())  # same bytes read once


def test_two_different_workbooks_for_one_year_are_refused(extract_file, tmp_path):
    header, rows = vintage(extract_rows()[:3], 2024)
    other = write_workbook(tmp_path / "other" / "Base_open_data_BMO_2024b.xlsx", header, rows)
    with pytest.raises(ParseError, match="several different workbooks for one survey year"):
        bmo.parse(land([extract_file, other], tmp_path / "landing"))


def test_mirror_pattern_takes_new_names_not_the_provenance_note():
    pattern = bmo.SPEC.mirror_patterns[0]
    assert fnmatch.fnmatch("Base_open_data_BMO_2025.xlsx", pattern)
    assert not fnmatch.fnmatch("PROVENANCE.md", pattern)
    assert sorted(p.name for p in MIRROR.iterdir() if fnmatch.fnmatch(p.name, pattern)) == [
        "Base_open_data_BMO_2024.xlsx"
    ]


# ---------------------------------------------------------------------------- contract


def test_contract_names_column_and_samples(real):
    frame = real.frame.head(2000).copy()
    frame.loc[0, "dept"] = "9A"
    frame.loc[1, "met"] = "12,5"
    frame = frame.drop(columns=["smet_masked"])
    report = validate_frame(
        frame,
        bmo.CONTRACTS["projects"],
        slug=bmo.SLUG,
        table="projects",
        source_files=("Base_open_data_BMO_2024.xlsx",),
    )
    text = report.describe()
    assert "Base_open_data_BMO_2024.xlsx" in text
    failed = {f.column for f in report.failures}
    assert {"dept", "met", "smet_masked"} <= failed
    assert {"9A", "12,5"} <= {s for f in report.failures for s in f.samples}


# ------------------------------------------------------------------------- dbt staging


def test_dbt_staging_builds_on_the_real_workbook(real, tmp_path):
    raw_dir = tmp_path / "raw"
    write_parquet_atomically(
        real.frame, raw_dir / bmo.SLUG / "projects" / f"{real.partition}.parquet"
    )
    duckdb_path = tmp_path / "warehouse.duckdb"
    done = run_dbt_build(tmp_path, [f"source:{bmo.SLUG}", f"staging.{bmo.SLUG}"])
    assert done.returncode == 0, done.stdout + done.stderr
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        rows, masked, nulls, com = con.sql(
            "select count(*), count_if(recruitment_projects_masked), "
            "count_if(recruitment_projects_count is null), "
            "count_if(is_collectivite_outre_mer) "
            "from stg_francetravail_bmo__projects"
        ).fetchall()[0]
        types = dict(
            con.sql(
                "select column_name, data_type from information_schema.columns "
                "where table_name = 'stg_francetravail_bmo__projects'"
            ).fetchall()
        )
        codes = {
            r[0]
            for r in con.sql(
                "select distinct departement_code from stg_francetravail_bmo__projects"
            ).fetchall()
        }
    finally:
        con.close()
    assert (rows, masked, nulls) == (53_443, 10_891, 10_891)
    assert com == (real.frame["dept"] == "978").sum()
    assert types["recruitment_projects_count"] == "BIGINT"
    assert types["survey_year"] == "INTEGER"
    assert {"01", "2A", "971", "978"} <= codes
