"""Indicator marts and diagnostic tables on a real dbt build of the embedded mirror.

One shared `dbt build` (raw parquet from the real parsers, temp DuckDB and target folder).
The BMO shares are recomputed by hand from the raw parquet of the real 2024 workbook and
the documented allocation weights (int_job_classification__bmo_to_rome): the SQL
aggregation, the masking rule and the département filter are what is checked here.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from dbt_fixtures import write_raw_fixtures
from test_dbt_build import DbtRun, _query, _run_dbt

pytestmark = pytest.mark.slow

SAMPLED_PAIRS = [
    ("75", "G1602"),
    ("13", "J1501"),
    ("69", "N4101"),
    ("2A", "G1603"),
    ("974", "K1304"),
]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    work_dir = tmp_path_factory.mktemp("indicators")
    raw_dir = work_dir / "raw"
    write_raw_fixtures(raw_dir)
    built = _run_dbt(
        ["build"], work_dir=work_dir, raw_dir=raw_dir, duckdb_path=work_dir / "wh.duckdb"
    )
    assert built.returncode == 0, built.output
    return built


def _raw_bmo(build: DbtRun) -> pd.DataFrame:
    # The raw folder sits beside the DuckDB file of the build.
    folder = build.duckdb_path.parent / "raw" / "francetravail_bmo" / "projects"
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))])


def _hand_bmo(build: DbtRun, departement: str, rome: str) -> tuple[float, float, int]:
    """Difficult share, published projects and masked cells from the raw workbook rows."""
    raw = _raw_bmo(build)
    raw = raw[raw["dept"].str.strip().str.zfill(2) == departement]
    weights = dict(
        _query(
            build,
            "select bmo_job_code, allocation_weight from int_job_classification__bmo_to_rome "
            f"where job_group_code = '{rome}'",
        )
    )
    rows = raw[raw["code_metier_bmo"].isin(weights)]
    met = pd.to_numeric(rows["met"], errors="coerce")
    xmet = pd.to_numeric(rows["xmet"], errors="coerce")
    weight = rows["code_metier_bmo"].map(weights)
    both = met.notna() & xmet.notna()
    share = 100 * (weight[both] * xmet[both]).sum() / (weight[both] * met[both]).sum()
    published = (weight * met).sum()
    return share, published, int(rows["met_masked"].sum())


@pytest.mark.parametrize(("departement", "rome"), SAMPLED_PAIRS)
def test_bmo_shares_match_a_hand_computation(build: DbtRun, departement: str, rome: str) -> None:
    share, published, masked = _hand_bmo(build, departement, rome)
    rows = _query(
        build,
        "select difficult_pct, published_recruitment_projects, masked_cells_count, "
        "recruitment_projects from fct_hiring_needs "
        f"where departement_code = '{departement}' and job_group_code = '{rome}'",
    )
    assert len(rows) == 1
    difficult_pct, published_sql, masked_sql, total = rows[0]
    assert difficult_pct == pytest.approx(share, rel=1e-9)
    assert published_sql == pytest.approx(published, rel=1e-9)
    assert masked_sql == masked
    # A masked cell makes the total unknown, never a sum that counts it as 0.
    assert (total is None) == (masked > 0)


def test_bmo_allocation_preserves_the_national_total(build: DbtRun) -> None:
    (allocated,) = _query(
        build, "select sum(published_recruitment_projects) from fct_hiring_needs"
    )[0]
    raw = _raw_bmo(build)
    departements = {row[0] for row in _query(build, "select departement_code from dim_departement")}
    raw = raw[raw["dept"].str.strip().str.zfill(2).isin(departements)]
    assert allocated == pytest.approx(pd.to_numeric(raw["met"], errors="coerce").sum(), rel=1e-9)


def test_local_diagnosis_has_every_fiche_in_every_departement(build: DbtRun) -> None:
    ((rows, keys, fiches, departements),) = _query(
        build,
        "select count(*), count(distinct diagnosis_key), count(distinct job_group_code), "
        "count(distinct departement_code) from diag_local_diagnosis",
    )
    (n_fiches,) = _query(build, "select count(*) from dim_job_group")[0]
    assert (fiches, departements) == (n_fiches, 101)
    assert rows == keys == n_fiches * 101
    assert _query(
        build,
        "select count(*) from diag_local_diagnosis "
        "where diagnosis_key <> departement_code || ':' || job_group_code",
    ) == [(0,)]


def test_ranks_are_consistent_with_ratios(build: DbtRun) -> None:
    frame = (
        duckdb.connect(str(build.duckdb_path), read_only=True)
        .sql(
            "select job_group_code, departement_rank, offers_per_10_job_seekers_shrunk, "
            "easier_departements_count, departements_ranked_count from fct_market_tension "
            "where departement_rank is not null"
        )
        .df()
    )
    assert len(frame) > 100
    for _, group in frame.groupby("job_group_code"):
        expected = group["offers_per_10_job_seekers_shrunk"].rank(method="min", ascending=False)
        assert (group["departement_rank"] == expected).all()
        assert (group["easier_departements_count"] == group["departement_rank"] - 1).all()
        assert (group["departements_ranked_count"] == len(group)).all()


def test_no_percentage_outside_0_100(build: DbtRun) -> None:
    columns = _query(
        build,
        "select table_name, column_name from information_schema.columns "
        "where (table_name like 'diag_%' or table_name like 'fct_%') and column_name like '%_pct'",
    )
    assert len(columns) > 30
    for table, column in columns:
        assert _query(
            build, f"select count(*) from {table} where {column} < 0 or {column} > 100"
        ) == [(0,)], f"{table}.{column}"


def test_shrunk_values_sit_inside_their_intervals(build: DbtRun) -> None:
    assert _query(
        build,
        "select count(*) from diag_local_diagnosis where "
        "market__offers_per_10_job_seekers_shrunk < market__interval_80__low - 1e-9 "
        "or market__offers_per_10_job_seekers_shrunk > market__interval_80__high + 1e-9 "
        "or hiring__difficult_pct_shrunk < hiring__difficult_interval_80__low_pct - 1e-9 "
        "or hiring__difficult_pct_shrunk > hiring__difficult_interval_80__high_pct + 1e-9",
    ) == [(0,)]
    levels = {
        row[0] for row in _query(build, "select distinct market__level from diag_local_diagnosis")
    }
    assert {"departement", None} <= levels


def test_active_months_are_in_calendar_order(build: DbtRun) -> None:
    rows = _query(
        build,
        "select distinct offers_trend__active_months from diag_local_diagnosis "
        "where offers_trend__active_months is not null",
    )
    assert rows
    for (months,) in rows:
        assert months == sorted(months)
        assert all(1 <= month <= 12 for month in months)


def test_less_stressful_suggestions_follow_the_rule(build: DbtRun) -> None:
    assert _query(
        build,
        "select count(*) from fct_less_stressful_job_groups where suggestion_rank > 5 "
        "or target_interval_80_low <= source_offers_per_10_job_seekers_shrunk",
    ) == [(0,)]
