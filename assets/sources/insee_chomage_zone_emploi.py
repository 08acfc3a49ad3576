"""INSEE — taux de chômage localisés par zone d'emploi 2020 (quarterly, seasonally adjusted).

One workbook per quarter (`chomage-zone-t1-2003-t<Q>-<YYYY>.xlsx`): the file name and the
last quarter change with every release, so nothing here depends on them. Layout handled:
* sheet `txcho_ze`: title rows, a row of long labels, then the header row of short codes
  (`ZE2020, LIBZE2020, REG, LIBREG, 2003-T1 ...`), one row per zone d'emploi;
* sheet `txcho_parties reg`: the same for the regional parts of interregional zones
  (`ZER2020, LIBZER2020, 2003-T1 ...`; a part code `RRXX` is region RR of zone `00XX`).
Sheets are recognised by their header row (the row holding `ZE<yyyy>` or `ZER<yyyy>`), not
by name or position, so a renamed sheet or extra title rows parse unchanged. The zoning
year inside the column names (`ZE2020`) is moved into a `zonage` column and the columns are
named without it (`ze`, `libze`), so a future zoning keeps the same raw schema.
Quarters become rows (long form). DOM zones have no rate before 2014: those cells are
empty and stay NULL; a statistical-secrecy marker (`*`, `nd`, ...) would also give NULL but
with `taux_chomage_masked = true`.
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
from assets.ingest.workbook import Sheet, cell_text, find_sheets, read_workbook

log = logging.getLogger(__name__)

SLUG = "insee_chomage_zone_emploi"
TABLES = ("txcho_ze", "txcho_parties_reg")

SPEC = SourceSpec(
    slug=SLUG,
    publisher="INSEE",
    title="Taux de chômage localisés par zone d'emploi 2020 (moyennes trimestrielles, CVS)",
    landing_page="https://www.insee.fr/fr/statistiques/1893230",
    licence="Licence Ouverte / Etalab 2.0 (INSEE open data terms)",
    cadence="quarterly (the file is replaced, its name carries the last quarter)",
    downloads=(
        Download(
            url="https://www.insee.fr/fr/statistiques/fichier/1893230/"
            "chomage-zone-t1-2003-t2-2022.xlsx",
            file_name="chomage-zone-t1-2003-t2-2022.xlsx",
            format="xlsx",
        ),
    ),
    mirror_patterns=("chomage-zone-*.xlsx",),
    notes="The live URL names one release; INSEE replaces it each quarter.",
    # Published with the localised rates, about 75 days after each quarter.
    schedule="0 7 20 3,6,9,12 *",
    max_age=timedelta(days=120),
)

# How many rows from the top of a sheet the header row is looked for in.
MASK_MARKERS = frozenset({"*", "nd", "n.d.", "n.d", "s", "ns", "secret"})

ZE_CODE = r"^[0-9]{4}$"
REGION_CODE = r"^[0-9]{2}$"
QUARTER = r"^[0-9]{4}-T[1-4]$"
RATE = r"^[0-9]+(?:\.[0-9]+)?$"

CONTRACTS: dict[str, TableContract] = {
    "txcho_ze": TableContract(
        columns=("ze", "libze", "reg", "libreg", "zonage", "trimestre", "taux_chomage"),
        min_rows=250 * 40,
        patterns={
            "ze": ZE_CODE,
            "reg": REGION_CODE,
            "trimestre": QUARTER,
            "taux_chomage": RATE,
            "zonage": r"^ZE[0-9]{4}$",
        },
        not_null=("ze", "libze", "reg", "zonage", "trimestre"),
        unique=(("ze", "trimestre"),),
    ),
    "txcho_parties_reg": TableContract(
        columns=("zer", "libzer", "zonage", "trimestre", "taux_chomage"),
        min_rows=20 * 40,
        patterns={
            "zer": ZE_CODE,
            "trimestre": QUARTER,
            "taux_chomage": RATE,
            "zonage": r"^ZE[0-9]{4}$",
        },
        not_null=("zer", "libzer", "zonage", "trimestre"),
        unique=(("zer", "trimestre"),),
    ),
}

# Header cells whose name carries the zoning year; the raw column drops the year.
_YEAR_COLUMNS = {
    "txcho_ze": {"ze": re.compile(r"^ZE(\d{4})$"), "libze": re.compile(r"^LIBZE(\d{4})$")},
    "txcho_parties_reg": {
        "zer": re.compile(r"^ZER(\d{4})$"),
        "libzer": re.compile(r"^LIBZER(\d{4})$"),
    },
}
_REQUIRED = {
    "txcho_ze": ("ze", "libze", "reg", "libreg"),
    "txcho_parties_reg": ("zer", "libzer"),
}
# `2003-T1` as published here; `T1_2003` (the localised-rates style) and `2003T1` too.
_QUARTER_LABELS = (
    re.compile(r"^(?P<year>\d{4})\s*-?\s*T(?P<quarter>[1-4])$", re.IGNORECASE),
    re.compile(r"^T(?P<quarter>[1-4])[_ -]?(?P<year>\d{4})$", re.IGNORECASE),
)


def quarter_label(cell: object) -> str | None:
    """`2003-T1`, `T1_2003`, `2003T1` -> `2003-T1`; anything else -> None."""
    text = str(cell).strip() if cell is not None and not pd.isna(cell) else ""
    for pattern in _QUARTER_LABELS:
        match = pattern.match(text)
        if match:
            return f"{match['year']}-T{match['quarter']}"
    return None


def _has(pattern: re.Pattern[str]):
    return lambda cells: any(pattern.match(c) for c in cells)


def _is_zone_header(cells: Sequence[str]) -> bool:
    return _has(_YEAR_COLUMNS["txcho_ze"]["ze"])(cells) and any(map(quarter_label, cells))


def _is_part_header(cells: Sequence[str]) -> bool:
    return _has(_YEAR_COLUMNS["txcho_parties_reg"]["zer"])(cells) and any(map(quarter_label, cells))


def _name_columns(table: str, header: Sequence[str], where: str) -> tuple[list, str]:
    """Raw names for the header cells (None for a quarter column) and the zoning label."""
    names: list[str | None] = []
    years = set()
    for position, cell in enumerate(header):
        if quarter_label(cell):
            names.append(None)
            continue
        name = None
        for raw_name, pattern in _YEAR_COLUMNS[table].items():
            match = pattern.match(cell)
            if match:
                name = raw_name
                years.add(match.group(1))
        if name is None:
            name = snake_case(cell) if cell else f"unnamed_{position}"
        names.append(name)
    missing = [c for c in _REQUIRED[table] if c not in names]
    if missing:
        raise ParseError(
            f"{SLUG}: {where}: header row lacks column(s) {missing} "
            f"(expected {list(_REQUIRED[table])} and quarter columns like 2003-T1; "
            f"found {[c for c in header if c]})"
        )
    if len(years) != 1:
        raise ParseError(
            f"{SLUG}: {where}: expected one zoning year in the code columns, found {sorted(years)}"
        )
    duplicated = sorted({n for n in names if n is not None and names.count(n) > 1})
    if duplicated:
        raise ParseError(f"{SLUG}: {where}: header has duplicated column(s) {duplicated}")
    return names, f"ZE{years.pop()}"


def to_long(table: str, sheet: Sheet, file_name: str) -> pd.DataFrame:
    """One row per area and quarter, every value as text."""
    where = f"{file_name}, sheet {sheet.name!r} (header on row {sheet.header_row + 1})"
    names, zonage = _name_columns(table, sheet.header, where)
    code_column = _REQUIRED[table][0]
    ids = {n: i for i, n in enumerate(names) if n is not None}
    quarters = {i: quarter_label(c) for i, c in enumerate(sheet.header) if quarter_label(c)}
    if len(set(quarters.values())) != len(quarters):
        raise ParseError(f"{SLUG}: {where}: a quarter column appears twice")

    body = sheet.body.map(cell_text)
    codes = body.iloc[:, ids[code_column]]
    # Blank rows and footnotes (text in the first cell, nothing else) are not areas.
    others = body.drop(columns=body.columns[ids[code_column]])
    is_note = ~codes.str.fullmatch(r"\w{4,5}") & others.eq("").all(axis=1)
    body = body[(codes != "") & ~is_note]

    wide = pd.DataFrame({name: body.iloc[:, i] for name, i in ids.items()})
    wide["zonage"] = zonage
    # Row-major: area 1 every quarter, then area 2..., as a reader of the sheet would expect.
    labels = list(quarters.values())
    long = wide.loc[wide.index.repeat(len(labels))].reset_index(drop=True)
    long["trimestre"] = labels * len(wide)
    long["taux_chomage"] = body.iloc[:, list(quarters)].to_numpy().ravel()
    value = long["taux_chomage"].str.strip()
    masked = value.str.lower().isin(MASK_MARKERS)
    long["taux_chomage"] = value.where((value != "") & ~masked, None).astype("str")
    long["taux_chomage_masked"] = masked.astype(bool)
    for column in long.columns:
        if column != "taux_chomage_masked":
            long[column] = long[column].where(long[column] != "", None).astype("str")
    return long


def _landed_workbook(files: Iterable[LandedFile]) -> tuple[str, bytes, LandedFile]:
    found = list(iter_members(files, "*.xls*"))
    if len(found) != 1:
        names = sorted(name for name, _, _ in found)
        raise ParseError(
            f"{SLUG}: expected exactly one workbook chomage-zone-*.xlsx among the landed files, "
            f"found {len(found)}: {names}"
        )
    name, opener, landed = found[0]
    with opener() as handle:
        return name, handle.read(), landed


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    name, data, landed = _landed_workbook(tuple(files))
    workbook = read_workbook(data, slug=SLUG, file_name=name)
    detectors = {"txcho_ze": _is_zone_header, "txcho_parties_reg": _is_part_header}
    expected = {
        "txcho_ze": "ZE<yyyy>, LIBZE<yyyy>, REG, LIBREG and quarter columns (2003-T1 ...)",
        "txcho_parties_reg": "ZER<yyyy>, LIBZER<yyyy> and quarter columns (2003-T1 ...)",
    }
    tables: dict[str, ParsedTable] = {}
    for table in TABLES:
        sheets = find_sheets(workbook, detectors[table])
        if len(sheets) != 1:
            raise ParseError(
                f"{SLUG}: {name}: expected one sheet with a header row {expected[table]}, "
                f"found {len(sheets)} among sheets {list(workbook)}"
            )
        frame = add_provenance(to_long(table, sheets[0], name), landed)
        if landed.file_name != name:
            frame["_source_file"] = f"{landed.file_name}!{name}"
        tables[table] = ParsedTable(table, frame, (landed,))
        log.info("%s: parsed %s sheet %r (%d rows)", SLUG, name, sheets[0].name, len(frame))
    return tables
