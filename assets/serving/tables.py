"""What the API and the PostgreSQL publication serve of each exported table: its key, the
filters the product needs, and the indexes those filters need in PostgreSQL.

A filter is named by the record's own top-level JSON field (`departementCode`), so a query
string reads like the records it returns; the PostgreSQL column is the Parquet one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Codes as the export writes them: départements 01-95, 2A, 2B, 971-976; ROME 4.0 fiches
# one letter and four digits; régions two digits; BMO scopes and best-jobs scopes.
DEPARTEMENT = r"(?:[0-9]{2}|2[AB]|97[0-9])"
JOB_GROUP = r"[A-N][0-9]{4}"
REGION = r"[0-9]{2}"
GRAND_DOMAIN_OR_ALL = r"(?:[A-N]|all)"


@dataclass(frozen=True)
class Filter:
    """A query parameter: the record field it matches, its column, and what it accepts."""

    param: str  # the JSON field, also the query parameter
    column: str  # the Parquet / PostgreSQL column
    pattern: str  # full-match regular expression of an accepted value
    integer: bool = False

    def parse(self, text: str) -> str | int | None:
        """The value to match, or None when `text` is not an accepted value."""
        if len(text) > 64 or not re.fullmatch(self.pattern, text):
            return None
        return int(text) if self.integer else text


@dataclass(frozen=True)
class ServedTable:
    table: str  # export name (files `<table>.*`, PostgreSQL table)
    path: str  # URL segment under /v1
    key: tuple[str, ...]  # primary-key columns (Parquet names), in sort order
    key_field: str | None = None  # JSON field of a one-column key served at /v1/<path>/{key}
    key_pattern: str | None = None
    filters: tuple[Filter, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = field(default=())  # besides the primary key
    summary: str = ""

    def key_value(self, text: str) -> str | None:
        if self.key_pattern is None or len(text) > 64:
            return None
        return text if re.fullmatch(self.key_pattern, text) else None


_DEP = Filter("departementCode", "departement_code", DEPARTEMENT)
_JOB = Filter("jobGroupCode", "job_group_code", JOB_GROUP)
_REG = Filter("regionCode", "region_code", REGION)

SERVED_TABLES: tuple[ServedTable, ...] = (
    ServedTable(
        "local_diagnosis",
        "local-diagnosis",
        key=("diagnosis_key",),
        key_field="diagnosisKey",
        key_pattern=f"{DEPARTEMENT}:{JOB_GROUP}",
        filters=(_DEP, _JOB, _REG),
        indexes=(("departement_code", "diagnosis_key"), ("job_group_code", "diagnosis_key")),
        summary="Local diagnosis of a job group in a département",
    ),
    ServedTable(
        "job_group_info",
        "job-group-info",
        key=("job_group_code",),
        key_field="jobGroupCode",
        key_pattern=JOB_GROUP,
        summary="Job group info: labels, titles, national market, ranked départements",
    ),
    ServedTable(
        "job_groups",
        "job-groups",
        key=("job_group_code",),
        key_field="jobGroupCode",
        key_pattern=JOB_GROUP,
        filters=(Filter("grandDomainCode", "grand_domain_code", "[A-N]"),),
        indexes=(("grand_domain_code", "job_group_code"),),
        summary="ROME 4.0 job groups",
    ),
    ServedTable(
        "best_jobs_in_area",
        "best-jobs",
        key=("best_jobs_key",),
        key_field="bestJobsKey",
        key_pattern=f"{DEPARTEMENT}:{GRAND_DOMAIN_OR_ALL}",
        filters=(_DEP, Filter("scope", "scope", GRAND_DOMAIN_OR_ALL)),
        indexes=(("departement_code", "best_jobs_key"),),
        summary="Best jobs in a département (all, or one grand domain)",
    ),
    ServedTable(
        "departements",
        "departements",
        key=("departement_code",),
        key_field="departementCode",
        key_pattern=DEPARTEMENT,
        filters=(_REG,),
        summary="Départements",
    ),
    ServedTable(
        "regions",
        "regions",
        key=("region_code",),
        key_field="regionCode",
        key_pattern=REGION,
        summary="Régions",
    ),
    ServedTable(
        "hiring_headlines",
        "hiring-headlines",
        key=("survey_year", "scope", "area_code"),
        filters=(
            Filter("surveyYear", "survey_year", "[0-9]{4}", integer=True),
            Filter("scope", "scope", "(?:france|region|departement)"),
            Filter("areaCode", "area_code", r"(?:FR|[0-9]{2,3}|2[AB])"),
        ),
        summary="BMO hiring headlines per survey year, France, région and département",
    ),
)

SERVED_BY_NAME = {t.table: t for t in SERVED_TABLES}

# Pagination of list endpoints.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10_000_000
