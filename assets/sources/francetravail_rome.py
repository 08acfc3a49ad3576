"""France Travail — ROME 4.0, the job referential, full CSV export.

The export is one CSV per table (`unix_<table>_v<version>_utf8.csv`), comma separated,
every field double-quoted. Known quirks handled here:
* `unix_arborescence_secteur_naf_*_utf8.csv` is Windows-1252 despite its name;
* `unix_type_referentiel_*` has a header and no rows (an empty table, not an error);
* in `unix_texte_*` apostrophes come out doubled (`l''Institut`);
* `cr_gd_dp` spells `code_domaine_professionel` with one n.
The ROME version is read from the file name (`v460` -> `4.60`) and kept on every row.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import timedelta

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import ParsedTable, ParseError, add_provenance, decode_text, read_csv_text
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import TableContract

log = logging.getLogger(__name__)

SLUG = "francetravail_rome"

# Tables taken from the export; the file for table T is unix_T_v<version>_utf8.csv.
TABLES = (
    "referentiel_code_rome",
    "referentiel_appellation",
    "cr_gd_dp",
    "grand_domaine",
    "domaine_professionnel",
    "rubrique_mobilite",
    "texte",
    "arborescence_secteur_naf",
    "type_referentiel",
)

SPEC = SourceSpec(
    slug=SLUG,
    publisher="France Travail",
    title="ROME 4.0 — Répertoire opérationnel des métiers et des emplois (export CSV)",
    landing_page=(
        "https://www.data.gouv.fr/fr/datasets/"
        "repertoire-operationnel-des-metiers-et-des-emplois-rome/"
    ),
    licence="Licence Ouverte / Etalab 2.0",
    cadence="twice a year (new ROME version)",
    downloads=(
        Download(
            url="https://www.data.gouv.fr/api/1/datasets/r/8cf674b6-ef21-446a-8190-178e2defd6fc",
            file_name="RefRomeCsv.zip",
            format="zip",
        ),
    ),
    mirror_patterns=tuple(f"unix_{t}_v*.csv" for t in TABLES),
    extra_hosts=("api.francetravail.fr", "static.data.gouv.fr"),
    # A new ROME version comes out about twice a year, on no fixed date: look weekly
    # (Mondays 06:00, Paris); stale after two missed looks.
    schedule="0 6 * * 1",
    max_age=timedelta(days=15),
    vintage_pattern=r"_v(\d+)_utf8",
)

ROME_CODE = r"^[A-N][0-9]{4}$"
OGR_CODE = r"^[0-9]+$"
TAG = ("O", "N")

CONTRACTS: dict[str, TableContract] = {
    "referentiel_code_rome": TableContract(
        columns=("code_rome", "code_ogr", "libelle_rome", "code_rome_parent"),
        min_rows=500,
        patterns={"code_rome": ROME_CODE, "code_rome_parent": ROME_CODE, "code_ogr": OGR_CODE},
        not_null=("code_rome", "libelle_rome", "code_rome_parent"),
        unique=(("code_rome",),),
        accepted={"emploi_cadre": TAG, "emploi_reglemente": TAG},
    ),
    "referentiel_appellation": TableContract(
        columns=("code_ogr", "libelle_appellation_long", "code_rome", "classification"),
        min_rows=5000,
        patterns={"code_rome": ROME_CODE, "code_ogr": OGR_CODE},
        not_null=("code_ogr", "libelle_appellation_long", "code_rome"),
        unique=(("code_ogr",),),
        accepted={"classification": ("PRINCIPALE", "SYNONYME"), "peu_usite": TAG},
    ),
    "cr_gd_dp": TableContract(
        columns=(
            "code_rome",
            "code_grand_domaine",
            "libelle_grand_domaine",
            "code_domaine_professionnel",
            "libelle_domaine_professionnel",
        ),
        min_rows=500,
        patterns={
            "code_rome": ROME_CODE,
            "code_grand_domaine": r"^[A-N]$",
            "code_domaine_professionnel": r"^[A-N][0-9]{2}$",
        },
        not_null=("code_rome", "code_grand_domaine", "code_domaine_professionnel"),
        unique=(("code_rome",),),
    ),
    "grand_domaine": TableContract(
        columns=("code_grand_domaine", "libelle_grand_domaine"),
        min_rows=10,
        patterns={"code_grand_domaine": r"^[A-N]$"},
        not_null=("code_grand_domaine", "libelle_grand_domaine"),
        unique=(("code_grand_domaine",),),
    ),
    "domaine_professionnel": TableContract(
        columns=("code_domaine_professionnel", "libelle_domaine_professionnel"),
        min_rows=50,
        patterns={"code_domaine_professionnel": r"^[A-N][0-9]{2}$"},
        not_null=("code_domaine_professionnel", "libelle_domaine_professionnel"),
        unique=(("code_domaine_professionnel",),),
    ),
    "rubrique_mobilite": TableContract(
        columns=("code_rome", "code_rome_cible", "numero_ordre"),
        min_rows=1000,
        patterns={"code_rome": ROME_CODE, "code_rome_cible": ROME_CODE, "numero_ordre": r"^\d+$"},
        not_null=("code_rome", "code_rome_cible"),
        unique=(("code_rome", "code_rome_cible"),),
    ),
    "texte": TableContract(
        columns=("code_rome", "libelle_type_texte", "position_phrase", "libelle_texte"),
        min_rows=1000,
        patterns={"code_rome": ROME_CODE},
        not_null=("code_rome", "libelle_type_texte"),
    ),
    "arborescence_secteur_naf": TableContract(
        columns=("code_secteur_naf", "libelle_secteur_naf", "code_rome"),
        min_rows=100,
        patterns={"code_rome": ROME_CODE},
        not_null=("code_secteur_naf",),
    ),
    # Published with a header and no rows: the contract is on its columns only.
    "type_referentiel": TableContract(
        columns=("code_type_referentiel", "libelle_type_referentiel"),
        min_rows=0,
    ),
}

# Publisher spellings that name the same column; the right-hand side is what raw keeps.
COLUMN_ALIASES = {
    "code_domaine_professionel": "code_domaine_professionnel",
    "libelle_domaine_professionel": "libelle_domaine_professionnel",
}

_FILE_NAME = re.compile(r"^unix_(?P<table>[a-z_]+?)_v(?P<version>\d+)(?:_utf8)?\.csv$")


def rome_version(file_name: str) -> str:
    """`unix_texte_v460_utf8.csv` -> `4.60` (version digits after the major one)."""
    match = _FILE_NAME.match(file_name.rsplit("/", 1)[-1])
    if not match:
        raise ParseError(
            f"{SLUG}: cannot read the ROME version from file name {file_name!r} "
            "(expected unix_<table>_v<digits>_utf8.csv)"
        )
    digits = match["version"]
    return f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits


def parse_table(table: str, data: bytes, member_name: str, landed: LandedFile) -> ParsedTable:
    text = decode_text(data, slug=SLUG, file_name=member_name)
    frame = read_csv_text(text, slug=SLUG, file_name=member_name)
    frame = frame.rename(columns=COLUMN_ALIASES)
    if table == "texte" and "libelle_texte" in frame.columns:
        frame["libelle_texte"] = frame["libelle_texte"].str.replace("''", "'", regex=False)
    frame["rome_version"] = rome_version(member_name)
    frame = add_provenance(frame, landed)
    if landed.file_name != member_name:
        frame["_source_file"] = f"{landed.file_name}!{member_name}"
    return ParsedTable(table, frame, (landed,))


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    """One raw table per export file; a table whose file is absent is an error."""
    files = tuple(files)
    tables: dict[str, ParsedTable] = {}
    for table in TABLES:
        found = list(iter_members(files, f"unix_{table}_v*.csv"))
        if not found:
            names = sorted(f.file_name for f in files)
            raise ParseError(
                f"{SLUG}: no file unix_{table}_v<version>_utf8.csv among the landed files {names}"
            )
        if len(found) > 1:
            names = sorted(name for name, _, _ in found)
            raise ParseError(f"{SLUG}: several files for table {table}: {names}")
        member_name, opener, landed = found[0]
        with opener() as handle:
            data = handle.read()
        tables[table] = parse_table(table, data, member_name, landed)
        log.info("%s: parsed %s (%d rows)", SLUG, member_name, len(tables[table].frame))
    versions = {t.frame["rome_version"].iloc[0] for t in tables.values() if len(t.frame)}
    if len(versions) > 1:
        raise ParseError(f"{SLUG}: the landed files mix ROME versions {sorted(versions)}")
    return tables
