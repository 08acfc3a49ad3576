"""Small DuckDB warehouses shaped like the dbt `diag_*` tables, for the export tests.

They stand in for the real models (written elsewhere) with what makes exporting hard:
nested `__` columns, LIST and LIST of STRUCT columns, codes as text, NULLs everywhere a
value can be unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

LOCAL_DIAGNOSIS_DDL = """
create table diag_local_diagnosis (
    diagnosis_key varchar not null,
    departement_code varchar not null,
    job_group_code varchar not null,
    market__offers_per_10_job_seekers double,
    market__interval_80__low double,
    market__interval_80__high double,
    market__confidence varchar,
    market__level varchar,
    hiring__projects_count integer,
    hiring__difficult_pct decimal(5, 1),
    trend__active_months integer[],
    less_stressful_job_groups struct(job_group_code varchar, mobility_type varchar,
                                     offers_per_10_job_seekers double)[],
    synthetic boolean not null
)
"""

LOCAL_DIAGNOSIS_ROWS = """
insert into diag_local_diagnosis values
    ('01:M1805', '01', 'M1805', 3.2, 2.5, 4.1, 'high', 'departement', 120, 41.5, [3, 4, 9],
     [{'job_group_code': 'M1806', 'mobility_type': 'proche', 'offers_per_10_job_seekers': 5.5}],
     false),
    ('2A:M1805', '2A', 'M1805', null, null, null, null, 'region', null, null, null, null, true),
    ('971:A1203', '971', 'A1203', 0.8, 0.4, 1.5, 'low', 'france', 7, 88.8, [],
     [{'job_group_code': 'A1201', 'mobility_type': null, 'offers_per_10_job_seekers': null},
      null],
     true),
    ('01:A1203', '01', 'A1203', 1.9, 1.2, 2.8, 'medium', 'departement', 40, 12.0, [5, 6],
     [], false)
"""


def make_warehouse(path: Path) -> Path:
    """The seven exported relations, small, with nested and NULL values."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            """
            create table diag_job_groups (
                rome_code varchar not null,
                label varchar not null,
                related_rome_codes varchar[],
                refreshed_at timestamptz
            );
            insert into diag_job_groups values
                ('M1805', 'Études et développement informatique', ['M1806', 'M1810'],
                 timestamptz '2025-02-28 10:00:00+01'),
                ('A1203', 'Aménagement et entretien des espaces verts', [], null),
                ('K2204', 'Nettoyage de locaux', null, timestamptz '2025-02-28 09:30:00+00');

            create table diag_departements (
                rome_code varchar not null,
                departement_code varchar not null,
                departement_name varchar,
                offers_count integer,
                difficult_pct decimal(5, 1),
                is_tight boolean,
                hiring_months integer[],
                tension struct(rank integer, tension_label varchar),
                period_start date
            );
            comment on table diag_departements is 'Market diagnosis per job and département';
            comment on column diag_departements.departement_code is 'INSEE code, e.g. 2A';
            insert into diag_departements values
                ('M1805', '2A', 'Corse-du-Sud', 12, 41.5, true, [3, 4, 9],
                 {'rank': 2, 'tension_label': 'tendu'}, date '2024-01-01'),
                ('M1805', '971', 'Guadeloupe', null, null, null, null, null, null),
                ('M1805', '01', 'Ain', 0, 12.0, false, [], {'rank': null, 'tension_label': null},
                 date '2024-01-01'),
                ('A1203', '971', null, 7, 88.8, true, [null, 5],
                 {'rank': 1, 'tension_label': 'très tendu'}, date '2024-04-01');

            create table diag_hiring_headlines (
                survey_year integer not null,
                scope varchar not null,
                area_code varchar not null,
                recruitment_projects double,
                recruitment_projects_low double,
                difficult_pct double
            );
            insert into diag_hiring_headlines values
                (2024, 'france', 'FR', 2778296.5, 2751069, 57.3),
                (2024, 'region', '27', 99172, 98000, null);

            create table diag_regions (
                rome_code varchar not null,
                region_code varchar not null,
                offers_count bigint
            );
            insert into diag_regions values ('M1805', '94', 12), ('M1805', '01', null),
                ('A1203', '84', 40);

            create table diag_job_group_info (
                job_group_code varchar not null,
                label varchar not null,
                national__offers_per_10_job_seekers double,
                departements_ranked struct(departement_code varchar, rank integer)[],
                synthetic boolean not null
            );
            insert into diag_job_group_info values
                ('M1805', 'Études et développement informatique', 3.1,
                 [{'departement_code': '01', 'rank': 1}, {'departement_code': '2A', 'rank': 2}],
                 false),
                ('A1203', 'Aménagement et entretien des espaces verts', null, null, true);

            create table diag_best_jobs_in_area (
                departement_code varchar not null,
                grand_domain_code varchar,
                best_job_groups struct(job_group_code varchar, offers_per_10_job_seekers double)[],
                synthetic boolean not null
            );
            insert into diag_best_jobs_in_area values
                ('01', null, [{'job_group_code': 'M1805', 'offers_per_10_job_seekers': 3.2}],
                 false),
                ('01', 'M', [{'job_group_code': 'M1805', 'offers_per_10_job_seekers': 3.2}],
                 false),
                ('971', null, [], true);
            """
        )
        con.execute(LOCAL_DIAGNOSIS_DDL)
        con.execute(LOCAL_DIAGNOSIS_ROWS)
    finally:
        con.close()
    return path


def run_sql(path: Path, sql: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def write_manifest(path: Path, models: dict[str, dict]) -> Path:
    """A dbt manifest holding `models` ({name: {"description", "columns": {col: desc}}})."""
    nodes = {}
    for name, model in models.items():
        nodes[f"model.tremplin.{name}"] = {
            "resource_type": "model",
            "name": name,
            "alias": name,
            "description": model.get("description", ""),
            "columns": {
                column: {"name": column, "description": text, "data_type": "varchar", "meta": {}}
                for column, text in model.get("columns", {}).items()
            },
        }
    nodes["test.tremplin.not_null_x"] = {"resource_type": "test", "name": "not_null_x"}
    path.write_text(json.dumps({"nodes": nodes}), encoding="utf-8")
    return path
