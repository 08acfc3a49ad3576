"""INSEE zones d'emploi 2020 composition: real workbook (also inside its zip), drift, staging."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pytest
from dbt_runner import run_dbt_build
from openpyxl import Workbook

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, raw_path, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import insee_zonage_ze2020 as ze

ROOT = Path(__file__).resolve().parent.parent
MIRROR = ROOT / "warehouse" / "mirror" / ze.SLUG
REAL_FILE = "ZE2020_au_01-01-2023.xlsx"


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, ze.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


@pytest.fixture(scope="module")
def real_tables(tmp_path_factory):
    return ze.parse(land([MIRROR / REAL_FILE], tmp_path_factory.mktemp("landing")))


COMMUNE_HEADER = ["CODGEO", "LIBGEO", "ZE2020", "LIBZE2020", "ZE2020_PARTIE_REG", "DEP", "REG"]
COMMUNE_ROWS = [
    ["01001", "L'Abergement-Clémenciat", "8405", "Bourg en Bresse", None, "01", "84"],
    ["01016", "Arbigny", "0059", "Mâcon", "0059-84", "01", "84"],
    ["2A004", "Ajaccio", "9401", "Ajaccio", None, "2A", "94"],
    ["97617", "Tsingoni", "0601", "Mayotte", None, "976", "06"],
]
ZONE_ROWS = [["0059", "Mâcon", "2"], ["0601", "Mayotte", "1"], ["8405", "Bourg", "1"]]


def write_workbook(
    path: Path,
    *,
    communes_sheet: str = "Composition_communale",
    title_rows: int = 4,
    header: list[str] | None = None,
    rows: list[list] | None = None,
) -> Path:
    header = header or COMMUNE_HEADER
    rows = rows or COMMUNE_ROWS
    wb = Workbook()
    zones = wb.active
    zones.title = "ZE2020"
    titles = [
        ["Zones d'emploi 2020"],
        ["France - Liste des zones d'emploi 2020"],
        ["Mise en ligne le 17/03/2024       Géographie au 01/01/2024"],
        ["@Insee       Source(s) : Insee, Code officiel géographique"],
    ]
    for row in titles:
        zones.append(row)
    zones.append(["Zone d'emploi 2020", "Libellé", "Nombre communes"])
    zones.append(["ZE2020", "LIBZE2020", "NB_COM"])
    for row in ZONE_ROWS:
        zones.append(row)
    ws = wb.create_sheet(communes_sheet)
    for row in titles:
        ws.append(row)
    for _ in range(title_rows - 4):
        ws.append([])
    ws.append([f"libellé {c}" for c in header])
    ws.append(header)
    for row in rows:
        ws.append(row)
    variables = wb.create_sheet("Variables")
    variables.append(["VAR_ID", "VAR_LIB"])
    variables.append(["ZE2020", "Zone d'emploi 2020"])
    variables.append(["CODGEO", "Code géographique communal"])
    wb.save(path)
    return path


def test_real_workbook(real_tables):
    zones = real_tables["zones"].frame
    communes = real_tables["composition_communale"].frame
    assert len(zones) == 306 and len(communes) == 34_945
    assert communes["dep"].nunique() == 101
    corsica = communes[communes["codgeo"] == "2A004"].iloc[0]
    assert (corsica["dep"], corsica["reg"]) == ("2A", "94")
    mayotte = communes[communes["codgeo"] == "97617"].iloc[0]
    assert (mayotte["ze"], mayotte["dep"], mayotte["reg"]) == ("0601", "976", "06")
    assert zones.loc[zones["ze"] == "0051", "libze"].item() == "Alençon"
    assert set(communes["geographie_au"]) == {"2023-01-01"}
    assert set(communes["zonage"]) == {"ZE2020"}
    # Regional parts only for the interregional zones (00XX).
    parts = communes[communes["ze_partie_reg"].notna()]
    assert parts["ze"].str.startswith("00").all() and parts["ze"].nunique() == 14


def test_real_workbook_meets_contracts(real_tables):
    for table, parsed in real_tables.items():
        report = validate_frame(parsed.frame, ze.CONTRACTS[table], slug=ze.SLUG, table=table)
        assert report.success, report.describe()


def test_published_zip_is_read(tmp_path):
    archive = tmp_path / "src" / "ZE2020_au_01-01-2024.zip"
    archive.parent.mkdir()
    inner = write_workbook(tmp_path / "ZE2020_au_01-01-2024.xlsx")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(inner, inner.name)
    tables = ze.parse(land([archive], tmp_path / "landing"))
    communes = tables["composition_communale"].frame
    assert len(communes) == 4
    assert communes["_source_file"].iloc[0] == "ZE2020_au_01-01-2024.zip!ZE2020_au_01-01-2024.xlsx"
    assert set(communes["geographie_au"]) == {"2024-01-01"}


def test_renamed_sheet_more_title_rows_reordered_and_added_columns(tmp_path):
    header = ["DEP", "REG", "CODGEO", "LIBGEO", "ZE2020", "LIBZE2020", "ZE2020_PARTIE_REG", "EPCI"]
    order = [5, 6, 0, 1, 2, 3, 4]
    rows = [[r[i] for i in order] + ["200029999"] for r in COMMUNE_ROWS]
    path = write_workbook(
        tmp_path / "ZE2020_au_01-01-2025.xlsx",
        communes_sheet="Communes",
        title_rows=6,
        header=header,
        rows=rows,
    )
    tables = ze.parse(land([path], tmp_path / "landing"))
    communes = tables["composition_communale"].frame
    row = communes[communes["codgeo"] == "01016"].iloc[0]
    assert (row["ze"], row["ze_partie_reg"], row["dep"]) == ("0059", "0059-84", "01")
    assert "epci" in communes.columns
    assert len(tables["zones"].frame) == 3


def test_removed_column_is_named(tmp_path):
    header = [c for c in COMMUNE_HEADER if c != "DEP"]
    rows = [r[:5] + r[6:] for r in COMMUNE_ROWS]
    path = write_workbook(tmp_path / "ZE2020_au_01-01-2026.xlsx", header=header, rows=rows)
    with pytest.raises(ParseError) as excinfo:
        ze.parse(land([path], tmp_path / "landing"))
    message = str(excinfo.value)
    assert "ZE2020_au_01-01-2026.xlsx" in message and "'dep'" in message


def test_contract_reports_lost_leading_zero(real_tables):
    frame = real_tables["composition_communale"].frame.head(2000).copy()
    frame.loc[0, "codgeo"] = "1001"
    frame.loc[1, "dep"] = "1"
    report = validate_frame(
        frame,
        ze.CONTRACTS["composition_communale"],
        slug=ze.SLUG,
        table="composition_communale",
        source_files=(REAL_FILE,),
    )
    assert {"codgeo", "dep"} <= {f.column for f in report.failures}
    assert REAL_FILE in report.describe()


@pytest.mark.slow
def test_dbt_staging_build(real_tables, tmp_path):
    for table, parsed in real_tables.items():
        write_parquet_atomically(parsed.frame, raw_path(tmp_path / "raw", ze.SLUG, table))
    result = run_dbt_build(tmp_path, [f"staging.{ze.SLUG}", f"source:{ze.SLUG}"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        mismatches = con.execute(
            "select count(*) from stg_insee_zonage_ze2020__zones as z left join ("
            "  select zone_code, count(*) as n from stg_insee_zonage_ze2020__composition_communale"
            "  group by zone_code) as c on z.zone_code = c.zone_code "
            "where coalesce(c.n, 0) <> z.communes_count"
        ).fetchone()
        part = con.execute(
            "select zone_part_code, departement_code, geography_date "
            "from stg_insee_zonage_ze2020__composition_communale where commune_code = '01016'"
        ).fetchone()
        deps = con.execute(
            "select count(distinct departement_code) "
            "from stg_insee_zonage_ze2020__composition_communale"
        ).fetchone()
    finally:
        con.close()
    # Every zone's published commune count matches its composition.
    assert mismatches == (0,)
    assert (part[0], part[1], str(part[2])) == ("8459", "01", "2023-01-01")
    assert deps == (101,)
