"""The numbers the report shows, read from one vintage's Parquet files (never the warehouse).

Every query goes through an in-memory DuckDB over the vintage's files, so any vintage,
published or held, old or new, can be reported. A column an older vintage lacks reads as
NULL and its chart is simply emptier; a missing table is an error.

Per-département indicators for the map:
* `unemployment_pct`: the INSEE rate of `departements` (real);
* `difficult_pct`: the BMO share of difficult hiring projects of `hiring_headlines`, with the
  bounds statistical secrecy leaves (real);
* `dares_tension`: the median over the département's job groups of the DARES tension index
  of `local_diagnosis` (real; Île-de-France carries its région's values);
* `offers_per_10`: offers per 10 job seekers over the job groups with their own local cell
  (`market__level = 'departement'`), 10 × sum of offers / sum of mean job seekers, from the
  France Travail "Marché du travail" API (synthetic in the embedded mirror).
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from assets.foundation.settings import DBT_PROJECT_DIR
from assets.report.errors import ReportError

PUBLISHED_HEADLINES = DBT_PROJECT_DIR / "seeds" / "bmo_published_headlines.csv"
TOP_JOBS = 10
REQUIRED_TABLES = ("departements", "hiring_headlines", "local_diagnosis")


class FiguresError(ReportError):
    """A table the report needs is missing from the vintage."""


def open_vintage(vintage_dir: Path, manifest: dict) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per exported table, over its Parquet file."""
    con = duckdb.connect()
    con.execute("set threads = 1")
    for name, entry in manifest["tables"].items():
        path = str(Path(vintage_dir) / entry["files"]["parquet"]["path"]).replace("'", "''")
        con.execute(f"create view \"{name}\" as select * from read_parquet('{path}')")
    missing = [t for t in REQUIRED_TABLES if t not in manifest["tables"]]
    if missing:
        con.close()
        raise FiguresError(f"{vintage_dir}: the vintage has no table {', '.join(missing)}")
    return con


class _Columns:
    """`cols.x` is the column `x` of a view, or NULL when this vintage does not have it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        self._names = {row[0] for row in con.execute(f'describe "{view}"').fetchall()}

    def __getattr__(self, name: str) -> str:
        return f'"{name}"' if name in self._names else "null"


def _records(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _round(value, digits: int = 2):
    return None if value is None else round(float(value), digits)


def departement_indicators(con: duckdb.DuckDBPyConnection, codes: list[str]) -> list[dict]:
    """One record per département code of the map (all 101, values NULL where unknown)."""
    d = _Columns(con, "departements")
    h = _Columns(con, "hiring_headlines")
    ld = _Columns(con, "local_diagnosis")
    con.execute("create or replace temp table map_codes (code varchar)")
    con.executemany("insert into map_codes values (?)", [[c] for c in codes])
    rows = _records(
        con,
        f"""
        with bmo as (
            select {h.area_code} as code, {h.difficult_pct} as difficult_pct,
                   {h.difficult_pct_low} as difficult_low, {h.difficult_pct_high} as difficult_high,
                   {h.recruitment_projects} as projects, {h.survey_year} as survey_year,
                   row_number() over (partition by {h.area_code} order by {h.survey_year} desc)
                       as recency
            from hiring_headlines where {h.scope} = 'departement'
        ),
        local as (
            select {ld.departement_code} as code,
                   median({ld.tension__dares_index}) as dares_tension,
                   max({ld.tension__level}) as tension_level,
                   10 * sum({ld.market__offers_count})
                       filter (where {ld.market__level} = 'departement')
                     / nullif(sum({ld.market__job_seekers_avg})
                       filter (where {ld.market__level} = 'departement'), 0) as offers_per_10,
                   count(*) filter (where {ld.market__level} = 'departement') as offers_cells
            from local_diagnosis group by 1
        )
        select m.code, dep.{d.name} as name, dep.{d.region_name} as region_name,
               dep.{d.unemployment__rate_pct} as unemployment_pct,
               dep.{d.unemployment__quarter} as unemployment_quarter,
               bmo.difficult_pct, bmo.difficult_low, bmo.difficult_high, bmo.projects,
               bmo.survey_year, local.dares_tension, local.tension_level,
               local.offers_per_10, local.offers_cells
        from map_codes m
        left join departements dep on dep.{d.departement_code} = m.code
        left join bmo on bmo.code = m.code and bmo.recency = 1
        left join local on local.code = m.code
        order by m.code
        """,
    )
    for row in rows:
        for key in ("unemployment_pct", "difficult_pct", "difficult_low", "difficult_high"):
            row[key] = _round(row[key], 1)
        row["dares_tension"] = _round(row["dares_tension"], 2)
        row["offers_per_10"] = _round(row["offers_per_10"], 1)
        row["projects"] = _round(row["projects"], 0)
    return rows


def top_jobs(con: duckdb.DuckDBPyConnection, limit: int = TOP_JOBS) -> list[dict]:
    """Per département, its job groups with the most BMO recruitment projects, with their
    shrunk difficult-hiring share and its 80 % interval."""
    ld = _Columns(con, "local_diagnosis")
    rows = _records(
        con,
        f"""
        select * from (
            select {ld.departement_code} as code, {ld.job_group_code} as job_group_code,
                   {ld.job_group_label} as label,
                   {ld.hiring__recruitment_projects} as projects,
                   {ld.hiring__difficult_pct} as difficult_raw,
                   {ld.hiring__difficult_pct_shrunk} as difficult_shrunk,
                   {ld.hiring__difficult_interval_80__low_pct} as difficult_low,
                   {ld.hiring__difficult_interval_80__high_pct} as difficult_high,
                   {ld.hiring__difficult_confidence} as confidence,
                   row_number() over (
                       partition by {ld.departement_code}
                       order by {ld.hiring__recruitment_projects} desc nulls last,
                                {ld.job_group_code}
                   ) as rank
            from local_diagnosis
            where {ld.hiring__recruitment_projects} > 0
        ) where rank <= ? order by code, rank
        """,
        [limit],
    )
    for row in rows:
        row["projects"] = _round(row["projects"], 0)
        for key in ("difficult_raw", "difficult_shrunk", "difficult_low", "difficult_high"):
            row[key] = _round(row[key], 1)
        row["job"] = f"{row['job_group_code']} {row['label'] or ''}".strip()
    return rows


def source_periods(con: duckdb.DuckDBPyConnection) -> dict:
    """The periods the vintage's values cover (the `sources__*` columns of local_diagnosis)."""
    ld = _Columns(con, "local_diagnosis")
    names = {
        "rome_version": "ROME version",
        "bmo_survey_year": "BMO survey year",
        "market_last_quarter_start_date": "Market API, last quarter",
        "dares_tension_year": "DARES tension year",
        "offers_last_month_start_date": "Offers snapshots, last month",
        "unemployment_quarter": "Unemployment quarter",
    }
    selects = ", ".join(f"max({getattr(ld, 'sources__' + n)}) as {n}" for n in names)
    row = _records(con, f"select {selects} from local_diagnosis")[0]
    return {label: (str(row[n]) if row[n] is not None else None) for n, label in names.items()}


def published_headlines(path: Path = PUBLISHED_HEADLINES) -> list[dict]:
    """France Travail's own BMO headlines (the dbt seed the reconciliation test uses)."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return [
        {
            "survey_year": int(r["survey_year"]),
            "scope": r["scope"],
            "area_code": r["area_code"],
            "measure": r["measure"],
            "published_value": float(r["published_value"]),
            "publisher": r.get("publisher", ""),
            "publication": r.get("publication", ""),
            "published_on": r.get("published_on", ""),
        }
        for r in rows
        if r.get("published_value")
    ]


MEASURES = {
    "recruitment_projects": "Recruitment projects",
    "difficult_pct": "Difficult hiring (%)",
    "seasonal_pct": "Seasonal projects (%)",
}


def headline_comparison(con: duckdb.DuckDBPyConnection, published: list[dict]) -> list[dict]:
    """Each published headline next to the vintage's estimate and its secrecy bounds."""
    h = _Columns(con, "hiring_headlines")
    ours = {}
    for row in _records(
        con,
        f"""
        select {h.survey_year} as survey_year, {h.scope} as scope, {h.area_code} as area_code,
               {h.recruitment_projects} as recruitment_projects,
               {h.recruitment_projects_low} as recruitment_projects_low,
               {h.recruitment_projects_high} as recruitment_projects_high,
               {h.difficult_pct} as difficult_pct, {h.difficult_pct_low} as difficult_pct_low,
               {h.difficult_pct_high} as difficult_pct_high,
               {h.seasonal_pct} as seasonal_pct, {h.seasonal_pct_low} as seasonal_pct_low,
               {h.seasonal_pct_high} as seasonal_pct_high
        from hiring_headlines where {h.scope} in ('france', 'region')
        """,
    ):
        ours[(row["survey_year"], row["scope"], row["area_code"])] = row
    regions = {}
    if "regions" in {r[0] for r in con.execute("show tables").fetchall()}:
        r = _Columns(con, "regions")
        regions = dict(con.execute(f"select {r.region_code}, {r.name} from regions").fetchall())
    comparison = []
    for pub in published:
        row = ours.get((pub["survey_year"], pub["scope"], pub["area_code"]))
        if row is None or pub["measure"] not in MEASURES:
            continue
        measure = pub["measure"]
        area = "France" if pub["scope"] == "france" else regions.get(pub["area_code"])
        comparison.append(
            {
                "survey_year": pub["survey_year"],
                "area": area or f"région {pub['area_code']}",
                "measure": MEASURES[measure],
                "estimate": _round(row[measure], 1),
                "low": _round(row[f"{measure}_low"], 1),
                "high": _round(row[f"{measure}_high"], 1),
                "published": pub["published_value"],
                "publisher": pub["publisher"],
                "publication": pub["publication"],
                "published_on": pub["published_on"],
            }
        )
    return comparison
