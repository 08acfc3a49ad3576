"""How many decimals each published DOUBLE keeps: declared once per field, here.

The export rounds with these in SQL (Parquet and JSON Lines alike), the JSON Schema states
them (`x-decimals`) and docs/EXPORTS.md shows them, so the three cannot disagree. A value
like `56.00000000000001` is an artefact of floating point, not information: rounding to
what the field can mean makes the files smaller and the bytes stable whatever order the
engine summed in (ties included: see `TIE_GUARD_DECIMALS` in writing.py).

Keys are the diagnostic models' column names, shared by every table that publishes the
same field; a DOUBLE inside a list of structs is `<column>[].<struct field>`. A DOUBLE
column missing here is published unrounded, with a warning (and a test fails for the real
tables), so a new field gets a precision when it is added.
"""

from __future__ import annotations

# Percentages (0-100) and percentage points: one decimal, as INSEE, DARES and France
# Travail publish them.
_PCT = 1
# Offers per 10 job seekers and the DARES tension index: two decimals.
_RATIO = 2

DECIMALS: dict[str, int] = {
    # local_diagnosis: market block
    "market__offers_per_10_job_seekers": _RATIO,
    "market__offers_per_10_job_seekers_shrunk": _RATIO,
    "market__interval_80__low": _RATIO,
    "market__interval_80__high": _RATIO,
    "market__region_offers_per_10_job_seekers": _RATIO,
    "market__national_offers_per_10_job_seekers": _RATIO,
    "market__effective_sample_size": 1,
    "market__job_seekers_avg": 1,
    "market__job_seekers_in_tighter_market_pct": _PCT,
    # hiring block (BMO): projects are estimates where cells are masked
    "hiring__recruitment_projects": 1,
    "hiring__published_recruitment_projects": 1,
    "hiring__difficult_pct": _PCT,
    "hiring__difficult_pct_shrunk": _PCT,
    "hiring__difficult_interval_80__low_pct": _PCT,
    "hiring__difficult_interval_80__high_pct": _PCT,
    "hiring__seasonal_pct": _PCT,
    "hiring__seasonal_pct_shrunk": _PCT,
    "hiring__seasonal_interval_80__low_pct": _PCT,
    "hiring__seasonal_interval_80__high_pct": _PCT,
    # tension (DARES)
    "tension__dares_index": _RATIO,
    "tension__difficult_hiring_pct": _PCT,
    # offers trend, salaries, contract mix
    "offers_trend__change_percent": _PCT,
    "salary__q1_monthly_gross_eur": 0,
    "salary__median_monthly_gross_eur": 0,
    "salary__q3_monthly_gross_eur": 0,
    "contract_mix__cdi_pct": _PCT,
    "contract_mix__cdi_pct_shrunk": _PCT,
    "contract_mix__cdi_interval_80__low_pct": _PCT,
    "contract_mix__cdi_interval_80__high_pct": _PCT,
    "contract_mix__cdd_pct": _PCT,
    "contract_mix__cdd_pct_shrunk": _PCT,
    "contract_mix__cdd_interval_80__low_pct": _PCT,
    "contract_mix__cdd_interval_80__high_pct": _PCT,
    "contract_mix__interim_pct": _PCT,
    "contract_mix__interim_pct_shrunk": _PCT,
    "contract_mix__interim_interval_80__low_pct": _PCT,
    "contract_mix__interim_interval_80__high_pct": _PCT,
    # unemployment (INSEE), in local_diagnosis, departements and regions
    "unemployment__rate_pct": _PCT,
    "unemployment__year_change_points": _PCT,
    # lists of job groups / départements
    "less_stressful__job_groups[].offers_per_10_job_seekers_shrunk": _RATIO,
    "job_groups[].offers_per_10_job_seekers_shrunk": _RATIO,
    "market__departements_ranked[].offers_per_10_job_seekers_shrunk": _RATIO,
    # job_group_info: national figures
    "hiring__national_recruitment_projects": 1,
    "hiring__national_published_recruitment_projects": 1,
    "hiring__national_difficult_pct": _PCT,
    "hiring__national_seasonal_pct": _PCT,
    # hiring_headlines (BMO headline figures and their secrecy bounds)
    "recruitment_projects": 1,
    "recruitment_projects_low": 1,
    "recruitment_projects_high": 1,
    "difficult_pct": _PCT,
    "difficult_pct_low": _PCT,
    "difficult_pct_high": _PCT,
    "seasonal_pct": _PCT,
    "seasonal_pct_low": _PCT,
    "seasonal_pct_high": _PCT,
}


def decimals_for(field: str) -> int | None:
    """The declared decimals of a column (`a__b`) or struct field (`col[].field`), or None."""
    return DECIMALS.get(field)
