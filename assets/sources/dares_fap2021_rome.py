"""DARES — the official FAP-2021 ↔ ROME v3 crosswalk and the FAP-2021 tree.

Two files, published on the FAP-2021 nomenclature page:
* `Dares_Table_passage_ROME_Qualif_to_FAP2021_pour_programme.csv`, the "for programs"
  variant of DARES's `Dares_FAP2021_Table_passage_ROME.xlsx`: Windows-1252 (it holds
  0x92 `’` and 0x96 `–`, so not Latin-1), CRLF, `;`, unquoted, header
  `ROME;Intitule_ROME;Qualif;FAP341;Intitule_FAP341`. One row per ROME v3 code and France
  Travail qualification code (`0` not specified, `1` manœuvre … `9` cadre): 532 codes × 10
  = 5,320 rows, one FAP341 family each. Some labels end with a no-break space (U+00A0):
  it is stripped. No employment weights: the qualification alone decides the family;
* `Dares_Arborescence_FAP2021.xlsx`: a read-me sheet, one sheet per level, and one sheet
  (`niveaux_emboités`) nesting the 341 detailed families in their 228, 86 and 22-level
  parents (`Code_FAP341`, `Intitulé_FAP341`, …, `Intitulé_FAP22`). That sheet is found by
  its header row (a FAP341 code column next to a code column of a higher level), not by
  its name or position. Codes nest by prefix: FAP228 = the first 5 characters of FAP341.

Columns are found by their header names, never by position; codes stay text.
No direct download URL of these two files is known (only the nomenclature page is), so
a live fetch fails with an error that says so; mirror mode reads the embedded copy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

import pandas as pd

from assets.foundation.settings import Settings
from assets.ingest.fetch import FetchReport, fetch_source
from assets.ingest.http import FetchError
from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import (
    ParsedTable,
    ParseError,
    add_provenance,
    decode_text,
    read_csv_text,
    snake_case,
)
from assets.ingest.spec import SourceSpec
from assets.ingest.validation import TableContract
from assets.ingest.workbook import Sheet, find_sheets, read_workbook

log = logging.getLogger(__name__)

SLUG = "dares_fap2021_rome"
TABLES = ("rome_qualif_fap341", "fap2021_tree")

LANDING_PAGE = "https://dares.travail-emploi.gouv.fr/donnees/la-nomenclature-des-familles-professionnelles-2021"

SPEC = SourceSpec(
    slug=SLUG,
    publisher="DARES (ministère du Travail)",
    title="Nomenclature FAP-2021: table de passage ROME v3 × qualification → FAP341 et "
    "arborescence FAP-2021",
    landing_page=LANDING_PAGE,
    licence="Licence Ouverte 2.0 (DARES data pages); cite « Source : Dares, nomenclature "
    "FAP-2021, table de passage ROME »",
    cadence="irregular (with each revision of the FAP or ROME nomenclature)",
    # The files' own URLs on dares.travail-emploi.gouv.fr are not known (the site serves
    # them under hashed paths); `fetch` below says so in live mode.
    downloads=(),
    mirror_patterns=("*passage*ROME*FAP2021*.csv", "*Arborescence*FAP2021*.xls*"),
    notes="Embedded copy from gtm-innovation/emploi-ia (see warehouse/mirror/"
    "dares_fap2021_rome/PROVENANCE.md); no direct download URL known.",
    # Nothing to probe: without a file URL a release sensor has nothing cheap to ask.
    schedule="0 6 1 * *",
    max_age=timedelta(days=400),
    release_probe="none",
)

ROME_CODE = r"^[A-N][0-9]{4}$"
QUALIFICATION_CODES = tuple(str(i) for i in range(10))
FAP341 = r"^[A-Z][0-9A-Z][A-Z][0-9]{2}[a-z]?$"  # A0X41a, A0X40, QAX01
FAP228 = r"^[A-Z][0-9A-Z][A-Z][0-9]{2}$"
FAP86 = r"^[A-Z][0-9A-Z][A-Z]$"
FAP22 = r"^[A-Z]$"

CROSSWALK_COLUMNS = ("rome_code", "rome_label", "qualification_code", "fap341_code", "fap341_label")
TREE_COLUMNS = (
    "fap341_code",
    "fap341_label",
    "fap228_code",
    "fap228_label",
    "fap86_code",
    "fap86_label",
    "fap22_code",
    "fap22_label",
)

CONTRACTS: dict[str, TableContract] = {
    "rome_qualif_fap341": TableContract(
        columns=CROSSWALK_COLUMNS,
        # 532 ROME v3 codes × 10 qualifications = 5,320: a much shorter file is truncated.
        min_rows=5_000,
        patterns={
            "rome_code": ROME_CODE,
            "qualification_code": r"^[0-9]$",
            "fap341_code": FAP341,
        },
        not_null=CROSSWALK_COLUMNS,
        unique=(("rome_code", "qualification_code"),),
        accepted={"qualification_code": QUALIFICATION_CODES},
    ),
    "fap2021_tree": TableContract(
        columns=TREE_COLUMNS,
        min_rows=300,  # 341 detailed families
        patterns={
            "fap341_code": FAP341,
            "fap228_code": FAP228,
            "fap86_code": FAP86,
            "fap22_code": FAP22,
        },
        not_null=TREE_COLUMNS,
        unique=(("fap341_code",),),
    ),
}

# Published header (as `header_name` reads it) -> raw column.
CROSSWALK_HEADER = {
    "rome": "rome_code",
    "intitule_rome": "rome_label",
    "qualif": "qualification_code",
    "fap341": "fap341_code",
    "intitule_fap341": "fap341_label",
}
CROSSWALK_EXPECTED = "ROME;Intitule_ROME;Qualif;FAP341;Intitule_FAP341"
TREE_EXPECTED = (
    "Code_FAP341, Intitulé_FAP341, Code_FAP228, Intitulé_FAP228, Code_FAP86, "
    "Intitulé_FAP86, Code_FAP22, Intitulé_FAP22"
)
_TREE_HEADER = re.compile(r"^(code|intitule)_fap(341|228|86|22)$")


def header_name(cell: str) -> str:
    """`Intitulé_FAP341` / `Intitulé FAP 341` -> `intitule_fap341`; `Qualif` -> `qualif`."""
    return re.sub(r"_(?=\d)", "", snake_case(str(cell).replace("\xa0", " ")))


def clean(value: object) -> str | None:
    """A published value as text: no-break spaces become spaces, then stripped; blank -> None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).replace("\xa0", " ").strip()
    return text or None


def _tree_column(name: str) -> str | None:
    match = _TREE_HEADER.match(name)
    if match is None:
        return None
    kind, level = match.groups()
    return f"fap{level}_{'code' if kind == 'code' else 'label'}"


def _missing(found: Sequence[str], expected: Sequence[str]) -> list[str]:
    return [c for c in expected if c not in found]


# ------------------------------------------------------------------ crosswalk (CSV)


def parse_crosswalk(data: bytes, file_name: str) -> pd.DataFrame:
    """The ROME × qualification -> FAP341 table, every value text, columns by header name."""
    text = decode_text(data, slug=SLUG, file_name=file_name)
    frame = read_csv_text(text, slug=SLUG, file_name=file_name, sep=";")
    published = [str(c) for c in frame.columns]
    frame.columns = [header_name(c) for c in published]
    frame = frame.rename(columns=CROSSWALK_HEADER)
    missing = _missing(list(frame.columns), CROSSWALK_COLUMNS)
    if missing:
        raise ParseError(
            f"{SLUG}: {file_name}: header lacks column(s) {missing}; expected a `;` header "
            f"{CROSSWALK_EXPECTED}, found {published}"
        )
    frame = frame.map(clean).dropna(how="all").reset_index(drop=True)
    return frame.astype("str")


# ------------------------------------------------------------------------ tree (XLSX)


def _is_tree_header(cells: Sequence[str]) -> bool:
    """The nested table: a FAP341 code column beside a code column of a higher level."""
    names = {_tree_column(header_name(c)) for c in cells if c}
    return "fap341_code" in names and bool(names & {"fap228_code", "fap86_code", "fap22_code"})


def tree_table(sheet: Sheet, file_name: str) -> pd.DataFrame:
    where = f"{file_name}, sheet {sheet.name!r} (header on row {sheet.header_row + 1})"
    positions: dict[str, int] = {}
    for position, cell in enumerate(sheet.header):
        column = _tree_column(header_name(cell)) if cell else None
        if column is not None:
            positions.setdefault(column, position)
    missing = _missing(list(positions), TREE_COLUMNS)
    if missing:
        raise ParseError(
            f"{SLUG}: {where}: header row lacks column(s) {missing}; expected "
            f"{TREE_EXPECTED}, found {[c for c in sheet.header if c]}"
        )
    body = sheet.body.iloc[:, [positions[c] for c in TREE_COLUMNS]].copy()
    body.columns = list(TREE_COLUMNS)
    body = body.map(clean)
    # Blank rows and notes under the table ("Source : Dares, ...") fill the first cell at
    # most: a family row carries a FAP341 code and something in the other columns.
    family = body["fap341_code"].notna() & body[list(TREE_COLUMNS[1:])].notna().any(axis=1)
    body = body[family].reset_index(drop=True)
    return body.astype("str")


def parse_tree(data: bytes, file_name: str) -> tuple[pd.DataFrame, str]:
    workbook = read_workbook(data, slug=SLUG, file_name=file_name)
    sheets = find_sheets(workbook, _is_tree_header)
    if len(sheets) != 1:
        raise ParseError(
            f"{SLUG}: {file_name}: expected one sheet whose header row holds {TREE_EXPECTED} "
            f"(the nested FAP-2021 levels), found {len(sheets)} among sheets {list(workbook)}"
        )
    return tree_table(sheets[0], file_name), sheets[0].name


# ----------------------------------------------------------------------------- parse


def _one(files: tuple[LandedFile, ...], pattern: str, what: str):
    found = list(iter_members(files, pattern))
    if len(found) != 1:
        names = [f.file_name for f in files]
        raise ParseError(
            f"{SLUG}: expected one {what} ({pattern}) among the landed files, found "
            f"{[name for name, _, _ in found] or 'none'}; landed: {names}"
        )
    name, opener, landed = found[0]
    with opener() as handle:
        return name, handle.read(), landed


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    files = tuple(files)
    tables: dict[str, ParsedTable] = {}

    name, data, landed = _one(files, "*.csv", f"CSV with header {CROSSWALK_EXPECTED}")
    frame = add_provenance(parse_crosswalk(data, name), landed)
    tables["rome_qualif_fap341"] = ParsedTable("rome_qualif_fap341", frame, (landed,))
    log.info("%s: parsed %s (%d rows)", SLUG, name, len(frame))

    name, data, landed = _one(files, "*.xls*", "FAP-2021 tree workbook")
    tree, sheet = parse_tree(data, name)
    frame = add_provenance(tree, landed)
    tables["fap2021_tree"] = ParsedTable("fap2021_tree", frame, (landed,))
    log.info("%s: parsed %s sheet %r (%d rows)", SLUG, name, sheet, len(frame))
    return tables


def fetch(spec: SourceSpec, settings: Settings, log: logging.Logger | None = None) -> FetchReport:
    """Mirror mode: the shared fetch. Live mode: a clear error, as no file URL is known."""
    if settings.mode != "live" or spec.downloads:
        return fetch_source(spec, settings, log=log)
    raise FetchError(
        f"{spec.slug}: no download URL is known for this source's files "
        f"({', '.join(spec.mirror_patterns)}); DARES lists them on {spec.landing_page}. "
        f"Download them by hand into `<mirror>/{spec.slug}/` and run in mirror mode with "
        "TREMPLIN_MIRROR pointing at <mirror>, or add their URLs to the spec's downloads."
    )
