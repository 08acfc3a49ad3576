"""DARES — familles professionnelles (FAP): FAP-2021 labels and the FAP-2009 ↔ ROME v3 table.

Two CSV files, told apart by their header rather than their name:
* the FAP-2021 nomenclature, one row per 341-level code with its 228, 86 and 22-level
  parents (`Code_FAP341;Intitulé_FAP341;...;Intitulé_FAP22`): UTF-8 with BOM, CRLF, `;`,
  no quoting, accented headers;
* the FAP-2009 (225 families) ↔ ROME v3 correspondence DARES uses in its "Portraits
  statistiques des métiers" (`Fap;Rome;intitule_rome`): Windows-1252, `;`, the literal
  `NA` where a family has no ROME code, and blank `;;` lines at the end.
The nomenclature vintage is recorded per row (`nomenclature`: `FAP2021` / `FAP2009`).
`NA` means "no ROME code for this family": NULL, not a masked value.
No official FAP-2009 ↔ FAP-2021 table is published in a readable form here; the dbt
bridge (int_job_classification__rome_to_fap) says what it can and cannot link.
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
    snake_case,
)
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import TableContract

log = logging.getLogger(__name__)

SLUG = "dares_fap"
TABLES = ("fap2021", "fap2009_rome")

SPEC = SourceSpec(
    slug=SLUG,
    publisher="DARES (ministère du Travail)",
    title="Familles professionnelles: nomenclature FAP-2021 et correspondance FAP-2009 / ROME v3",
    landing_page=(
        "https://dares.travail-emploi.gouv.fr/donnees/"
        "la-nomenclature-des-familles-professionnelles-2021"
    ),
    licence=(
        "FAP-2021: Licence Ouverte 2.0 (DARES open-data portal). FAP-2009/ROME table: DARES "
        "public statistics taken from DARES's GPL-3 GitHub repository (see PROVENANCE.md)"
    ),
    cadence="with each nomenclature revision (FAP-2021 is current; the FAP-2009 table is frozen)",
    downloads=(
        Download(
            url="https://data.dares.travail-emploi.gouv.fr/api/explore/v2.1/catalog/datasets/"
            "dares_nomenclature_fap2021/exports/csv?use_labels=true",
            file_name="Intitulés_FAP2021.csv",
            format="csv",
        ),
        Download(
            url="https://raw.githubusercontent.com/StatDares/PortraitStatMetiers/"
            "3d7e055d08cd1001cf1a7e0daeb60aead7d9415e/inputs/fap225_rome.csv",
            file_name="fap225_rome.csv",
            format="csv",
        ),
    ),
    mirror_patterns=("*FAP2021*.csv", "fap*rome*.csv"),
    # Nomenclature tables change rarely; a monthly look is cheap (HEAD).
    schedule="0 6 1 * *",
    max_age=timedelta(days=400),
)

FAP2021_DETAIL = r"^[A-Z][0-9A-Z][A-Z][0-9]{2}[a-z]?$"  # 341 level: A0X41a, QAX01
FAP2021_228 = r"^[A-Z][0-9A-Z][A-Z][0-9]{2}$"
FAP2021_86 = r"^[A-Z][0-9A-Z][A-Z]$"
FAP_DOMAIN = r"^[A-Z]$"
FAP2009_225 = r"^[A-Z][0-9][A-Z][0-9]{2}$"  # A0Z40, G0A40, T2B60
ROME_CODE = r"^[A-N][0-9]{4}$"

CONTRACTS: dict[str, TableContract] = {
    "fap2021": TableContract(
        columns=(
            "code_fap341",
            "intitule_fap341",
            "code_fap228",
            "intitule_fap228",
            "code_fap86",
            "intitule_fap86",
            "code_fap22",
            "intitule_fap22",
            "nomenclature",
        ),
        min_rows=300,
        patterns={
            "code_fap341": FAP2021_DETAIL,
            "code_fap228": FAP2021_228,
            "code_fap86": FAP2021_86,
            "code_fap22": FAP_DOMAIN,
        },
        not_null=("code_fap341", "intitule_fap341", "code_fap228", "code_fap86", "code_fap22"),
        unique=(("code_fap341",),),
        accepted={"nomenclature": ("FAP2021",)},
    ),
    "fap2009_rome": TableContract(
        columns=("fap", "rome", "intitule_rome", "nomenclature"),
        min_rows=700,
        patterns={"fap": FAP2009_225, "rome": ROME_CODE},
        not_null=("fap",),
        unique=(("fap", "rome"),),
        accepted={"nomenclature": ("FAP2009",)},
    ),
}

NA_MARKERS = frozenset({"NA", "N/A", "#N/A"})


def header_name(cell: str) -> str:
    """`Intitulé_FAP341` / `Intitulé FAP 341` -> `intitule_fap341`."""
    return re.sub(r"_(?=\d)", "", snake_case(str(cell)))


def _table_of(columns: list[str]) -> str | None:
    if {"code_fap341", "code_fap228"} <= set(columns):
        return "fap2021"
    if {"fap", "rome"} <= set(columns):
        return "fap2009_rome"
    return None


def parse_csv(data: bytes, file_name: str) -> pd.DataFrame:
    """Read one DARES CSV (`;`), every value as text, blank lines and `NA` as NULL."""
    text = decode_text(data, slug=SLUG, file_name=file_name)
    frame = read_csv_text(text, slug=SLUG, file_name=file_name, sep=";")
    frame.columns = [header_name(c) for c in frame.columns]
    frame = frame.map(lambda v: None if pd.isna(v) or v.strip() in NA_MARKERS else v.strip())
    frame = frame.dropna(how="all").reset_index(drop=True)
    return frame.astype("str")


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    files = tuple(files)
    found: dict[str, list[tuple[str, pd.DataFrame, LandedFile]]] = {t: [] for t in TABLES}
    seen = []
    for name, opener, landed in iter_members(files, "*.csv"):
        with opener() as handle:
            frame = parse_csv(handle.read(), name)
        table = _table_of(list(frame.columns))
        seen.append(f"{name}: {list(frame.columns)}")
        if table is not None:
            found[table].append((name, frame, landed))
    tables: dict[str, ParsedTable] = {}
    expected = {
        "fap2021": "Code_FAP341;Intitulé_FAP341;Code_FAP228;...",
        "fap2009_rome": "Fap;Rome;intitule_rome",
    }
    for table in TABLES:
        if len(found[table]) != 1:
            raise ParseError(
                f"{SLUG}: expected one CSV with header {expected[table]} for table {table}, "
                f"found {len(found[table])}; landed CSVs and their columns: {seen}"
            )
        name, frame, landed = found[table][0]
        frame["nomenclature"] = "FAP2021" if table == "fap2021" else "FAP2009"
        frame = add_provenance(frame, landed)
        if landed.file_name != name:
            frame["_source_file"] = f"{landed.file_name}!{name}"
        tables[table] = ParsedTable(table, frame, (landed,))
        log.info("%s: parsed %s as %s (%d rows)", SLUG, name, table, len(frame))
    return tables
