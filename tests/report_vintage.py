"""Two small export vintages shaped like the real ones, for the report tests.

The warehouse holds the columns the report reads under their real names (101 départements,
three job groups in each, BMO headlines for France, two régions and every département),
and the real export code publishes it twice, a value changed in between, so the report has
a previous vintage to compare with. The market columns are commented as synthetic, as the
dbt descriptions of the real tables are.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from assets.export.publish import publish_export
from assets.report.geo import BOUNDARIES

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
JOBS = [("M1607", "Secrétaire"), ("G1603", "Equipier polyvalent"), ("K2204", "Agent d'entretien")]
SOURCES = [
    {"slug": "francetravail_bmo", "publisher": "France Travail", "synthetic": False,
     "files": [{"file_name": "Base_open_data_BMO_2024.xlsx", "sha256": "ab" * 32,
                "fetched_at": "2026-02-28T10:00:00Z",
                "upstream_url": "https://example.invalid/bmo.xlsx"}]},
    {"slug": "francetravail_marche_travail", "publisher": "France Travail", "synthetic": True,
     "files": [{"file_name": "synthetic.json.gz", "sha256": "cd" * 32,
                "fetched_at": "2026-02-28T10:00:00Z"}]},
]  # fmt: skip
SYNTHETIC_NOTE = "Source: France Travail Marché du travail API (synthetic in the embedded mirror)."


def departement_codes() -> list[tuple[str, str]]:
    collection = json.loads(BOUNDARIES.read_text(encoding="utf-8"))
    return sorted((f["properties"]["code"], f["properties"]["nom"]) for f in collection["features"])


def make_report_warehouse(path: Path) -> Path:
    codes = departement_codes()
    con = duckdb.connect(str(path))
    try:
        con.execute(
            """
            create table diag_departements (
                departement_code varchar not null, name varchar, region_code varchar,
                region_name varchar, is_overseas boolean, unemployment__rate_pct double,
                unemployment__quarter varchar, synthetic boolean
            );
            create table diag_regions (region_code varchar not null, name varchar);
            create table diag_job_groups (job_group_code varchar not null, label varchar);
            create table diag_job_group_info (job_group_code varchar not null, label varchar);
            create table diag_best_jobs_in_area (best_jobs_key varchar not null, n integer);
            create table diag_hiring_headlines (
                survey_year integer, scope varchar, area_code varchar,
                recruitment_projects double, recruitment_projects_low double,
                recruitment_projects_high double, difficult_pct double,
                difficult_pct_low double, difficult_pct_high double, seasonal_pct double,
                seasonal_pct_low double, seasonal_pct_high double
            );
            create table diag_local_diagnosis (
                diagnosis_key varchar not null, departement_code varchar,
                job_group_code varchar, job_group_label varchar,
                market__level varchar, market__offers_count bigint,
                market__job_seekers_avg double, market__offers_per_10_job_seekers_shrunk double,
                tension__level varchar, tension__dares_index double,
                hiring__recruitment_projects double, hiring__difficult_pct double,
                hiring__difficult_pct_shrunk double,
                hiring__difficult_interval_80__low_pct double,
                hiring__difficult_interval_80__high_pct double,
                hiring__difficult_confidence varchar,
                sources__bmo_survey_year integer, sources__unemployment_quarter varchar,
                synthetic boolean
            );
            insert into diag_regions values ('27', 'Bourgogne-Franche-Comté'),
                ('04', 'La Réunion');
            insert into diag_job_groups values ('M1607', 'Secrétaire');
            insert into diag_job_group_info values ('M1607', 'Secrétaire');
            insert into diag_best_jobs_in_area values ('01:all', 1);
            insert into diag_hiring_headlines values
                (2024, 'france', 'FR', 2778296.5, 2751069, 2794633, 57.3, 56.1, 60.0,
                 29.96, 29.3, 35.5),
                (2024, 'region', '27', 99172, 96872, 100532, 55.7, 53.1, 61.6, 30, 28, 33),
                (2024, 'region', '04', 37858, 37593, 38017, 50.0, 48.0, 52.0, 20, 19, 21);
            """
        )
        for column in ("market__offers_count", "market__job_seekers_avg"):
            con.execute(f"comment on column diag_local_diagnosis.{column} is '{SYNTHETIC_NOTE}'")
        departements, headlines, diagnosis = [], [], []
        for index, (code, name) in enumerate(codes):
            overseas = len(code) == 3
            # Mayotte has no published unemployment rate: a NULL the map shows in grey.
            rate = None if code == "976" else round(5 + (index * 37 % 90) / 10, 1)
            departements.append((code, name, "27", "R", overseas, rate, "2021-Q4", False))
            share = 40 + index * 13 % 30
            headlines.append(
                (2024, "departement", code, 1000.0 + index, 990.0, 1010.0, share, share - 2,
                 share + 3, 20.0, 19.0, 22.0)
            )  # fmt: skip
            for rank, (job, label) in enumerate(JOBS):
                shrunk = 30 + (index + 7 * rank) % 50
                diagnosis.append(
                    (f"{code}:{job}", code, job, label, "departement", 40 + index + rank,
                     10.0 + rank, 8.0, "departement", 0.1 * (index % 12) - 0.3,
                     300.0 - 50 * rank + index, shrunk + 2.0, float(shrunk), shrunk - 6.0,
                     shrunk + 5.0, "medium", 2024, "2021-Q4", True)
                )  # fmt: skip
        con.executemany(
            f"insert into diag_departements values ({', '.join('?' * 8)})", departements
        )
        con.executemany(
            f"insert into diag_hiring_headlines values ({', '.join('?' * 12)})", headlines
        )
        con.executemany(
            f"insert into diag_local_diagnosis values ({', '.join('?' * 19)})", diagnosis
        )
    finally:
        con.close()
    return path


def publish_two_vintages(root: Path) -> tuple[Path, Path]:
    """(older, newer) vintage directories under root/exports; `latest` is the newer."""
    warehouse = make_report_warehouse(root / "warehouse.duckdb")
    first = publish_export(warehouse, root / "exports", sources=SOURCES, now=NOW)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            "update diag_departements set unemployment__rate_pct = 9.9 "
            "where departement_code = '75'"
        )
    finally:
        con.close()
    second = publish_export(
        warehouse, root / "exports", sources=SOURCES, now=NOW + dt.timedelta(days=1)
    )
    return first.path, second.path
