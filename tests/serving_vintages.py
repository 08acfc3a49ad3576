"""Small export vintages shaped like the real diagnostic tables (the real key and filter
columns, nested blocks, lists of structs, text that COPY must escape), for the serving
tests: the API, the PostgreSQL publication and the bench's smoke test.

`make_vintage(exports_dir, variant)` builds a DuckDB warehouse and publishes it with the
real export code; each variant changes the values (not the keys), so two variants are two
vintages whose records tell which one a reader saw (`market.offersPer10JobSeekers` of
every local diagnosis record starts with the variant).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from assets.export.publish import publish_export
from assets.export.tables import EXPORT_TABLES

DEPARTEMENTS = [("01", "Ain", "84"), ("2A", "Corse-du-Sud", "94"), ("69", "Rhône", "84")]
DEPARTEMENTS += [("971", "Guadeloupe", "01")]
JOB_GROUPS = [
    ("M1805", 'Développeur / "Développeuse" informatique', "M"),
    ("A1203", "Jardinier\tpaysagiste \\ espaces verts", "A"),
    ("K2204", "Agent d'entretien\nde locaux", "K"),
]
NOW = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)


def _warehouse(path: Path, variant: int) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute(
            """
            create table diag_local_diagnosis (
                diagnosis_key varchar not null, departement_code varchar not null,
                job_group_code varchar not null, job_group_label varchar,
                departement_name varchar, region_code varchar,
                market__level varchar, market__offers_per_10_job_seekers double,
                market__interval_80__low double, market__interval_80__high double,
                market__offers_count bigint, market__last_quarter_start_date date,
                hiring__difficult_pct decimal(5, 1), trend__active_months integer[],
                less_stressful__job_groups struct(job_group_code varchar, "label" varchar,
                    offers_per_10_job_seekers_shrunk double)[],
                synthetic boolean not null)
            """
        )
        rows = []
        for d, (dep, dep_name, region) in enumerate(DEPARTEMENTS):
            for j, (job, label, _) in enumerate(JOB_GROUPS):
                unknown = (d + j) % 4 == 3
                rows.append(
                    (
                        f"{dep}:{job}",
                        dep,
                        job,
                        label,
                        dep_name,
                        region,
                        None if unknown else "departement",
                        None if unknown else variant + (d * 3 + j) / 7,
                        None if unknown else 0.1 * (d + 1),
                        None if unknown else 1e-16 + j,
                        None if unknown else 1000 * d + j,
                        dt.date(2025, 1 + 3 * (j % 4), 1),
                        None if unknown else round(12.5 + d + j, 1),
                        [] if unknown else [1 + j, 5, 9],
                        None
                        if unknown
                        else [
                            {
                                "job_group_code": JOB_GROUPS[(j + 1) % 3][0],
                                "label": JOB_GROUPS[(j + 1) % 3][1],
                                "offers_per_10_job_seekers_shrunk": 2.5 + variant,
                            }
                        ],
                        j == 0,
                    )
                )
        con.executemany(
            "insert into diag_local_diagnosis values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            rows,
        )
        con.execute(
            f"""
            create table diag_job_group_info as
            select job_group_code, any_value(job_group_label) as label,
                   list({{'departement_code': departement_code,
                          'rank': 1, 'offers_per_10_job_seekers_shrunk':
                          market__offers_per_10_job_seekers}}
                        order by departement_code) as market__departements_ranked,
                   {variant}::integer as hiring__survey_year,
                   bool_or(synthetic) as synthetic
            from diag_local_diagnosis group by job_group_code;

            create table diag_job_groups as
            select job_group_code, any_value(job_group_label) as label,
                   left(job_group_code, 1) as grand_domain_code,
                   job_group_code = 'M1805' as is_executive, false as synthetic
            from diag_local_diagnosis group by job_group_code;

            create table diag_best_jobs_in_area as
            select departement_code || ':' || scope as best_jobs_key, departement_code, scope,
                   list({{'job_group_code': job_group_code, 'label': job_group_label}}
                        order by job_group_code) as job_groups,
                   count(*)::integer as job_groups_count, bool_or(synthetic) as synthetic
            from (select *, unnest(['all', left(job_group_code, 1)]) as scope
                  from diag_local_diagnosis)
            group by departement_code, scope;

            create table diag_departements as
            select distinct departement_code, departement_name as name, region_code,
                   departement_code like '97%' as is_overseas,
                   7.5 + {variant} as unemployment__rate_pct, false as synthetic
            from diag_local_diagnosis;

            create table diag_regions as
            select region_code, 'Région ' || region_code as name,
                   count(*)::integer as departements_count, false as synthetic
            from diag_departements group by region_code;

            create table diag_hiring_headlines as
            select 2024 as survey_year, 'france' as scope, 'FR' as area_code,
                   2778296.5 + {variant} as recruitment_projects, 57.3 as difficult_pct
            union all
            select 2024, 'region', region_code, 1000.0 + {variant}, null from diag_regions
            union all
            select 2023, 'departement', departement_code, 10.0, 50.0 from diag_departements;
            """
        )
    finally:
        con.close()
    return path


def make_vintage(exports_dir: Path, variant: int = 0, *, now: dt.datetime | None = None) -> str:
    """Publish a vintage of `variant` in `exports_dir` (latest moves to it); its name."""
    exports_dir = Path(exports_dir)
    exports_dir.mkdir(parents=True, exist_ok=True)
    warehouse = _warehouse(exports_dir.parent / f"warehouse-{variant}.duckdb", variant)
    result = publish_export(
        warehouse,
        exports_dir,
        tables=EXPORT_TABLES,
        sources=[
            {
                "slug": "francetravail_bmo",
                "synthetic": False,
                "mode": "mirror",
                "files": [{"file_name": "bmo.xlsx", "fetched_at": "2026-01-04T06:00:00Z"}],
            }
        ],
        now=(now or NOW) + dt.timedelta(minutes=variant),
    )
    warehouse.unlink()
    return result.vintage
