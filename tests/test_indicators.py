"""Indicator marts and diagnostic tables on a real dbt build of the embedded mirror.

One shared `dbt build` (raw parquet from the real parsers, temp DuckDB and target folder).
The BMO estimates of masked cells are recomputed in Python from the raw parquet of the real
2024 workbook, following the rule documented in macros/secrecy.sql (an independent
implementation of the same EM), and the shares by hand from those estimates and the bridge
weights: the SQL estimator, the aggregation and the département filter are what is checked.
"""

from __future__ import annotations

import duckdb
import numpy as np
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


def _zero_inflated_fill(
    trials: np.ndarray,
    trials_masked: np.ndarray,
    observed: np.ndarray,
    groups: np.ndarray,
    threshold: int,
    iterations: int = 15,
) -> np.ndarray:
    """Masked counts under the zero-inflated binomial of macros/secrecy.sql, by numpy."""
    published = ~np.isnan(observed)
    codes, group_index = np.unique(groups, return_inverse=True)
    n_groups = len(codes)

    def clip(values: np.ndarray) -> np.ndarray:
        return np.clip(values, 1e-6, 1 - 1e-6)

    sums = np.bincount(group_index, np.where(published, observed, 0), n_groups)
    p = clip(np.nan_to_num(sums / np.bincount(group_index, trials, n_groups), nan=0.5))
    pi = np.full(n_groups, 0.5)
    ks = np.arange(threshold)
    # ln C(n, k) for k below the threshold (and not above n), masked counts only.
    counted = (ks[None, :] <= trials[:, None]) & ~published[:, None] & ~trials_masked[:, None]
    ln_choose = np.zeros((len(trials), threshold))
    for k in range(1, threshold):
        step = np.log(np.clip((trials - (k - 1)) / k, 1e-300, None))
        ln_choose[:, k] = ln_choose[:, k - 1] + step

    def expectations(p: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pc, pic = p[group_index], pi[group_index]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            terms = np.exp(
                ln_choose
                + ks * np.log(pc)[:, None]
                + (trials[:, None] - ks) * np.log1p(-pc)[:, None]
            )
            terms = np.where(counted, terms, 0.0)
            mass, moment = terms.sum(axis=1), (terms * ks).sum(axis=1)
            weight = np.where(
                published, 1.0, np.where(trials_masked, pic, pic * mass / ((1 - pic) + pic * mass))
            )
            count = np.where(
                published, observed, np.where(trials_masked, trials * pc, moment / mass)
            )
        return np.nan_to_num(weight), np.nan_to_num(count)

    for _ in range(iterations):
        weight, count = expectations(p, pi)
        pi = clip(
            np.bincount(group_index, weight, n_groups) / np.bincount(group_index, None, n_groups)
        )
        expected = np.bincount(group_index, weight * count, n_groups)
        exposure = np.bincount(group_index, weight * trials, n_groups)
        p = clip(np.where(exposure > 0, expected / np.where(exposure > 0, exposure, 1), 0.5))
    weight, count = expectations(p, pi)
    return np.where(
        published,
        observed,
        np.minimum.reduce([trials, np.full_like(trials, threshold - 1.0), weight * count]),
    )


def _estimated_cells(build: DbtRun) -> pd.DataFrame:
    """The raw BMO cells with every masked count estimated by the documented rule."""
    raw = _raw_bmo(build).reset_index(drop=True)
    counts = {c: pd.to_numeric(raw[c], errors="coerce") for c in ("met", "xmet", "smet")}
    threshold = int(min(s.min() for s in counts.values()))
    trials = counts["met"].fillna(threshold / 2).to_numpy(float)
    trials_masked = counts["met"].isna().to_numpy()
    groups = (raw["annee"].astype(str) + ":" + raw["code_metier_bmo"].str.strip()).to_numpy()
    cells = pd.DataFrame(
        {
            "dept": raw["dept"].str.strip().str.zfill(2),
            "code_metier_bmo": raw["code_metier_bmo"].str.strip(),
            "met": counts["met"],
            "met_masked": raw["met_masked"].astype(bool),
            "projects": trials,
        }
    )
    for column, name in (("xmet", "difficult"), ("smet", "seasonal")):
        cells[name] = _zero_inflated_fill(
            trials, trials_masked, counts[column].to_numpy(float), groups, threshold
        )
    return cells


@pytest.fixture(scope="module")
def estimated_cells(build: DbtRun) -> pd.DataFrame:
    return _estimated_cells(build)


def test_masked_bmo_counts_match_an_independent_implementation(
    build: DbtRun, estimated_cells: pd.DataFrame
) -> None:
    rows = _query(
        build,
        "select sum(recruitment_projects), sum(difficult_projects), sum(seasonal_projects), "
        "min(secrecy_threshold) from int_bmo__cells",
    )
    projects, difficult, seasonal, threshold = rows[0]
    assert threshold == 5  # the smallest count the 2024 workbook publishes
    assert projects == pytest.approx(estimated_cells["projects"].sum(), rel=1e-9)
    assert difficult == pytest.approx(estimated_cells["difficult"].sum(), rel=1e-6)
    assert seasonal == pytest.approx(estimated_cells["seasonal"].sum(), rel=1e-6)
    # Dropping masked cells pairwise (the rule this replaces) is far from the publisher's
    # 57.4 % difficult; the estimate is close to it (the dbt seed test holds the tolerance).
    national = 100 * estimated_cells["difficult"].sum() / estimated_cells["projects"].sum()
    assert abs(national - 57.4) < 1.5


def _hand_bmo(
    build: DbtRun, cells: pd.DataFrame, departement: str, rome: str
) -> tuple[float, float, int, float]:
    """Difficult share, published projects, masked cells and estimated projects by hand."""
    cells = cells[cells["dept"] == departement]
    weights = dict(
        _query(
            build,
            "select bmo_job_code, allocation_weight from int_job_classification__bmo_to_rome "
            f"where job_group_code = '{rome}'",
        )
    )
    rows = cells[cells["code_metier_bmo"].isin(weights)]
    weight = rows["code_metier_bmo"].map(weights)
    share = 100 * (weight * rows["difficult"]).sum() / (weight * rows["projects"]).sum()
    published = (weight * rows["met"].fillna(0)).sum()
    estimated = (weight * rows["projects"]).sum()
    return share, published, int(rows["met_masked"].sum()), estimated


@pytest.mark.parametrize(("departement", "rome"), SAMPLED_PAIRS)
def test_bmo_shares_match_a_hand_computation(
    build: DbtRun, estimated_cells: pd.DataFrame, departement: str, rome: str
) -> None:
    share, published, masked, estimated = _hand_bmo(build, estimated_cells, departement, rome)
    rows = _query(
        build,
        "select difficult_pct, published_recruitment_projects, masked_cells_count, "
        "recruitment_projects from fct_hiring_needs "
        f"where departement_code = '{departement}' and job_group_code = '{rome}'",
    )
    assert len(rows) == 1
    difficult_pct, published_sql, masked_sql, total = rows[0]
    assert difficult_pct == pytest.approx(share, rel=1e-6)
    assert published_sql == pytest.approx(published, rel=1e-9)
    assert masked_sql == masked
    # A masked cell enters with its estimate: the total is never below its published cells.
    assert total == pytest.approx(estimated, rel=1e-9)
    assert total >= published_sql - 1e-9


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
    assert levels <= {"departement", "rome_v3", "prior", None}


def test_no_interval_is_degenerate_where_the_cell_has_data(build: DbtRun) -> None:
    """Where the cell has data its 80 % interval is neither a point nor the whole 0-100 range
    (the old logit-normal quantiles gave [1.5e-31 %, 100 %] for Beta parameters below 1)."""
    pairs = {
        "market__offers_per_10_job_seekers is not null": [
            ("market__interval_80__low", "market__interval_80__high", None)
        ],
        "hiring__difficult_level = 'departement'": [
            (
                "hiring__difficult_interval_80__low_pct",
                "hiring__difficult_interval_80__high_pct",
                99,
            )
        ],
        "hiring__seasonal_level = 'departement'": [
            ("hiring__seasonal_interval_80__low_pct", "hiring__seasonal_interval_80__high_pct", 99)
        ],
        "contract_mix__level = 'departement'": [
            (
                f"contract_mix__{c}_interval_80__low_pct",
                f"contract_mix__{c}_interval_80__high_pct",
                99,
            )
            for c in ("cdi", "cdd", "interim")
        ],
    }
    for has_data, intervals in pairs.items():
        (rows,) = _query(build, f"select count(*) from diag_local_diagnosis where {has_data}")[0]
        assert rows > 0, has_data
        for low, high, widest in intervals:
            bad = f"not ({high} > {low})" + (f" or {high} - {low} >= {widest}" if widest else "")
            assert _query(
                build, f"select count(*) from diag_local_diagnosis where {has_data} and ({bad})"
            ) == [(0,)], (has_data, low, high)


def test_levels_name_the_prior_when_the_cell_has_no_data(build: DbtRun) -> None:
    """A value that is the prior alone says prior, and whose prior it is."""
    assert _query(
        build,
        "select count(*) from diag_local_diagnosis where "
        "(market__level = 'prior') <> (market__offers_per_10_job_seekers is null "
        "and market__offers_per_10_job_seekers_shrunk is not null) "
        "or (market__level = 'prior' and market__prior_level not in ('region', 'france')) "
        "or (contract_mix__level = 'prior') <> (contract_mix__cdi_pct is null "
        "and contract_mix__cdi_pct_shrunk is not null) "
        "or less_stressful__level is distinct from market__level",
    ) == [(0,)]


def test_contract_mix_adds_up_to_100(build: DbtRun) -> None:
    sums = _query(
        build,
        "select min(s), max(s), count(*) from (select contract_mix__cdi_pct_shrunk "
        "+ contract_mix__cdd_pct_shrunk + contract_mix__interim_pct_shrunk as s "
        "from diag_local_diagnosis where contract_mix__level is not null)",
    )[0]
    assert sums[2] > 0
    assert abs(sums[0] - 100) < 1e-9 and abs(sums[1] - 100) < 1e-9


def test_active_months_wait_for_a_year_of_snapshots(build: DbtRun) -> None:
    """One snapshot of open offers only sees recent creations: no seasonal signal yet.

    The months themselves are checked on a year of snapshots by the dbt unit tests of
    int_offers__active_months (dbt_project/models/intermediate/_int_indicators.yml).
    """
    snapshot_months = _query(
        build,
        "select count(distinct date_trunc('month', snapshot_date)) "
        "from stg_francetravail_offres__offers",
    )[0][0]
    assert snapshot_months < 12
    assert _query(
        build,
        "select offers_trend__active_months_level, count(offers_trend__active_months) "
        "from diag_local_diagnosis group by all",
    ) == [("unknown", 0)]


def test_less_stressful_suggestions_follow_the_rule(build: DbtRun) -> None:
    assert _query(
        build,
        "select count(*) from fct_less_stressful_job_groups where suggestion_rank > 5 "
        "or target_interval_80_low <= source_offers_per_10_job_seekers_shrunk",
    ) == [(0,)]
