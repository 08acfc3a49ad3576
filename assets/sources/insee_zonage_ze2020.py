"""INSEE — zones d'emploi 2020: the zones and their communes, in a given geography.

INSEE publishes one zip per geography year (`ZE2020_au_01-01-<YYYY>.zip`) holding the
workbook `ZE2020_au_01-01-<YYYY>.xlsx`; the parser reads the workbook either alone or
inside the zip. Every data sheet has title rows (5 here), a long-label row, then the
header row of short codes: `ZE2020, LIBZE2020, NB_COM` (zones) and `CODGEO, LIBGEO, ZE2020,
LIBZE2020, ZE2020_PARTIE_REG, DEP, REG` (communes). Sheets are found by that header row, not
by name. As in `insee_chomage_zone_emploi`, the zoning year leaves the column names
(`ze`, `libze`, `ze_partie_reg`) for a `zonage` column, and the geography date printed in
the title rows ("Géographie au 01/01/2023") becomes `geographie_au` (ISO date text).
Codes stay text: zones `0051`, communes `2A004` / `97617`, départements `2A` / `976`;
`ZE2020_PARTIE_REG` reads `<zone>-<région>` (`0059-84`), set only for communes of the 14
interregional zones.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

import pandas as pd

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import ParsedTable, ParseError, add_provenance, snake_case
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import TableContract
from assets.ingest.workbook import Sheet, find_sheets, read_workbook

log = logging.getLogger(__name__)

SLUG = "insee_zonage_ze2020"
TABLES = ("zones", "composition_communale")

SPEC = SourceSpec(
    slug=SLUG,
    publisher="INSEE",
    title="Zonage en zones d'emploi 2020 — liste des zones et composition communale",
    landing_page="https://www.insee.fr/fr/information/4652957",
    licence="Licence Ouverte / Etalab 2.0 (INSEE open data terms)",
    cadence="yearly (new geography on 1 January)",
    downloads=(
        Download(
            url="https://www.insee.fr/fr/statistiques/fichier/4652957/ZE2020_au_01-01-2023.zip",
            file_name="ZE2020_au_01-01-2023.zip",
            format="zip",
        ),
    ),
    # One glob for both shapes: the published zip or the workbook taken out of it.
    mirror_patterns=("ZE*_au_*",),
    # Re-issued each year on the January 1st geography of communes.
    schedule="0 6 15 1-3 1",
    max_age=timedelta(days=400),
)

ZE_CODE = r"^[0-9]{4}$"
COMMUNE_CODE = r"^(?:[0-9]{5}|2[AB][0-9]{3})$"
DEPARTEMENT_CODE = r"^(?:[0-9]{2}|2[AB]|97[1-6])$"
REGION_CODE = r"^[0-9]{2}$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

CONTRACTS: dict[str, TableContract] = {
    "zones": TableContract(
        columns=("ze", "libze", "nb_com", "zonage", "geographie_au"),
        min_rows=250,
        patterns={"ze": ZE_CODE, "nb_com": r"^[0-9]+$", "geographie_au": ISO_DATE},
        not_null=("ze", "libze", "zonage"),
        unique=(("ze",),),
    ),
    "composition_communale": TableContract(
        columns=(
            "codgeo",
            "libgeo",
            "ze",
            "libze",
            "ze_partie_reg",
            "dep",
            "reg",
            "zonage",
            "geographie_au",
        ),
        min_rows=30_000,
        patterns={
            "codgeo": COMMUNE_CODE,
            "ze": ZE_CODE,
            "ze_partie_reg": r"^[0-9]{4}-[0-9]{2}$",
            "dep": DEPARTEMENT_CODE,
            "reg": REGION_CODE,
            "geographie_au": ISO_DATE,
        },
        not_null=("codgeo", "libgeo", "ze", "dep", "reg", "zonage"),
        unique=(("codgeo",),),
    ),
}

_ZE = re.compile(r"^ZE(\d{4})$")
# Publisher column -> raw column, for the columns that carry the zoning year.
_YEAR_COLUMNS = {
    "ze": re.compile(r"^ZE(\d{4})$"),
    "libze": re.compile(r"^LIBZE(\d{4})$"),
    "ze_partie_reg": re.compile(r"^ZE(\d{4})_PARTIE_REG$"),
}
_REQUIRED = {
    "zones": ("ze", "libze", "nb_com"),
    "composition_communale": ("codgeo", "libgeo", "ze", "libze", "dep", "reg"),
}
_GEOGRAPHY = re.compile(r"G[ée]ographie\s+au\s+(\d{2})/(\d{2})/(\d{4})", re.IGNORECASE)
_FILE_DATE = re.compile(r"_au_(\d{2})-(\d{2})-(\d{4})")


def _is_zones_header(cells: Sequence[str]) -> bool:
    return any(_ZE.match(c) for c in cells) and "NB_COM" in cells and "CODGEO" not in cells


def _is_communes_header(cells: Sequence[str]) -> bool:
    return any(_ZE.match(c) for c in cells) and "CODGEO" in cells


def geography_date(title_rows: pd.DataFrame, file_name: str) -> str | None:
    """`Géographie au 01/01/2023` from the title rows, else the date in the file name."""
    for value in title_rows.to_numpy().ravel():
        match = _GEOGRAPHY.search(str(value))
        if match:
            day, month, year = match.groups()
            return f"{year}-{month}-{day}"
    match = _FILE_DATE.search(file_name)
    if match:
        day, month, year = match.groups()
        return f"{year}-{month}-{day}"
    return None


def _name_columns(table: str, header: Sequence[str], where: str) -> tuple[list[str], str]:
    names, years = [], set()
    for position, cell in enumerate(header):
        name = None
        for raw_name, pattern in _YEAR_COLUMNS.items():
            match = pattern.match(cell)
            if match:
                name = raw_name
                years.add(match.group(1))
        names.append(name or (snake_case(cell) if cell else f"unnamed_{position}"))
    missing = [c for c in _REQUIRED[table] if c not in names]
    if missing:
        raise ParseError(
            f"{SLUG}: {where}: header row lacks column(s) {missing} "
            f"(expected {list(_REQUIRED[table])}; found {[c for c in header if c]})"
        )
    if len(years) != 1:
        raise ParseError(f"{SLUG}: {where}: expected one zoning year, found {sorted(years)}")
    return names, f"ZE{years.pop()}"


def sheet_table(table: str, sheet: Sheet, title_rows: pd.DataFrame, file_name: str) -> pd.DataFrame:
    where = f"{file_name}, sheet {sheet.name!r} (header on row {sheet.header_row + 1})"
    names, zonage = _name_columns(table, sheet.header, where)
    keep = [i for i, n in enumerate(names) if not n.startswith("unnamed_")]
    kept = [names[i] for i in keep]
    twice = sorted({n for n in kept if kept.count(n) > 1})
    if twice:  # a repeated column: which one holds the codes is anybody's guess
        raise ParseError(
            f"{SLUG}: {where}: the header row names the column(s) {twice} more than once; "
            "expected each column once"
        )
    body = sheet.body.iloc[:, keep].copy()
    body.columns = [names[i] for i in keep]
    body = body.map(lambda v: None if pd.isna(v) or not str(v).strip() else str(v).strip())
    body = body[body[_REQUIRED[table][0]].notna()].reset_index(drop=True)
    body["zonage"] = zonage
    body["geographie_au"] = geography_date(title_rows, file_name)
    return body.astype("str")


def _landed_workbook(files: Iterable[LandedFile]) -> tuple[str, bytes, LandedFile]:
    """The workbook, whether it landed alone or inside the published zip (same name)."""
    found = {}
    for name, opener, landed in iter_members(files, "*.xls*"):
        found.setdefault(name, (opener, landed))
    if len(found) != 1:
        raise ParseError(
            f"{SLUG}: expected one workbook ZE<yyyy>_au_<dd-mm-yyyy>.xlsx among the landed files "
            f"(alone or in the zip), found {sorted(found) or 'none'}"
        )
    name, (opener, landed) = next(iter(found.items()))
    with opener() as handle:
        return name, handle.read(), landed


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    name, data, landed = _landed_workbook(tuple(files))
    workbook = read_workbook(data, slug=SLUG, file_name=name)
    detectors = {"zones": _is_zones_header, "composition_communale": _is_communes_header}
    tables: dict[str, ParsedTable] = {}
    for table in TABLES:
        sheets = find_sheets(workbook, detectors[table])
        if len(sheets) != 1:
            raise ParseError(
                f"{SLUG}: {name}: expected one sheet whose header row holds "
                f"{list(_REQUIRED[table])} (with the zoning year, e.g. ZE2020), found "
                f"{len(sheets)} among sheets {list(workbook)}"
            )
        sheet = sheets[0]
        titles = workbook[sheet.name].iloc[: sheet.header_row]
        frame = add_provenance(sheet_table(table, sheet, titles, name), landed)
        if landed.file_name != name:
            frame["_source_file"] = f"{landed.file_name}!{name}"
        tables[table] = ParsedTable(table, frame, (landed,))
        log.info("%s: parsed %s sheet %r (%d rows)", SLUG, name, sheet.name, len(frame))
    return tables
