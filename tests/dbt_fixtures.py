"""Raw parquet for the dbt tests, written from the embedded mirror.

The source layer owns the real parsers; this module only stands in for them so the dbt
project can be built and tested on real referential data. It also records, in
`RAW_COLUMNS`, the exact raw columns the dbt sources read: a parser that changes one of
these names breaks the dbt build, and this table is the place to look first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR_DIR = PROJECT_ROOT / "warehouse" / "mirror"

ROME_SLUG = "francetravail_rome"
GEO_SLUG = "etalab_decoupage_administratif"
ROME_VERSION = "4.60"
FIXTURE_FETCHED_AT = "2026-01-01 00:00:00"

# Provenance columns every raw table carries, after its source columns.
PROVENANCE_COLUMNS: dict[str, str] = {
    "_source_file": "VARCHAR",
    "_source_url": "VARCHAR",
    "_fetched_at": "TIMESTAMP",
    "_sha256": "VARCHAR",
    "_row_number": "BIGINT",
}

# Source columns (all VARCHAR) per (slug, table), in raw order. ROME tables also carry
# `rome_version` (VARCHAR) just before the provenance columns.
RAW_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    (ROME_SLUG, "referentiel_code_rome"): (
        "code_rome",
        "code_fiche_metier",
        "code_ogr",
        "libelle_rome",
        "transition_eco",
        "transition_num",
        "transition_demo",
        "emploi_reglemente",
        "emploi_cadre",
        "code_rome_parent",
    ),
    (ROME_SLUG, "referentiel_appellation"): (
        "code_ogr",
        "libelle_appellation_long",
        "libelle_appellation_court",
        "code_rome",
        "transition_eco",
        "transition_num",
        "transition_demo",
        "emploi_reglemente",
        "emploi_cadre",
        "classification",
        "origine",
        "code_rome_parent",
        "peu_usite",
    ),
    (ROME_SLUG, "cr_gd_dp"): (
        "code_rome",
        "libelle_rome",
        "code_grand_domaine",
        "libelle_grand_domaine",
        "code_domaine_professionnel",
        "libelle_domaine_professionnel",
    ),
    (ROME_SLUG, "grand_domaine"): ("code_grand_domaine", "libelle_grand_domaine"),
    (ROME_SLUG, "domaine_professionnel"): (
        "code_domaine_professionnel",
        "libelle_domaine_professionnel",
    ),
    (ROME_SLUG, "rubrique_mobilite"): ("code_rome", "code_rome_cible", "numero_ordre"),
    (ROME_SLUG, "texte"): (
        "code_rome",
        "code_compo_bloc",
        "libelle_type_texte",
        "position_phrase",
        "libelle_texte",
    ),
    (ROME_SLUG, "arborescence_secteur_naf"): (
        "code_secteur_naf",
        "libelle_secteur_naf",
        "code_ogr_rome",
        "code_rome",
        "libelle_rome",
    ),
    (ROME_SLUG, "type_referentiel"): ("code_type_referentiel", "libelle_type_referentiel"),
    (GEO_SLUG, "departements"): ("code", "region", "chef_lieu", "nom", "type_liaison", "zone"),
    (GEO_SLUG, "regions"): ("code", "chef_lieu", "nom", "type_liaison", "zone"),
}

# The publisher's header typo in cr_gd_dp (only there), already fixed in raw.
_ROME_HEADER_FIXES = {
    ("cr_gd_dp", "code_domaine_professionnel"): "code_domaine_professionel",
    ("cr_gd_dp", "libelle_domaine_professionnel"): "libelle_domaine_professionel",
}
# One mirror file is Latin-1 despite the `_utf8` in its name.
_LATIN1_TABLES = {"arborescence_secteur_naf"}
# camelCase keys of the Etalab JSON for the snake_case raw columns.
_GEO_JSON_KEYS = {"chef_lieu": "chefLieu", "type_liaison": "typeLiaison"}


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _raw_path(raw_dir: Path, slug: str, table: str) -> Path:
    return raw_dir / slug / f"{table}.parquet"


def _provenance_sql(file_name: str, url: str, sha256: str) -> str:
    return (
        f"{_sql_text(file_name)} as _source_file, {_sql_text(url)} as _source_url, "
        f"timestamp '{FIXTURE_FETCHED_AT}' as _fetched_at, {_sql_text(sha256)} as _sha256, "
        "row_number() over () as _row_number"
    )


def _rome_select(mirror_dir: Path, table: str, columns: tuple[str, ...]) -> str:
    path = mirror_dir / ROME_SLUG / f"unix_{table}_v460_utf8.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{ROME_SLUG}: mirror file {path} is missing")
    encoding = "latin-1" if table in _LATIN1_TABLES else "utf-8"
    exprs = []
    for column in columns:
        published = '"' + _ROME_HEADER_FIXES.get((table, column), column) + '"'
        expr = published
        if table == "texte" and column == "libelle_texte":
            # The April 2026 build doubles apostrophes inside values; raw un-doubles them.
            expr = f"replace({published}, '''''', '''')"
        exprs.append(f"{expr} as {column}")
    exprs.append(f"'{ROME_VERSION}' as rome_version")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    url = f"fixture://mirror/{ROME_SLUG}/{path.name}"
    reader = (
        f"read_csv({_sql_text(str(path))}, header = true, all_varchar = true, "
        f"encoding = '{encoding}')"
    )
    return f"select {', '.join(exprs)}, {_provenance_sql(path.name, url, digest)} from {reader}"


def _geo_select(mirror_dir: Path, table: str, columns: tuple[str, ...]) -> str:
    path = mirror_dir / GEO_SLUG / f"{table}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{GEO_SLUG}: mirror file {path} is missing")
    keys = [_GEO_JSON_KEYS.get(column, column) for column in columns]
    schema = ", ".join(f"{key}: 'VARCHAR'" for key in keys)
    exprs = [f'"{key}" as {column}' for key, column in zip(keys, columns, strict=True)]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    url = f"fixture://mirror/{GEO_SLUG}/{path.name}"
    reader = f"read_json({_sql_text(str(path))}, columns = {{{schema}}})"
    return f"select {', '.join(exprs)}, {_provenance_sql(path.name, url, digest)} from {reader}"


def _empty_select(slug: str, columns: tuple[str, ...]) -> str:
    exprs = [f"cast(null as varchar) as {column}" for column in columns]
    if slug == ROME_SLUG:
        exprs.append("cast(null as varchar) as rome_version")
    exprs += [f"cast(null as {kind}) as {name}" for name, kind in PROVENANCE_COLUMNS.items()]
    return f"select {', '.join(exprs)} where false"


def write_raw_fixtures(
    raw_dir: Path, *, from_mirror: bool = True, mirror_dir: Path | None = None
) -> dict[tuple[str, str], Path]:
    """Write `<raw_dir>/<slug>/<table>.parquet` for every table the dbt sources read.

    With `from_mirror=False` the tables are written empty but with the exact raw schema,
    which is enough for `dbt run` / `dbt compile` and documents the contract; the data tests
    (row counts) then fail, as they should.
    """
    mirror_dir = mirror_dir or DEFAULT_MIRROR_DIR
    written: dict[tuple[str, str], Path] = {}
    con = duckdb.connect()
    try:
        for (slug, table), columns in RAW_COLUMNS.items():
            if not from_mirror:
                query = _empty_select(slug, columns)
            elif slug == ROME_SLUG:
                query = _rome_select(mirror_dir, table, columns)
            else:
                query = _geo_select(mirror_dir, table, columns)
            target = _raw_path(raw_dir, slug, table)
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"copy ({query}) to {_sql_text(str(target))} (format parquet)")
            written[(slug, table)] = target
    finally:
        con.close()
    return written
