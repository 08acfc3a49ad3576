"""Etalab — découpage administratif: départements and régions (from INSEE's COG).

Published as JSON arrays (npm package `@etalab/decoupage-administratif`, `data/`).
The files list 109 "départements": the 101 départements (96 metropolitan incl. 2A/2B,
and the five DROM 971-974, 976) plus the 8 collectivités d'outre-mer (COM: 975, 977,
978, 984, 986-989, `zone = "com"`), and 26 "régions" (18 régions + 8 COM pseudo-régions).
Raw keeps every entry with its `zone`; the dimension models keep départements and
régions only (see dbt `dim_departement`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

import pandas as pd

from assets.ingest.landing import LandedFile
from assets.ingest.members import iter_members
from assets.ingest.raw import ParsedTable, ParseError, add_provenance, snake_case
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import TableContract

log = logging.getLogger(__name__)

SLUG = "etalab_decoupage_administratif"
PACKAGE_URL = "https://unpkg.com/@etalab/decoupage-administratif@6.0.0/data"
TABLES = ("departements", "regions")

SPEC = SourceSpec(
    slug=SLUG,
    publisher="Etalab (DINUM), from INSEE's Code officiel géographique",
    title="Découpage administratif — départements et régions",
    landing_page="https://github.com/datagouv/decoupage-administratif",
    licence="Licence Ouverte / Etalab 2.0 (data)",
    cadence="yearly (new COG millésime in January)",
    downloads=tuple(
        Download(url=f"{PACKAGE_URL}/{t}.json", file_name=f"{t}.json", format="json")
        for t in TABLES
    ),
    mirror_patterns=tuple(f"{t}.json" for t in TABLES),
    # The COG millésime changes each January; the package URL pins a version, so a
    # monthly look (1st, 06:00 Paris) is enough.
    schedule="0 6 1 * *",
    max_age=timedelta(days=40),
)

ZONES = ("metro", "drom", "com")
DEPARTEMENT_CODE = r"^(?:[0-9]{2}|2[AB]|97[1-8]|98[4-9])$"
# Régions have two digits; each COM is its own pseudo-région, coded like the COM.
REGION_CODE = r"^(?:[0-9]{2}|97[5-8]|98[4-9])$"

CONTRACTS: dict[str, TableContract] = {
    "departements": TableContract(
        columns=("code", "region", "chef_lieu", "nom", "zone"),
        min_rows=101,
        patterns={"code": DEPARTEMENT_CODE, "region": REGION_CODE, "chef_lieu": r"^[0-9AB]{5}$"},
        not_null=("code", "nom", "zone"),
        unique=(("code",),),
        accepted={"zone": ZONES},
    ),
    "regions": TableContract(
        columns=("code", "chef_lieu", "nom", "zone"),
        min_rows=18,
        patterns={"code": REGION_CODE},
        not_null=("code", "nom", "zone"),
        unique=(("code",),),
        accepted={"zone": ZONES},
    ),
}


def parse_table(table: str, data: bytes, member_name: str, landed: LandedFile) -> ParsedTable:
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{SLUG}: {member_name} is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ParseError(f"{SLUG}: {member_name} must be a JSON array of objects")
    frame = pd.DataFrame.from_records(records)
    frame.columns = [snake_case(c) for c in frame.columns]
    # Codes and every other field stay text: "01" and "2A" must survive, numbers too.
    frame = frame.astype("str").where(frame.notna(), None).astype("str")
    frame = add_provenance(frame, landed)
    return ParsedTable(table, frame, (landed,))


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    files = tuple(files)
    tables: dict[str, ParsedTable] = {}
    for table in TABLES:
        found = list(iter_members(files, f"{table}.json"))
        if len(found) != 1:
            names = sorted(f.file_name for f in files)
            raise ParseError(
                f"{SLUG}: expected exactly one {table}.json among the landed files, "
                f"found {len(found)} in {names}"
            )
        member_name, opener, landed = found[0]
        with opener() as handle:
            tables[table] = parse_table(table, handle.read(), member_name, landed)
        log.info("%s: parsed %s (%d rows)", SLUG, member_name, len(tables[table].frame))
    return tables
