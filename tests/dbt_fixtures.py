"""Raw parquet for the dbt tests, written from the embedded mirror.

The source layer owns the real parsers; this module only stands in for them so the dbt
project can be built and tested on real referential data. It also records, in
`RAW_COLUMNS`, the exact raw columns the dbt sources read: a parser that changes one of
these names breaks the dbt build, and this table is the place to look first.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR_DIR = PROJECT_ROOT / "warehouse" / "mirror"

ROME_SLUG = "francetravail_rome"
GEO_SLUG = "etalab_decoupage_administratif"
ROME_VERSION = "4.60"

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

    With `from_mirror=True` (default) every registered source is fetched from the mirror
    and parsed by its real parser, exactly as a run does (without the Dagster wrapping);
    the result is cached per process, since several test modules build dbt. With
    `from_mirror=False` the referential tables are written empty but with the exact raw
    schema, which is enough for `dbt run` / `dbt compile` and documents the contract.
    """
    if from_mirror:
        return _copy_tree(_parsed_mirror(mirror_dir or DEFAULT_MIRROR_DIR), raw_dir)
    written: dict[tuple[str, str], Path] = {}
    con = duckdb.connect()
    try:
        for (slug, table), columns in RAW_COLUMNS.items():
            target = _raw_path(raw_dir, slug, table)
            target.parent.mkdir(parents=True, exist_ok=True)
            query = _empty_select(slug, columns)
            con.execute(f"copy ({query}) to {_sql_text(str(target))} (format parquet)")
            written[(slug, table)] = target
    finally:
        con.close()
    return written


_PARSED: dict[Path, Path] = {}


def _parsed_mirror(mirror_dir: Path) -> Path:
    """Raw tables of every registered source, parsed once per process from `mirror_dir`."""
    if mirror_dir in _PARSED:
        return _PARSED[mirror_dir]
    import dataclasses
    import tempfile

    from assets.foundation.settings import get_settings
    from assets.ingest.fetch import fetch_source
    from assets.ingest.raw import raw_path, write_parquet_atomically
    from pipelines.sources import source_modules

    work = Path(tempfile.mkdtemp(prefix="tremplin-raw-fixtures-"))
    settings = dataclasses.replace(
        get_settings(), warehouse_dir=work, mirror_dir=mirror_dir, mode="mirror"
    )
    for module in source_modules():
        fetch = getattr(module, "fetch", fetch_source)
        report = fetch(module.SPEC, settings)
        for table, parsed in module.parse(report.files).items():
            target = raw_path(settings.raw_dir, module.SPEC.slug, table, parsed.partition)
            write_parquet_atomically(parsed.frame, target)
    _PARSED[mirror_dir] = settings.raw_dir
    return settings.raw_dir


def _copy_tree(src: Path, raw_dir: Path) -> dict[tuple[str, str], Path]:
    import shutil

    shutil.copytree(src, raw_dir, dirs_exist_ok=True)
    written = {}
    for path in sorted(raw_dir.rglob("*.parquet")):
        slug, table = path.relative_to(raw_dir).parts[:2]
        written[(slug, table.removesuffix(".parquet"))] = path
    return written


def rewrite_parquet(path: Path, select_sql: str) -> None:
    """Replace a raw file by `select_sql`, where `raw` names the current content."""
    staged = path.with_suffix(".tmp.parquet")
    con = duckdb.connect()
    try:
        con.execute(f"create table raw as select * from read_parquet('{path}')")
        con.execute(f"copy ({select_sql}) to '{staged}' (format parquet)")
    finally:
        con.close()
    staged.replace(path)


def repeat_api_rows(raw_dir: Path, where: str) -> None:
    """Publish again, a day later under another file name, the "Marché du travail" rows of
    the first file that match `where`: exact repeats the staging table must delete, keeping
    the latest fetch (their `_source_file` starts with `repeat-`)."""
    rewrite_parquet(
        raw_dir / "francetravail_marche_travail" / "indicators.parquet",
        "select * from raw union all "
        "select * replace ('repeat-' || _source_file as _source_file, "
        "_fetched_at + interval 1 day as _fetched_at, _row_number + 1000 as _row_number) "
        f"from raw where _source_file = (select min(_source_file) from raw) and {where}",
    )
