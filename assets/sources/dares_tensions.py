"""DARES / Pôle emploi — indicators of recruitment tension by job family (FAP-2009), 2019.

Two CSVs (comma, UTF-8, unquoted), told apart by their header:
* `tensions.csv`: one row per FAP × territory for one year: FAP at the 225-family level
  (`niveau_fap = "fap 225"`, `A0Z40`) and the 87-family level (`"fap 87"`, `A0Z`);
  territory `niveau_geo` = `nat` / `reg` / `dep` (sometimes `reg ` with a trailing
  space), with the région in `reg` written as a float (`1.0`, `84.0`) and the département in
  `dep` (`01`, `2A`, `971`). Columns: average employment, the tension index (`Tension `,
  trailing space; centred and scaled on 2014-2018), its 1-5 class and the six
  complementary indicators (1-5 quintile classes written `3.0`);
* `evol_tensions.csv`: the national tension index per FAP and year (2011-2019).
Raw fixes only what would corrupt a code: `niveau_geo` is trimmed, `reg` becomes the
two-character INSEE région code (`1.0` -> `01`), `dep` is padded (`1` -> `01`), `annee`
loses a float suffix. Indicator values stay as published text; empty cells (indicator not
computed for the cell, often small employment) stay NULL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import timedelta

import pandas as pd

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import (
    ParsedTable,
    ParseError,
    add_provenance,
    decode_text,
    read_csv_text,
)
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import TableContract

log = logging.getLogger(__name__)

SLUG = "dares_tensions"
TABLES = ("tensions", "evol_tensions")

_REPO = (
    "https://raw.githubusercontent.com/StatDares/PortraitStatMetiers/"
    "3d7e055d08cd1001cf1a7e0daeb60aead7d9415e/inputs/tensions"
)
SPEC = SourceSpec(
    slug=SLUG,
    publisher="DARES and Pôle emploi",
    title="Indicateurs de tension sur le marché du travail par métier (FAP-2009), 2019",
    landing_page="https://github.com/StatDares/PortraitStatMetiers",
    licence=(
        "DARES public statistics taken from DARES's GPL-3 GitHub repository (see PROVENANCE.md)"
    ),
    cadence="yearly (this 2019 edition is frozen; later editions are workbooks)",
    downloads=(
        Download(url=f"{_REPO}/tensions.csv", file_name="tensions.csv", format="csv"),
        Download(url=f"{_REPO}/evol_tensions.csv", file_name="evol_tensions.csv", format="csv"),
    ),
    mirror_patterns=("*tensions*.csv",),
    # Yearly publication (autumn); a monthly look is cheap (HEAD).
    schedule="0 6 1 * *",
    max_age=timedelta(days=400),
)

FAP2009 = r"^[A-Z][0-9][A-Z](?:[0-9]{2})?$"  # 225 level A0Z40 / G0A40, 87 level A0Z
NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$"
CLASS = r"^[1-5](?:\.0)?$"
YEAR = r"^[0-9]{4}$"

# The six complementary indicators (1-5 classes), raw names.
COMPONENTS = (
    "intensite_d_embauches",
    "lien_formation_emploi",
    "manque_de_main_d_oeuvre_disponible",
    "non_durabilite_de_l_emploi",
    "conditions_de_travail_contraignantes",
    "inadequation_geographique",
)

CONTRACTS: dict[str, TableContract] = {
    "tensions": TableContract(
        columns=(
            "fap",
            "emploi_moyen",
            "tension",
            "categorie_tension",
            *COMPONENTS,
            "annee",
            "niveau_geo",
            "niveau_fap",
            "reg",
            "dep",
        ),
        min_rows=20_000,
        patterns={
            "fap": FAP2009,
            "emploi_moyen": NUMBER,
            "tension": NUMBER,
            "categorie_tension": CLASS,
            **dict.fromkeys(COMPONENTS, CLASS),
            "annee": YEAR,
            "reg": r"^[0-9]{2}$",
            "dep": r"^(?:[0-9]{2}|2[AB]|97[1-6])$",
        },
        not_null=("fap", "annee", "niveau_geo", "niveau_fap"),
        unique=(("fap", "annee", "niveau_geo", "reg", "dep"),),
        accepted={"niveau_geo": ("nat", "reg", "dep"), "niveau_fap": ("fap 225", "fap 87")},
    ),
    "evol_tensions": TableContract(
        columns=("fap", "tension", "annee"),
        min_rows=1000,
        patterns={"fap": FAP2009, "tension": NUMBER, "annee": YEAR},
        not_null=("fap", "annee"),
        unique=(("fap", "annee"),),
    ),
}

_FLOAT_INTEGER = re.compile(r"^(\d+)\.0*$")


def spell_out_ligatures(text: str) -> str:
    """`main-d'œuvre` -> `main-d'oeuvre`: ASCII folding would drop `œ`, not expand it."""
    return text.replace("œ", "oe").replace("Œ", "OE")


def code_text(value: object, width: int) -> str | None:
    """A code written as a number back to text: `1.0` -> `01`, `84` -> `84`, `2A` kept."""
    if value is None or pd.isna(value):
        return None
    text = str(value).strip()
    if not text:
        return None
    match = _FLOAT_INTEGER.match(text)
    if match:
        text = match.group(1)
    return text.zfill(width) if text.isdigit() else text.upper()


def _table_of(columns: list[str]) -> str | None:
    if {"fap", "tension", "niveau_geo"} <= set(columns):
        return "tensions"
    if {"fap", "tension", "annee"} <= set(columns):
        return "evol_tensions"
    return None


def parse_csv(data: bytes, file_name: str) -> pd.DataFrame:
    text = decode_text(data, slug=SLUG, file_name=file_name)
    # The separator is a comma in this edition; take `;` if the header clearly uses it.
    header, _, rest = text.partition("\n")
    sep = ";" if header.count(";") > header.count(",") else ","
    text = spell_out_ligatures(header) + "\n" + rest
    frame = read_csv_text(text, slug=SLUG, file_name=file_name, sep=sep)
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise ParseError(f"{SLUG}: {file_name}: duplicated column(s) {duplicated} in the header")
    frame = frame.map(lambda v: (v.strip() or None) if isinstance(v, str) else None)
    return frame.dropna(how="all").reset_index(drop=True)


def clean_codes(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "niveau_geo" in frame:
        frame["niveau_geo"] = frame["niveau_geo"].str.strip().str.lower()
    if "niveau_fap" in frame:
        frame["niveau_fap"] = frame["niveau_fap"].str.strip().str.lower()
    for column, width in (("reg", 2), ("dep", 2), ("annee", 4)):
        if column in frame:
            frame[column] = frame[column].map(lambda v, w=width: code_text(v, w))
    if "fap" in frame:
        frame["fap"] = frame["fap"].str.strip().str.upper()
    return frame.astype("str")


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    files = tuple(files)
    found: dict[str, list[tuple[str, pd.DataFrame, LandedFile]]] = {t: [] for t in TABLES}
    seen = []
    for name, opener, landed in iter_members(files, "*.csv"):
        with opener() as handle:
            frame = parse_csv(handle.read(), name)
        seen.append(f"{name}: {list(frame.columns)}")
        table = _table_of(list(frame.columns))
        if table is not None:
            found[table].append((name, frame, landed))
    expected = {
        "tensions": "fap, ..., Tension , ..., niveau_geo, niveau_fap, reg, dep",
        "evol_tensions": "fap, Tension , Année",
    }
    tables: dict[str, ParsedTable] = {}
    for table in TABLES:
        if len(found[table]) != 1:
            raise ParseError(
                f"{SLUG}: expected one CSV with columns {expected[table]} for table {table}, "
                f"found {len(found[table])}; landed CSVs and their columns: {seen}"
            )
        name, frame, landed = found[table][0]
        frame = add_provenance(clean_codes(frame), landed)
        if landed.file_name != name:
            frame["_source_file"] = f"{landed.file_name}!{name}"
        tables[table] = ParsedTable(table, frame, (landed,))
        log.info("%s: parsed %s as %s (%d rows)", SLUG, name, table, len(frame))
    return tables
