"""INSEE unemployment rates by zone d'emploi: the real workbook, drift, contracts, staging.

Drift cases use small workbooks written with openpyxl in the published layout (title rows,
long-label row, short-code header row, text codes), then altered the way INSEE alters a
release: another file name, a renamed sheet, more title rows, moved and added columns.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dbt_runner import run_dbt_build
from openpyxl import Workbook

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, raw_path, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import insee_chomage_zone_emploi as cze

ROOT = Path(__file__).resolve().parent.parent
MIRROR = ROOT / "warehouse" / "mirror" / cze.SLUG
REAL_FILE = "chomage-zone-t1-2003-t2-2022.xlsx"


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, cze.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


@pytest.fixture(scope="module")
def real_tables(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    return cze.parse(land([MIRROR / REAL_FILE], landing))


ZONE_HEADER = ["ZE2020", "LIBZE2020", "REG", "LIBREG", "2003-T1", "2003-T2", "2014-T1"]
ZONE_ROWS = [
    ["0051", "Alençon", "00", "INTERRÉGIONAL", 7, 7.4, 9.1],
    ["0101", "Côte sous le vent", "01", "GUADELOUPE", None, None, 25.3],
    ["9407", "Propriano", "94", "CORSE", 10.5, "*", 10.1],
]
PART_HEADER = ["ZER2020", "LIBZER2020", "2003-T1", "2003-T2", "2014-T1"]
PART_ROWS = [["2851", "Alençon - partie Normandie", 6.9, 7.3, 9.0]]


def write_workbook(
    path: Path,
    *,
    zone_sheet: str = "txcho_ze",
    title_rows: int = 4,
    zone_header: list | None = None,
    zone_rows: list | None = None,
    column_order: list[int] | None = None,
) -> Path:
    """A workbook in the published layout; codes are text cells, rates numbers."""
    header = zone_header or ZONE_HEADER
    rows = zone_rows or ZONE_ROWS
    order = column_order or list(range(len(header)))
    wb = Workbook()
    doc = wb.active
    doc.title = "Documentation"
    doc.append(["Taux de chômage localisés par zone d'emploi"])
    ws = wb.create_sheet(zone_sheet)
    ws.append(["Taux de chômage localisés par zone d'emploi, en moyenne trimestrielle"])
    ws.append(["Source : Insee, Estimations de taux de chômage localisés."])
    for _ in range(title_rows - 2):
        ws.append([])
    ws.append([f"Libellé long {i}" for i in order])
    ws.append([header[i] for i in order])
    for row in rows:
        ws.append([row[i] for i in order])
    parts = wb.create_sheet("txcho_parties reg")
    for _ in range(6):
        parts.append(["NB : les zones d'emploi interrégionales sont codées 00XX"])
    parts.append(["Code de la zone", "Libellé", "1er trimestre 2003"])
    parts.append(PART_HEADER)
    for row in PART_ROWS:
        parts.append(row)
    wb.save(path)
    return path


def parse_one(path: Path, tmp_path: Path):
    return cze.parse(land([path], tmp_path / "landing"))


def test_real_workbook_long_form(real_tables):
    zones = real_tables["txcho_ze"].frame
    parts = real_tables["txcho_parties_reg"].frame
    # 302 zones and 28 regional parts x 78 quarters (2003-T1 .. 2022-T2).
    assert len(zones) == 302 * 78 == 23_556
    assert len(parts) == 28 * 78 == 2_184
    assert zones["ze"].nunique() == 302 and zones["trimestre"].nunique() == 78
    first = zones.iloc[0]
    assert (first["ze"], first["reg"], first["trimestre"], first["taux_chomage"]) == (
        "0051",
        "00",
        "2003-T1",
        "7",
    )
    assert set(zones["zonage"]) == {"ZE2020"}
    assert zones["_source_file"].eq(REAL_FILE).all()
    assert zones["_row_number"].tolist() == list(range(1, len(zones) + 1))


def test_real_workbook_dom_before_2014_is_null_not_zero(real_tables):
    zones = real_tables["txcho_ze"].frame
    dom = zones[zones["reg"].isin(["01", "02", "04"])]
    assert dom["ze"].nunique() == 15
    before = dom[dom["trimestre"] < "2014"]
    after = dom[dom["trimestre"] >= "2014"]
    assert before["taux_chomage"].isna().all() and len(before) == 15 * 44
    assert after["taux_chomage"].notna().all()
    assert zones["taux_chomage"].isna().sum() == 15 * 44
    assert not zones["taux_chomage_masked"].any()
    assert "0" not in set(before["taux_chomage"].dropna())


def test_real_workbook_meets_contracts(real_tables):
    for table, parsed in real_tables.items():
        report = validate_frame(parsed.frame, cze.CONTRACTS[table], slug=cze.SLUG, table=table)
        assert report.success, report.describe()


def test_next_vintage_name_renamed_sheet_and_moved_columns(tmp_path):
    # Another release: new file name, sheet renamed, one more title row, the region
    # columns moved after the quarters, an extra column added.
    header = [*ZONE_HEADER, "DEP_PRINCIPAL"]
    rows = [[*r, "61"] for r in ZONE_ROWS]
    path = write_workbook(
        tmp_path / "chomage-zone-t1-2003-t4-2023.xlsx",
        zone_sheet="Taux ZE",
        title_rows=5,
        zone_header=header,
        zone_rows=rows,
        column_order=[0, 1, 4, 5, 6, 2, 3, 7],
    )
    tables = parse_one(path, tmp_path)
    zones = tables["txcho_ze"].frame
    assert len(zones) == 3 * 3
    row = zones[(zones["ze"] == "0051") & (zones["trimestre"] == "2003-T2")].iloc[0]
    assert (row["reg"], row["libreg"], row["taux_chomage"]) == ("00", "INTERRÉGIONAL", "7.4")
    assert "dep_principal" in zones.columns
    assert len(tables["txcho_parties_reg"].frame) == 3


def test_masked_cell_is_null_and_flagged(tmp_path):
    zones = parse_one(write_workbook(tmp_path / "chomage-zone-x.xlsx"), tmp_path)["txcho_ze"]
    frame = zones.frame
    cell = frame[(frame["ze"] == "9407") & (frame["trimestre"] == "2003-T2")].iloc[0]
    assert cell["taux_chomage_masked"] and pd.isna(cell["taux_chomage"])
    # An empty cell (no estimate published) is NULL too, but not masked.
    empty = frame[(frame["ze"] == "0101") & (frame["trimestre"] == "2003-T1")].iloc[0]
    assert pd.isna(empty["taux_chomage"]) and not empty["taux_chomage_masked"]


def test_other_quarter_label_style_and_zoning_year(tmp_path):
    header = ["ZE2030", "LIBZE2030", "REG", "LIBREG", "T1_2003", "T2_2003", "T1_2014"]
    tables = parse_one(
        write_workbook(tmp_path / "chomage-zone-y.xlsx", zone_header=header), tmp_path
    )
    zones = tables["txcho_ze"].frame
    assert set(zones["trimestre"]) == {"2003-T1", "2003-T2", "2014-T1"}
    assert set(zones["zonage"]) == {"ZE2030"}
    assert {"ze", "libze"} <= set(zones.columns)


def test_removed_required_column_names_file_sheet_and_column(tmp_path):
    path = write_workbook(
        tmp_path / "chomage-zone-z.xlsx",
        zone_header=["ZE2020", "LIBZE2020", "REG", "2003-T1", "2003-T2", "2014-T1"],
        zone_rows=[r[:3] + r[4:] for r in ZONE_ROWS],
    )
    with pytest.raises(ParseError) as excinfo:
        parse_one(path, tmp_path)
    message = str(excinfo.value)
    assert "chomage-zone-z.xlsx" in message and "'txcho_ze'" in message
    assert "libreg" in message


def test_workbook_without_zone_sheet_is_named(tmp_path):
    wb = Workbook()
    wb.active.append(["nothing here"])
    path = tmp_path / "chomage-zone-empty.xlsx"
    wb.save(path)
    with pytest.raises(ParseError, match="chomage-zone-empty.xlsx: expected one sheet"):
        parse_one(path, tmp_path)


def test_contract_reports_bad_codes_and_rates(tmp_path):
    frame = parse_one(write_workbook(tmp_path / "chomage-zone-c.xlsx"), tmp_path)["txcho_ze"]
    bad = frame.frame.copy()
    bad.loc[0, "ze"] = "51"
    bad.loc[1, "taux_chomage"] = "7,4"
    report = validate_frame(bad, cze.CONTRACTS["txcho_ze"], slug=cze.SLUG, table="txcho_ze")
    columns = {f.column for f in report.failures}
    assert {"ze", "taux_chomage"} <= columns
    assert {"51", "7,4"} <= {s for f in report.failures for s in f.samples}


# ----------------------------------------------------------------------- dbt staging


@pytest.mark.slow
def test_dbt_staging_build(real_tables, tmp_path):
    for table, parsed in real_tables.items():
        write_parquet_atomically(parsed.frame, raw_path(tmp_path / "raw", cze.SLUG, table))
    result = run_dbt_build(tmp_path, [f"staging.{cze.SLUG}", f"source:{cze.SLUG}"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        zones = con.execute(
            "select count(*), count(unemployment_rate_pct), min(quarter_start_date), "
            "max(quarter_start_date) from stg_insee_chomage_zone_emploi__txcho_ze"
        ).fetchone()
        part = con.execute(
            "select zone_code, region_code from stg_insee_chomage_zone_emploi__txcho_parties_reg "
            "where zone_part_code = '2851' limit 1"
        ).fetchone()
        typed = con.execute(
            "select unemployment_rate_pct from stg_insee_chomage_zone_emploi__txcho_ze "
            "where zone_code = '0051' and quarter_label = '2003-T2'"
        ).fetchone()
    finally:
        con.close()
    assert zones[0] == 23_556 and zones[1] == 23_556 - 660
    assert str(zones[2]) == "2003-01-01" and str(zones[3]) == "2022-04-01"
    assert part == ("0051", "28")
    assert typed == (7.4,)
