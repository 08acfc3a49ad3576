"""France Travail — Besoins en Main-d'Œuvre (BMO): recruitment projects by job and area.

One workbook per yearly survey (`Base_open_data_BMO_<YYYY>.xlsx`, published on data.gouv.fr
inside a zip whose xlsx sits in `Donnees_consolidees_<YYYY>/`). A data sheet holds one row
per survey year × bassin d'emploi × département × métier BMO (a bassin that straddles
départements has one row per département), and a dictionary sheet describes the columns.

What changes from one vintage to the next, and how the parser copes:
* the sheet names (`BMO_2024_open_data`, `Description des variables` ->
  `Description_des_variables`): the data sheet is found by its header, not its name;
* the bassin columns carry the year (`BE24`, `NOMBE24` -> `BE25`...): they are matched by
  pattern and published as `bassin_code` / `bassin_name`, the year kept as `bassin_year`;
* the column order (2023 put the bassin before the département) and added columns
  (`clpe` in 2026): columns are matched by name, extra ones are kept in snake_case;
* the job nomenclature: up to the 2023 survey the codes are FAP-2009 families (`A0Z40`),
  from 2024 "métiers BMO" derived from FAP-2021 (`A0X40`). Both are five characters and
  share the header `Code métier BMO`, so the rule is on the codes themselves: the third
  character is the FAP "sub-domain" marker, `Z` throughout FAP-2009 and `X` throughout the
  FAP-2021 métiers BMO (both use `A`/`B` for the few split families, which decide nothing).
  A file whose codes carry `X` and no `Z` is `fap2021`, `Z` and no `X` is `fap2009`;
  anything else (both, or neither) is refused rather than guessed.

The counts `met` (recruitment projects), `xmet` (judged difficult) and `smet` (seasonal)
are text with `*` where the figure is under statistical secrecy: raw keeps NULL there and
sets `<col>_masked`, so a secret cell never reads as 0. Every cell is text in the
workbook; codes stay text (`2A`, `971`, `978` Saint-Martin, a collectivité d'outre-mer).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import ParsedTable, ParseError, add_provenance, snake_case
from assets.ingest.spec import Download, Partitioning, SourceSpec
from assets.ingest.validation import TableContract
from assets.ingest.workbook import read_workbook

log = logging.getLogger(__name__)

SLUG = "francetravail_bmo"
TABLE = "projects"
TABLES = (TABLE,)

SPEC = SourceSpec(
    slug=SLUG,
    publisher="France Travail",
    title="Enquête Besoins en Main-d'Œuvre (BMO) — projets de recrutement",
    landing_page="https://www.data.gouv.fr/fr/datasets/561fa564c751df4f2acdbb48/",
    licence="Licence Ouverte / Etalab 2.0",
    cadence="yearly (survey published in April)",
    downloads=(
        Download(
            url="https://www.data.gouv.fr/fr/datasets/r/4319f5e8-a8e6-476c-8da0-c0d3439ebb55",
            file_name="Base_open_data_BMO_2024.zip",
            format="zip",
        ),
    ),
    # One glob for the workbook and for the zip that holds it, and for the older
    # `Base_open_data_23.xlsx` naming: every pattern must match a mirror file.
    mirror_patterns=("Base_open_data*",),
    notes="Secret counts are '*' in the file: NULL plus <col>_masked in raw.",
    extra_hosts=(
        "static.data.gouv.fr",
        "www.francetravail.org",
        "statistiques.francetravail.org",
    ),
    # The survey of year N comes out in April of year N: look every Monday of April to
    # June, and a survey year is a partition (N exists from January 1st of N).
    schedule="0 6 * 4-6 1",
    max_age=timedelta(days=400),
    partitioning=Partitioning(
        period="yearly",
        start="2016-01-01",
        file_period=r"Base_open_data_(?:BMO_)?(?P<year>\d{4}|\d{2})(?!\d)",
        end_offset=1,
    ),
)

NOMENCLATURES = ("fap2021", "fap2009")
COUNT_COLUMNS = ("met", "xmet", "smet")
MASK_TOKENS = frozenset({"*"})
HEADER_SEARCH_ROWS = 15

# Canonical raw column -> header spellings (after snake_case) that name it. The first
# spelling is the 2024 one; the others are tolerated variants seen or plausible.
ALIASES: dict[str, tuple[str, ...]] = {
    "annee": ("annee", "annee_enquete"),
    "code_metier_bmo": ("code_metier_bmo", "code_metier", "code_fap", "fap", "metier_bmo"),
    "nom_metier_bmo": ("nom_metier_bmo", "libelle_metier_bmo", "lbl_metier", "libelle_fap"),
    "famille_met": ("famille_met", "code_famille_met"),
    "lbl_fam_met": ("lbl_fam_met", "libelle_fam_met"),
    "reg": ("reg", "code_reg", "code_region"),
    "nom_reg": ("nom_reg", "lbl_reg", "libelle_region"),
    "dept": ("dept", "dep", "code_dept", "code_departement"),
    "nom_dept": ("nom_dept", "lbl_dept", "libelle_departement"),
    "met": ("met",),
    "xmet": ("xmet",),
    "smet": ("smet",),
}
BASSIN_CODE = re.compile(r"^be_?(?P<year>\d{2}|\d{4})$")
BASSIN_NAME = re.compile(r"^nom_?be_?(?P<year>\d{2}|\d{4})$")
# Without these the table cannot be built at its grain or its measures are gone.
REQUIRED = (
    "code_metier_bmo",
    "nom_metier_bmo",
    "dept",
    "bassin_code",
    "bassin_name",
    *COUNT_COLUMNS,
)
OPTIONAL = ("annee", "famille_met", "lbl_fam_met", "reg", "nom_reg", "nom_dept")

RAW_COLUMNS = (
    "survey_year",
    "nomenclature",
    "annee",
    "code_metier_bmo",
    "nom_metier_bmo",
    "famille_met",
    "lbl_fam_met",
    "reg",
    "nom_reg",
    "dept",
    "nom_dept",
    "bassin_code",
    "bassin_name",
    "bassin_year",
    "met",
    "met_masked",
    "xmet",
    "xmet_masked",
    "smet",
    "smet_masked",
    "source_sheet",
)

# Domain letter, then a digit (or a second letter: FAP-2021 `QAX01`), sub-domain, two digits.
JOB_CODE = r"^[A-Z][0-9A-Z][A-Z][0-9]{2}$"
DEPARTEMENT_CODE = r"^(?:[0-9]{1,2}|2[AB]|97[1-8]|98[4-9])$"
COUNT = r"^[0-9]+$"

CONTRACTS: dict[str, TableContract] = {
    TABLE: TableContract(
        columns=RAW_COLUMNS,
        min_rows=10_000,
        patterns={
            "survey_year": r"^20[0-9]{2}$",
            "code_metier_bmo": JOB_CODE,
            "dept": DEPARTEMENT_CODE,
            "reg": r"^[0-9]{1,2}$",
            "bassin_code": r"^[0-9]{3,4}$",
            "met": COUNT,
            "xmet": COUNT,
            "smet": COUNT,
        },
        not_null=(
            "survey_year",
            "nomenclature",
            "code_metier_bmo",
            "dept",
            "bassin_code",
            "met_masked",
            "xmet_masked",
            "smet_masked",
        ),
        unique=(("survey_year", "bassin_code", "dept", "code_metier_bmo"),),
        accepted={"nomenclature": NOMENCLATURES},
    ),
}


@dataclass(frozen=True)
class DataSheet:
    """Where the BMO rows sit in a workbook, and which column plays which part."""

    name: str
    header_row: int
    columns: dict[str, int]  # canonical name -> column position
    extras: dict[str, int]  # other headers (snake_case) -> column position
    bassin_header: str  # the published bassin code header, e.g. BE24


def _cell_text(value: object) -> str | None:
    """Trimmed text of a cell; a whole float written by a numeric cell loses its `.0`."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    return re.sub(r"^(-?\d+)\.0+$", r"\1", text)


def _column_text(column: pd.Series) -> pd.Series:
    """`_cell_text` for a whole column (vectorised: the 2024 sheet has 53,443 rows)."""
    text = column.astype("str").str.strip()
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.where(text.notna() & (text != "") & (text.str.lower() != "nan"), None).reset_index(
        drop=True
    )


def _map_header(cells: list[object]) -> tuple[dict[str, int], dict[str, int], str | None]:
    """Canonical columns, extra columns and the bassin header found in one header row."""
    lookup = {alias: canon for canon, aliases in ALIASES.items() for alias in aliases}
    columns: dict[str, int] = {}
    extras: dict[str, int] = {}
    bassin_header = None
    for position, cell in enumerate(cells):
        text = _cell_text(cell)
        if text is None:
            continue
        name = snake_case(text)
        canon = lookup.get(name)
        if canon is None and BASSIN_CODE.match(name):
            canon, bassin_header = "bassin_code", text
        elif canon is None and BASSIN_NAME.match(name):
            canon = "bassin_name"
        if canon is not None and canon not in columns:
            columns[canon] = position
        elif name:
            extras[name if name not in RAW_COLUMNS else f"{name}_extra"] = position
    return columns, extras, bassin_header


def find_data_sheet(sheets: dict[str, pd.DataFrame], file_name: str) -> DataSheet | None:
    """The sheet whose header row names the BMO columns; None when no sheet looks like one.

    A sheet is recognised by its best header row among the first rows (the one naming the
    most known columns, at least three among code métier / bassin / counts). A recognised
    sheet that lacks a required column is a changed publication: ParseError, naming what is
    missing and what was found.
    """
    best: tuple[int, str, int, dict[str, int], dict[str, int], str | None] | None = None
    for sheet, frame in sheets.items():
        for row in range(min(HEADER_SEARCH_ROWS, len(frame))):
            columns, extras, bassin_header = _map_header(frame.iloc[row].tolist())
            key_hits = sum(c in columns for c in ("code_metier_bmo", "bassin_code", *COUNT_COLUMNS))
            if key_hits < 3:
                continue
            candidate = (len(columns), sheet, row, columns, extras, bassin_header)
            if best is None or candidate[0] > best[0]:
                best = candidate
    if best is None:
        return None
    _, sheet, row, columns, extras, bassin_header = best
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        found = [_cell_text(v) for v in sheets[sheet].iloc[row].tolist()]
        raise ParseError(
            f"{SLUG}: {file_name}, sheet {sheet!r}: the BMO header (row {row + 1}) lacks "
            f"{missing}; expected columns like {list(REQUIRED)} (bassin as BE<yy>/NOMBE<yy>), "
            f"found {[f for f in found if f]}"
        )
    return DataSheet(sheet, row, columns, extras, bassin_header or "")


def detect_nomenclature(codes: Iterable[str], *, file_name: str) -> str:
    """`fap2021` or `fap2009` from the métier codes' third character (see module doc)."""
    distinct = {c for c in codes if isinstance(c, str) and len(c) == 5}
    x_codes = sorted(c for c in distinct if c[2] == "X")
    z_codes = sorted(c for c in distinct if c[2] == "Z")
    if x_codes and not z_codes:
        return "fap2021"
    if z_codes and not x_codes:
        return "fap2009"
    raise ParseError(
        f"{SLUG}: {file_name}: cannot tell the job nomenclature from the métier codes "
        f"(FAP-2021 métiers BMO carry X in third position, e.g. A0X40; FAP-2009 carry Z, "
        f"e.g. A0Z40); found {len(x_codes)} X-codes {x_codes[:3]} and {len(z_codes)} "
        f"Z-codes {z_codes[:3]}"
    )


def _year_from(text: str) -> int | None:
    if re.fullmatch(r"\d{4}", text):
        return int(text)
    if re.fullmatch(r"\d{2}", text):
        return 2000 + int(text)
    return None


def _survey_year(frame: pd.DataFrame, sheet: DataSheet, member_name: str) -> str:
    """From `annee`, else the bassin header (`BE24`), else the file name; one per file."""
    if "annee" in frame.columns:
        years = set(frame["annee"].dropna())
        if len(years) == 1 and re.fullmatch(r"20\d{2}", next(iter(years))):
            return next(iter(years))
        if len(years) > 1:
            raise ParseError(
                f"{SLUG}: {member_name}, sheet {sheet.name!r}: several survey years in column "
                f"annee {sorted(years)[:5]}; expected one per workbook"
            )
    match = BASSIN_CODE.match(snake_case(sheet.bassin_header))
    if match:
        return str(_year_from(match["year"]))
    match = re.search(r"(20\d{2})", member_name)
    if match:
        return match[1]
    raise ParseError(f"{SLUG}: {member_name}: no survey year in column annee, header or name")


def parse_workbook(data: bytes, member_name: str, landed: LandedFile) -> pd.DataFrame | None:
    """The BMO rows of one workbook in raw shape, or None when it holds no BMO sheet."""
    sheets = read_workbook(data, slug=SLUG, file_name=member_name)
    sheet = find_data_sheet(sheets, member_name)
    if sheet is None:
        return None
    body = sheets[sheet.name].iloc[sheet.header_row + 1 :]
    positions = {**sheet.columns, **sheet.extras}
    frame = pd.DataFrame({name: _column_text(body.iloc[:, pos]) for name, pos in positions.items()})
    # Blank rows and notes under the table carry no code, bassin or count.
    keys = ["code_metier_bmo", "bassin_code", *COUNT_COLUMNS]
    frame = frame[frame[keys].notna().any(axis=1)].reset_index(drop=True)
    for column in OPTIONAL:
        if column not in frame.columns:
            log.warning("%s: %s has no column %s; kept as NULL", SLUG, member_name, column)
            frame[column] = pd.Series([None] * len(frame), dtype="str")
    for column in COUNT_COLUMNS:
        text = frame[column].str.replace(r"\s+", "", regex=True)
        masked = text.isin(MASK_TOKENS)
        frame[column] = text.where(~masked, None)
        frame[f"{column}_masked"] = masked.astype(bool)
    frame["survey_year"] = _survey_year(frame, sheet, member_name)
    year = BASSIN_CODE.match(snake_case(sheet.bassin_header))
    frame["bassin_year"] = str(_year_from(year["year"])) if year else None
    frame["nomenclature"] = detect_nomenclature(frame["code_metier_bmo"], file_name=member_name)
    frame["source_sheet"] = sheet.name
    extras = [c for c in frame.columns if c not in RAW_COLUMNS]
    if extras:
        log.info("%s: %s has extra column(s) %s, kept as text", SLUG, member_name, extras)
    frame = add_provenance(frame[[*RAW_COLUMNS, *extras]], landed)
    if landed.file_name != member_name:
        frame["_source_file"] = f"{landed.file_name}!{member_name}"
    log.info(
        "%s: %s sheet %r: %d rows, survey %s, %s",
        SLUG,
        member_name,
        sheet.name,
        len(frame),
        frame["survey_year"].iloc[0] if len(frame) else "?",
        frame["nomenclature"].iloc[0] if len(frame) else "?",
    )
    return frame


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    """Every BMO workbook among the landed files (alone or in a zip), one raw table.

    The same bytes landed twice (the xlsx and the zip holding it) are read once. Several
    survey years are stacked; two different workbooks for one year are refused.
    """
    files = tuple(files)
    seen: set[str] = set()
    frames: list[pd.DataFrame] = []
    used: list[LandedFile] = []
    for member_name, opener, landed in iter_members(files, "*.xls*"):
        if member_name.startswith("~$"):
            continue
        with opener() as handle:
            data = handle.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        frame = parse_workbook(data, member_name, landed)
        if frame is None:
            log.info("%s: %s holds no BMO data sheet; skipped", SLUG, member_name)
            continue
        frames.append(frame)
        if landed not in used:
            used.append(landed)
    if not frames:
        names = sorted(f.file_name for f in files)
        raise ParseError(
            f"{SLUG}: no workbook with a BMO data sheet (header with Code métier BMO, "
            f"BE<yy>, met, xmet, smet) among the landed files {names}"
        )
    years = [f["survey_year"].iloc[0] for f in frames if len(f)]
    if len(years) != len(set(years)):
        sources = sorted({s for f in frames for s in f["_source_file"].unique()})
        raise ParseError(f"{SLUG}: several different workbooks for one survey year: {sources}")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # One survey year is one yearly partition: say which, so the factory refuses to file
    # a workbook under another year (e.g. last year's file still served in April).
    partition = str(years[0]) if len(years) == 1 else None
    return {TABLE: ParsedTable(TABLE, frame, tuple(used), partition=partition)}
