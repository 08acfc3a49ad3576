"""France Travail — API "Marché du travail" v1: labour-market indicators by job and area.

Each indicator endpoint answers an `IndicateurRetour`: header fields (`codeIndicateur`,
`datMaj`...) and `listeValeursParPeriode`, one `ValeursParPeriode` per activity x
territory x nomenclature x period, each optionally broken down in `listeValeurParCaract`
(`ValeursParCaracteristique`: gender, contract type...). The parser reads the activity and
territory from every entry, not from the request, so it reads the same way one response
per request (live) or one file per indicator x territory type (the synthetic mirror).

Kept indicators: DE_1 job seekers (`stat-demandeurs`), OFF_1 offers (`stat-offres`),
EMB_1 hires (`stat-embauches`), PERSP_2 recruitment difficulty (`stat-perspective-
employeur`), SAL_3 salaries (`salaire-rome-fap`), plus the ROME -> FAP referential
(`rechercherActivitesRomeFap`).

Secret values: an entry whose principal value (`valeurPrincipaleNombre` / `Montant` /
`Taux`) is absent or null is statistically secret; raw keeps it with `value` NULL and
`value_masked` true, never 0. The mirror is generated (see synthetic_francetravail.py);
rows from `synthetic__*` files carry `synthetic = true`.

The answers are parsed by DuckDB, not row by row in Python: national volumes are tens of
millions of rows, which DuckDB streams to Parquet in bounded memory several times faster
than building one Python dict per row could.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from assets.foundation.settings import Settings
from assets.ingest.fetch import FetchReport, fetch_source
from assets.ingest.francetravail_api import (
    API_SOURCE_FIELDS,
    GZIP_MAGIC,
    SCOPES_MARCHE_TRAVAIL,
    Credentials,
    FranceTravailApiError,
    FranceTravailClient,
    is_synthetic_file,
    land_response,
    read_json,
)
from assets.ingest.landing import LandedFile, NotFetchedError, current_files, write_current_pointer
from assets.ingest.raw import ParsedTable, ParseError, add_provenance
from assets.ingest.spec import Download, SourceSpec
from assets.ingest.validation import StagedTable, TableContract

logger = logging.getLogger(__name__)

SLUG = "francetravail_marche_travail"
API_BASE = "https://api.francetravail.io/partenaire/stats-offres-demandes-emploi"
TABLES = ("indicators", "rome_fap")

# Indicator code -> (endpoint, HTTP method, period type, nomenclature type of the request).
INDICATORS = {
    "DE_1": ("stat-demandeurs", "POST", "TRIMESTRE", "CATCAND"),
    "OFF_1": ("stat-offres", "POST", "TRIMESTRE", "ORIGINEOFF"),
    "EMB_1": ("stat-embauches", "POST", "TRIMESTRE", "CATCANDxDUREEEMP"),
    "PERSP_2": ("stat-perspective-employeur", "POST", "ANNEE", "TYPE_TENSION"),
    "SAL_3": ("salaire-rome-fap", "GET", "ANNEE", None),
}
ROME_FAP_ENDPOINT = "rechercherActivitesRomeFap"

SPEC = SourceSpec(
    slug=SLUG,
    publisher="France Travail",
    title="API Marché du travail v1 — demandeurs, offres, embauches, tension, salaires",
    landing_page="https://francetravail.io/data/api/marche-travail",
    licence="francetravail.io terms of use (API content); mirror is synthetic",
    cadence="quarterly (job seekers, offers, hires), yearly (tension, salaries)",
    downloads=tuple(
        Download(
            url=f"{API_BASE}/v1/indicateur/{endpoint}", file_name=f"{endpoint}.json", format="json"
        )
        for endpoint, *_ in INDICATORS.values()
    )
    + (
        Download(
            url=f"{API_BASE}/v1/referentiel/{ROME_FAP_ENDPOINT}",
            file_name=f"{ROME_FAP_ENDPOINT}.json",
            format="json",
        ),
    ),
    **API_SOURCE_FIELDS,
    # Quarterly statistics, out about five weeks after the quarter; credentialed API: no
    # cheap release probe, the schedule is the check.
    schedule="0 6 5 2,5,8,11 *",
    max_age=timedelta(days=120),
)

ROME_OR_FAP = r"^(?:[A-N][0-9]{4}|[A-Z][0-9][A-Z][0-9]{2})$"
TERRITORY = r"^(?:FR|[0-9]{2}|2[AB]|97[1-6])$"
NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"

INDICATOR_COLUMNS = (
    "indicator_code",
    "indicator_family",
    "activity_type",
    "activity_code",
    "activity_label",
    "territory_type",
    "territory_code",
    "territory_label",
    "period_type",
    "period_code",
    "period_label",
    "period_start",
    "nomenclature_code",
    "nomenclature_label",
    "characteristic_type",
    "characteristic_code",
    "characteristic_label",
    "value_name",
    "value_kind",
    "value",
    "value_masked",
    "value_pct",
    "secondary_count",
    "updated_at",
    "synthetic",
)

CONTRACTS: dict[str, TableContract] = {
    "indicators": TableContract(
        columns=INDICATOR_COLUMNS,
        min_rows=1,
        patterns={
            "activity_code": ROME_OR_FAP,
            "territory_code": TERRITORY,
            "period_start": r"^[0-9]{4}-(?:0[1-9]|1[0-2])-01$",
            "value": NUMBER,
            "value_pct": NUMBER,
            "secondary_count": r"^[0-9]+$",
        },
        not_null=(
            "indicator_code",
            "activity_type",
            "activity_code",
            "territory_type",
            "territory_code",
            "period_type",
            "period_code",
            "value_masked",
            "synthetic",
        ),
        unique=(
            (
                "indicator_code",
                "activity_type",
                "activity_code",
                "territory_type",
                "territory_code",
                "period_type",
                "period_code",
                "nomenclature_code",
                "characteristic_type",
                "characteristic_code",
            ),
        ),
        accepted={
            "indicator_code": tuple(INDICATORS),
            "territory_type": ("NAT", "REG", "DEP"),
            "activity_type": ("ROME", "FAP"),
            "value_kind": ("nombre", "montant", "taux", "rang"),
        },
    ),
    "rome_fap": TableContract(
        columns=("rome_code", "fap_code", "updated_at", "synthetic"),
        min_rows=500,
        patterns={"rome_code": r"^[A-N][0-9]{4}$", "fap_code": r"^[A-Z][0-9][A-Z][0-9]{2}$"},
        not_null=("rome_code", "fap_code", "synthetic"),
        unique=(("rome_code", "fap_code"),),
    ),
}

# Principal value fields of ValeursParPeriode, in the order one is taken as `value`.
MAIN_VALUES = (
    ("valeurPrincipaleNombre", "nombre"),
    ("valeurPrincipaleMontant", "montant"),
    ("valeurPrincipaleTaux", "taux"),
    ("valeurPrincipaleRang", "rang"),
)
CHARACTERISTIC_VALUES = (("nombre", "nombre"), ("montant", "montant"), ("taux", "taux"))
# A value is kept when its text matches NUMBER; anything else (null, the "*", "s", "nd",
# "n.d.", "secret", "c" or "" some publishers put where a secret number would be) is
# NULL with `value_masked` true.


# ------------------------------------------------------------------------------ parsing


def _text(value: object) -> str | None:
    """JSON scalar -> raw text (numbers without float noise), None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


_QUARTER = re.compile(r"^(\d{4})T([1-4])$")
_MONTH = re.compile(r"^(\d{4})(?:M|-)?(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(\d{4})$")


def period_start(period_type: str | None, code: str | None) -> str | None:
    """`2023T4` -> 2023-10-01, `2023` -> 2023-01-01, `2023M11`/`202311` -> 2023-11-01."""
    if not code:
        return None
    code = code.strip().upper()
    if m := _QUARTER.match(code):
        return f"{m[1]}-{3 * (int(m[2]) - 1) + 1:02d}-01"
    if (m := _YEAR.match(code)) and (period_type or "").upper() != "MOIS":
        return f"{m[1]}-01-01"
    if m := _MONTH.match(code):
        return f"{m[1]}-{m[2]}-01"
    return None


def _sql_text(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _json_text(raw: str) -> str | None:
    """`_text` for the JSON values SQL leaves to Python (objects, arrays, non-finite or
    huge numbers): rare enough that reusing Python's own rule is the exact answer."""
    return _text(json.loads(raw))


# `_text`, the NUMBER test and `period_start` again, as DuckDB macros over fields read as
# JSON, so that `12`, `12.0`, `"12.0"` and `"*"` reach them as written. A string loses
# what `str.strip` strips (the slow `trim` only when an edge needs it); an integral float
# prints as an integer and any other float through DuckDB's DOUBLE -> VARCHAR, which is
# the shortest round-trip form like Python's repr. RE2's `\p{Nd}` is Python's `\d`.
_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_PERIOD = r"^(\p{Nd}{4})(?:T([1-4])|(?:M|-)?(0[1-9]|1[0-2]))?$"
# How DuckDB prints a JSON float read as VARCHAR (Python's repr): with a point or exponent.
_FLOAT_TEXT = r"-?[0-9]+(?:\.[0-9]+(?:e[-+][0-9]+)?|e[-+][0-9]+)"
NOT_PLAIN = f"{SLUG}: a text field is not plain text"
_MACROS = (
    f"""
    create macro jtext(x) as (
        case
            when x is null then null
            when starts_with(x::varchar, '"') then (
                case
                    when contains(x::varchar, '\\')
                        or not (x::varchar between '"!' and ('"' || chr(127)))
                        or not ((x::varchar)[-2] between '!' and chr(127))
                    then trim(json_extract_string(x, '$'), {_sql_text(_WHITESPACE)})
                    else substr(x::varchar, 2, length(x::varchar) - 2)
                end)
            else (
                case json_type(x)
                    when 'UBIGINT' then x::varchar
                    when 'BIGINT' then x::varchar
                    when 'BOOLEAN' then x::varchar
                    when 'DOUBLE' then (
                        case
                            when isfinite(x::double) and x::double <> trunc(x::double)
                            then x::double::varchar
                            when abs(x::double) < 1e18 then x::double::bigint::varchar
                            else json_text(x::varchar)
                        end)
                    else json_text(x::varchar)
                end)
        end)
    """,
    f"create macro jnumber(t) as (case when regexp_full_match(t, {_sql_text(NUMBER)}) then t end)",
    # A text field read as VARCHAR: DuckDB gives a string's content, and a number, boolean,
    # object or array written as text. That text is `_text`'s answer (stripped) except
    # for what a non-string may print differently in Python: an integral or non-finite
    # float (`60.0`, `1e+16`, `NaN`), an object or an array. Such a text stops the read
    # (NOT_PLAIN), which is then done again with the fields read as JSON.
    f"""
    create macro vtext(t) as (
        case
            when t is null then null
            when (t between '-' and ':' and regexp_full_match(t, {_sql_text(_FLOAT_TEXT)}))
                or t in ('NaN', 'Infinity', '-Infinity')
                or t between '[' and '\\' or t between '{{' and '|'
            then error({_sql_text(NOT_PLAIN)})
            when t between '!' and chr(127) and t[-1] between '!' and chr(127) then t
            else trim(t, {_sql_text(_WHITESPACE)})
        end)
    """,
    """
    create macro pstart(ptype, parts) as (
        case
            when parts.y = '' then null
            when parts.q <> '' then parts.y || '-' || ['01', '04', '07', '10'][parts.q::integer]
                || '-01'
            when parts.m <> '' then parts.y || '-' || parts.m || '-01'
            when upper(coalesce(ptype, '')) <> 'MOIS' then parts.y || '-01-01'
        end)
    """,
)

_ENTRY_TEXTS = {  # output column <- ValeursParPeriode field taken as text
    "activity_type": "codeTypeActivite",
    "activity_code": "codeActivite",
    "activity_label": "libActivite",
    "territory_type": "codeTypeTerritoire",
    "territory_code": "codeTerritoire",
    "territory_label": "libTerritoire",
    "period_type": "codeTypePeriode",
    "period_code": "codePeriode",
    "period_label": "libPeriode",
    "nomenclature_code": "codeNomenclature",
    "nomenclature_label": "libNomenclature",
    "value_name": "valeurPrincipaleNom",
    "updated_at": "datMaj",
}


_CHARACTERISTIC_TEXTS = ("codeTypeCaract", "codeCaract", "libCaract")
_DOCUMENT_TEXTS = ("codeIndicateur", "codeFamille", "datMaj")


def _struct(texts: Iterable[str], text_type: str, values: Iterable[str], *extra: str) -> str:
    fields = [*(f'"{f}" {text_type}' for f in texts), *(f'"{f}" JSON' for f in values)]
    return "STRUCT(" + ", ".join([*fields, *extra]) + ")"


def _document_columns(text_type: str) -> str:
    """The `columns` of read_json: text fields as `text_type` (VARCHAR or JSON), values as
    JSON, so that `12.0` and `"12.0"` stay apart."""
    characteristic = _struct(
        _CHARACTERISTIC_TEXTS, text_type, (*dict(CHARACTERISTIC_VALUES), "pourcentage")
    )
    entry = _struct(
        _ENTRY_TEXTS.values(),
        text_type,
        (*dict(MAIN_VALUES), "valeurSecondairePourcentage", "valeurSecondaireNombre"),
        f'"listeValeurParCaract" {characteristic}[]',
    )
    document = ", ".join(f"{f}: '{text_type}'" for f in _DOCUMENT_TEXTS)
    return f"{{{document}, listeValeursParPeriode: '{entry}[]'}}"


# DuckDB holds an answer whole and sizes its read buffers on `maximum_object_size`: the
# largest landed answer is measured (gzip keeps the decompressed size in its last 4
# bytes), from DuckDB's own minimum up to a ceiling that bounds the buffers' memory.
MIN_ANSWER_BYTES = 16 * 2**20
MAX_ANSWER_BYTES = 256 * 2**20
DUCKDB_MEMORY = "1500MB"


def _value_sql(row: str, fields: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(kind, value) SQL: the first of `fields` present and not null, as a NUMBER."""
    kind = " ".join(f"when {row}.{key} is not null then '{name}'" for key, name in fields)
    first = ", ".join(f"{row}.{key}" for key, _ in fields)
    return f"case {kind} end", f"jnumber(jtext(coalesce({first})))"


def _indicators_sql(reads: str, target: Path, text: str) -> str:
    """COPY of every indicator row to `target`, in file, entry, characteristic order.

    Nothing in it reorders rows (no join, no sort: an answer finds its landed file by
    `file_index` in the `pages` variable), so DuckDB keeps the read order and memory stays
    flat. Entries and then characteristics are unnested in place, so entry fields are
    computed once per entry; an entry's first row number is the position of its row in
    the answer's flattened (entry, characteristics...) list. `text` is the macro that
    makes a text field's text (`vtext` for fields read as VARCHAR, `jtext` as JSON).
    """
    main_kind, main_value = _value_sql("e", MAIN_VALUES)
    item_kind, item_value = _value_sql("c", CHARACTERISTIC_VALUES)
    fault = f"'{SLUG}: cannot read ' || page.path"  # worded by `_unreadable`
    entry_columns = [
        *(f"{text}(e.{field}) as {column}" for column, field in _ENTRY_TEXTS.items()),
        f"regexp_extract(upper({text}(e.codePeriode)), {_sql_text(_PERIOD)}, ['y', 'q', 'm'])"
        " as period_parts",
        f"{main_kind} as entry_value_kind",
        f"{main_value} as entry_value",
        "jnumber(jtext(e.valeurSecondairePourcentage)) as entry_value_pct",
        "jnumber(jtext(e.valeurSecondaireNombre)) as entry_secondary_count",
    ]
    columns = {
        "indicator_code": f"case when e_missing or (k > 0 and c is null) then error({fault}) "
        "else code end",
        "indicator_family": "family",
        **{column: column for column in _ENTRY_TEXTS},
        "period_start": "period_start",
        "characteristic_type": f"{text}(c.codeTypeCaract)",
        "characteristic_code": f"{text}(c.codeCaract)",
        "characteristic_label": f"{text}(c.libCaract)",
        "value_kind": f"case when k = 0 then entry_value_kind else {item_kind} end",
        "value": "value",
        "value_masked": "value is null",
        "value_pct": "case when k = 0 then entry_value_pct else jnumber(jtext(c.pourcentage)) end",
        "secondary_count": "case when k = 0 then entry_secondary_count end",
        "updated_at": "updated_at",
        "synthetic": "page.synthetic",
    }
    return f"""
    copy (
        with documents as (
            select getvariable('pages')[file_index + 1] as page, {text}(codeIndicateur) as code,
                {text}(codeFamille) as family, {text}(datMaj) as document_updated_at,
                listeValeursParPeriode as entries,
                flatten(list_transform(listeValeursParPeriode, lambda e: list_resize(
                    [true], 1 + coalesce(len(e.listeValeurParCaract), 0), false))) as first_rows
            from ({reads})
        ),
        entries as (
            select page, family, document_updated_at,
                case when len(entries) > 0 and coalesce(code, '') = '' then error({fault})
                    else code end as code,
                unnest(entries) as e,
                unnest(list_where(generate_series(1, len(first_rows)), first_rows)) as first_row
            from documents
        ),
        entry_values as (
            select page, family, document_updated_at, code, first_row, e is null as e_missing,
                coalesce(e.listeValeurParCaract, []) as items,
                {", ".join(entry_columns)}
            from entries
        ),
        entry_rows as (
            select * exclude (period_parts, items, updated_at, document_updated_at),
                pstart(period_type, period_parts) as period_start,
                coalesce(nullif(updated_at, ''), document_updated_at) as updated_at,
                unnest(list_prepend(null, items)) as c,
                unnest(generate_series(0, len(items))) as k
            from entry_values
        )
        select {", ".join(f"{columns[c]} as {c}" for c in INDICATOR_COLUMNS)},
            page._source_file, page._source_url, page._fetched_at, page._sha256,
            first_row + k as _row_number
        from (
            select *, case when k = 0 then entry_value else {item_value} end as value
            from entry_rows
        )
    ) to {_sql_text(target)} (format parquet)
    """


def _check_indicators(document: dict, file_name: str) -> None:
    code = _text(document.get("codeIndicateur"))
    if not code:
        raise ParseError(
            f"{SLUG}: {file_name} has no codeIndicateur (expected an IndicateurRetour with "
            f"codeIndicateur and listeValeursParPeriode; keys found: {sorted(document)[:12]})"
        )
    entries = document.get("listeValeursParPeriode")
    if not isinstance(entries, list):
        raise ParseError(f"{SLUG}: {file_name}: listeValeursParPeriode is not a list")
    for position, entry in enumerate(entries):
        where = f"{SLUG}: {file_name}: listeValeursParPeriode[{position}]"
        if not isinstance(entry, dict):
            raise ParseError(f"{where} is not an object")
        items = entry.get("listeValeurParCaract")
        if items is None:
            continue
        if not isinstance(items, list):
            raise ParseError(f"{where}.listeValeurParCaract is not a list")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ParseError(f"{where}.listeValeurParCaract[{index}] is not an object")


def _rome_fap_rows(document: dict, file_name: str) -> list[dict]:
    pairs = document.get("romeFapList")
    if not isinstance(pairs, list):
        raise ParseError(f"{SLUG}: {file_name}: romeFapList is not a list")
    synthetic = is_synthetic_file(file_name)
    return [
        {
            "rome_code": _text(p.get("codeRome")),
            "fap_code": _text(p.get("codeFap")),
            "updated_at": _text(p.get("datMaj")),
            "synthetic": synthetic,
        }
        for p in pairs
    ]


def _rome_fap_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(CONTRACTS["rome_fap"].columns))
    for column in frame.columns:
        frame[column] = frame[column].astype(bool if column == "synthetic" else "string")
    return frame


def _read_in_python(landed: LandedFile) -> tuple[str, pd.DataFrame | None]:
    """(table, rome_fap frame) of one answer, read and checked in Python.

    For the answers DuckDB made no indicator row of (the ROME -> FAP referential, empty
    or odd answers), and to put Python's words on a fault DuckDB stopped at.
    """
    document = read_json(landed, slug=SLUG)
    if isinstance(document, dict) and "listeValeursParPeriode" in document:
        _check_indicators(document, landed.file_name)
        return "indicators", None
    if isinstance(document, dict) and "romeFapList" in document:
        frame = _rome_fap_frame(_rome_fap_rows(document, landed.file_name))
        return "rome_fap", add_provenance(frame, landed)
    keys = sorted(document)[:12] if isinstance(document, dict) else type(document).__name__
    raise ParseError(
        f"{SLUG}: {landed.file_name} is neither an IndicateurRetour "
        f"(listeValeursParPeriode) nor a ListeRomeFap (romeFapList); found {keys}"
    )


def _unreadable(exc: Exception, files: tuple[LandedFile, ...]) -> ParseError:
    """The ParseError for an answer DuckDB could not read, worded by Python if it can."""
    message = str(exc).splitlines()[0]
    named = [f for f in files if str(f.path) in message]
    if not named:
        for landed in files:  # DuckDB did not say which (a broken gzip stream): Python does
            read_json(landed, slug=SLUG)
        return ParseError(f"{SLUG}: the landed answers cannot be read ({message})")
    landed = max(named, key=lambda f: len(str(f.path)))
    _read_in_python(landed)  # raises with the file and the faulty field named
    return ParseError(f"{SLUG}: {landed.file_name} is not a readable API answer ({message})")


def _read_plan(files: tuple[LandedFile, ...]) -> tuple[list[tuple[bool, list[str]]], int]:
    """Runs of consecutive answers alike (gzip or not), and the largest answer in bytes.

    Python takes a file for gzip by its first bytes, DuckDB by its name, so DuckDB is
    told; one read per run keeps `file_index` counting the files in order.
    """
    runs: list[tuple[bool, list[str]]] = []
    largest = MIN_ANSWER_BYTES
    for landed in files:
        with landed.path.open("rb") as fh:
            gz = fh.read(2) == GZIP_MAGIC
            size = fh.seek(0, os.SEEK_END)
            if gz and size >= 6:
                fh.seek(-4, os.SEEK_END)
                # deflate expands at most ~1032 times: a larger claim is a broken trailer
                size = min(int.from_bytes(fh.read(4), "little"), 1032 * size)
        largest = max(largest, min(size + 1, MAX_ANSWER_BYTES))
        if not runs or runs[-1][0] != gz:
            runs.append((gz, []))
        runs[-1][1].append(str(landed.path))
    return runs, largest


def _reads_sql(runs: list[tuple[bool, list[str]]], largest: int, text_type: str) -> str:
    reads, offset = [], 0
    for gz, paths in runs:
        reads.append(
            f"""
            select cast(file_index as bigint) + {offset} as file_index, codeIndicateur,
                codeFamille, datMaj, listeValeursParPeriode
            from read_json([{", ".join(_sql_text(p) for p in paths)}],
                columns = {_document_columns(text_type)}, format = 'unstructured',
                records = true, compression = '{"gzip" if gz else "none"}',
                maximum_object_size = {largest})
            """
        )
        offset += len(paths)
    return " union all ".join(reads)


def _stage_indicators(files: tuple[LandedFile, ...], target: Path, spill: Path) -> list[tuple]:
    """Write the indicator rows of `files` to `target`; (file name, sha256, rows, last row
    number) for each answer that gave rows.

    Text fields are read as VARCHAR and kept as DuckDB reads them, which is `_text`'s
    answer for any string and integer. When a text field holds what may print otherwise
    in Python (a float, an object: `vtext`), the answers are read again with every field
    as JSON, each value turned into text by `jtext` (several times slower).
    """
    import duckdb

    runs, largest = _read_plan(files)
    pages = pd.DataFrame(
        {
            "path": [str(f.path) for f in files],
            "file_order": range(len(files)),
            "_source_file": [f.file_name for f in files],
            "_source_url": [f.upstream_url or f.url for f in files],
            "_fetched_at": [
                pd.Timestamp(f.fetched_at).tz_convert("UTC").tz_localize(None) for f in files
            ],
            "_sha256": [f.sha256 for f in files],
            "synthetic": [is_synthetic_file(f.file_name) for f in files],
        }
    )
    con = duckdb.connect()
    try:
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
        con.execute(f"set temp_directory = {_sql_text(spill)}")
        con.execute("set preserve_insertion_order = true")  # the row order is the read order
        con.create_function("json_text", _json_text, ["VARCHAR"], "VARCHAR")
        for macro in _MACROS:
            con.execute(macro)
        con.register("pages_df", pages)
        con.execute(
            "set variable pages = (select list(p order by file_order) from (select * replace "
            "(_fetched_at::timestamp as _fetched_at) from pages_df) p)"
        )
        try:
            try:
                con.execute(_indicators_sql(_reads_sql(runs, largest, "VARCHAR"), target, "vtext"))
            except duckdb.InvalidInputException as exc:
                if NOT_PLAIN not in str(exc):
                    raise
                logger.debug("%s: text fields that are not plain text, read as JSON", SLUG)
                target.unlink(missing_ok=True)
                con.execute(_indicators_sql(_reads_sql(runs, largest, "JSON"), target, "jtext"))
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:
            raise _unreadable(exc, files) from exc
        return con.execute(
            f"""
            select _source_file, _sha256, count(*), max(_row_number)
            from read_parquet({_sql_text(target)}) group by all
            """
        ).fetchall()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def parse(
    files: Iterable[LandedFile], *, stage_dir: Path | None = None
) -> dict[str, ParsedTable | StagedTable]:
    """Every landed response into the long `indicators` table and `rome_fap`.

    DuckDB writes `indicators` to a staged Parquet file under `stage_dir` (a temporary
    directory by default) that the factory validates with SQL (see
    `validation.StagedTable`). The answers it made no row of are few and small: Python
    reads them, which sorts the ROME -> FAP referential from empty answers and names the
    fault in a broken one.
    """
    files = tuple(files)
    stage_dir = Path(stage_dir) if stage_dir else Path(tempfile.mkdtemp(prefix=f"{SLUG}-"))
    stage_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    target = stage_dir / f"indicators.{token}.parquet"
    try:
        per_file = _stage_indicators(files, target, stage_dir / f".duckdb-{token}") if files else []
        listed = Counter((f.file_name, f.sha256) for f in files)
        with_rows = set()
        for name, sha256, rows, last in per_file:
            # Row numbers restart at 1 in each document: more rows than the last number
            # (times the listings of the file) means a file of several documents.
            if rows != last * listed[name, sha256]:
                landed = next(f for f in files if (f.file_name, f.sha256) == (name, sha256))
                read_json(landed, slug=SLUG)
                raise ParseError(f"{SLUG}: {name} holds more than one JSON document")
            with_rows.add((name, sha256))
        used: dict[str, list[LandedFile]] = {t: [] for t in TABLES}
        fap_frames: list[pd.DataFrame] = []
        for landed in files:
            if (landed.file_name, landed.sha256) in with_rows:
                used["indicators"].append(landed)
                continue
            table, frame = _read_in_python(landed)
            used[table].append(landed)
            if frame is not None:
                fap_frames.append(frame)
        for table in TABLES:
            if not used[table]:
                raise ParseError(
                    f"{SLUG}: no landed file holds the {table} table "
                    f"({'an IndicateurRetour' if table == 'indicators' else 'a ListeRomeFap'})"
                )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    indicator_rows = sum(rows for _name, _sha256, rows, _last in per_file)
    fap = pd.concat(fap_frames, ignore_index=True)
    logger.info(
        "%s: parsed indicators (%d rows), rome_fap (%d rows)", SLUG, indicator_rows, len(fap)
    )
    return {
        "indicators": StagedTable(
            "indicators", target, tuple(used["indicators"]), rows=indicator_rows
        ),
        "rome_fap": ParsedTable("rome_fap", fap, tuple(used["rome_fap"])),
    }


# ----------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class LiveScope:
    """What a live fetch asks for. The default is the diagnostic's need: every ROME code x
    France, the régions and the départements, latest period only. That is about
    1,600 x 120 x 5 requests: run it on a schedule with patience (the API rate-limits)."""

    rome_codes: tuple[str, ...]
    territories: tuple[tuple[str, str], ...]  # (type, code)
    indicators: tuple[str, ...] = tuple(INDICATORS)
    latest_only: bool = True


def default_scope(settings: Settings, departements: Iterable[str], regions: Iterable[str]):
    rome = _landed_rome_codes(settings)
    territories = (("NAT", "FR"),)
    territories += tuple(("REG", r) for r in regions) + tuple(("DEP", d) for d in departements)
    return LiveScope(rome_codes=rome, territories=territories)


def _landed_rome_codes(settings: Settings) -> tuple[str, ...]:
    """ROME codes of the last landed ROME referential (the francetravail_rome source)."""
    import csv
    import io

    from assets.ingest.members import iter_members

    try:
        files = current_files(settings.landing_dir, "francetravail_rome")
    except NotFetchedError:
        raise FranceTravailApiError(
            f"{SLUG}: a live fetch asks the API for every ROME code; fetch the "
            "francetravail_rome source first"
        ) from None
    for _name, opener, _landed in iter_members(files, "unix_referentiel_code_rome_v*.csv"):
        with opener() as fh:
            text = fh.read().decode("utf-8-sig")
        return tuple(sorted(r["code_rome"] for r in csv.DictReader(io.StringIO(text))))
    raise FranceTravailApiError(f"{SLUG}: no ROME referential among the landed ROME files")


def _request_name(indicator: str, territory: tuple[str, str], rome: str) -> str:
    endpoint = INDICATORS[indicator][0]
    return f"{endpoint}__{territory[0]}-{territory[1]}__ROME-{rome}.json"


def fetch(
    spec: SourceSpec,
    settings: Settings,
    log: logging.Logger | None = None,
    *,
    client: FranceTravailClient | None = None,
    scope: LiveScope | None = None,
    base_url: str = API_BASE,
) -> FetchReport:
    """Mirror mode: land the mirror's files. Live mode: one landed file per API answer."""
    log = log or logger
    if settings.mode != "live":
        return fetch_source(spec, settings, log=log)
    own = client is None
    if client is None:
        client = FranceTravailClient(
            Credentials.from_env(SLUG),
            SCOPES_MARCHE_TRAVAIL,
            slug=SLUG,
            read_timeout=settings.http_timeout_s,
        )
    if scope is None:
        from assets.ingest.referentials import load_referentials

        ref = load_referentials(geo_dir=settings.mirror_dir / "etalab_decoupage_administratif")
        scope = default_scope(settings, ref.departements, ref.regions)
    fetched_at = datetime.now(UTC)
    files: list[LandedFile] = []
    try:
        response = client.get(f"{base_url}/v1/referentiel/{ROME_FAP_ENDPOINT}")
        files.append(
            land_response(
                settings.landing_dir,
                SLUG,
                f"{ROME_FAP_ENDPOINT}.json",
                response,
                fetched_at=fetched_at,
            )
        )
        for indicator in scope.indicators:
            endpoint, method, period_type, nomenclature = INDICATORS[indicator]
            for territory in scope.territories:
                for rome in scope.rome_codes:
                    if method == "GET":
                        response = client.get(
                            f"{base_url}/v1/indicateur/{endpoint}/{territory[0]}/{territory[1]}",
                            params={"codeRome": rome},
                        )
                    else:
                        body: dict = {
                            "codeTypeTerritoire": territory[0],
                            "codeTerritoire": territory[1],
                            "codeTypeActivite": "ROME",
                            "codeActivite": rome,
                            "codeTypePeriode": period_type,
                            "codeTypeNomenclature": nomenclature,
                        }
                        if scope.latest_only:
                            body["dernierePeriode"] = True
                        response = client.post(f"{base_url}/v1/indicateur/{endpoint}", body)
                    if response.status == 204 or not response.body:
                        continue  # nothing published for this activity x territory
                    files.append(
                        land_response(
                            settings.landing_dir,
                            SLUG,
                            _request_name(indicator, territory, rome),
                            response,
                            fetched_at=fetched_at,
                        )
                    )
            log.info("%s: %s fetched (%d files so far)", SLUG, indicator, len(files))
    finally:
        if own:
            client.close()
    write_current_pointer(settings.landing_dir, SLUG, "live", files)
    return FetchReport(slug=SLUG, mode="live", files=tuple(files))


__all__ = [
    "CONTRACTS",
    "INDICATORS",
    "LiveScope",
    "SLUG",
    "SPEC",
    "TABLES",
    "fetch",
    "parse",
    "period_start",
]
