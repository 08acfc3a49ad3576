"""Property test of the shrinkage intervals in the corners (issue 14).

Each corner is a family of simulated job groups in which the prior the macros assume is the
true one (a cell's value drawn from a beta or a gamma around its région's mean, the régions'
means spread around the group's), but one feature is extreme: tiny counts, shares near 0 %
or 100 %, prior parameters below 1, huge exposures. Every group has France's layout (101
départements in 18 régions of 1 to 13 départements, five alone in their région), 5 % of
the cells masked, and one probe per région: a cell without data, whose interval is the
prior's own. Each corner is estimated on its own, as one mart would be.

The SQL is what dbt compiles from dbt_project/macros/shrinkage.sql, run with the exact
quantile functions. In every corner:

* the 80 % intervals cover the true value of 0.77 to 0.83 of the cells (masked included);
* the estimate (the posterior median) is inside its interval;
* a cell with data has an interval no wider than its prior's, on the scale on which a
  conjugate update can only narrow it: logit for a share, log for a rate. On the raw scale
  a surprising count moves the posterior where it is wider (one success where the prior
  says 1 %), which exact Bayes does too.

Coverage is a mean over cells, but the cells of a group share its estimated dispersions
and those of a région its estimated mean, so the sampling error is the standard error
across the independent groups (asserted below 0.01, i.e. the ±0.03 band is at least three
standard errors wide). Seeds are fixed and printed. The table in docs/DESIGN.md comes from
`.venv/bin/pytest tests/test_interval_coverage.py -s -p no:xdist`.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_shrinkage import compiled_estimators

from assets.quantiles import register

# Départements per région: metropolitan France, Corse, then the five overseas régions.
REGION_SIZES = np.array([13, 12, 12, 10, 8, 8, 6, 6, 5, 5, 5, 4, 2, 1, 1, 1, 1, 1])
GROUPS_PER_CORNER = 150
MASKED_FRACTION = 0.05
REGION_SPREAD = 0.3  # sd of a région's mean around the group's, on the logit / log scale
SEED = 20261203
COVERAGE_RANGE = (0.77, 0.83)
MAX_STANDARD_ERROR = 0.01


@dataclass(frozen=True)
class Corner:
    name: str
    family: str  # "beta" (shares) or "gamma" (rates)
    mean: tuple[float, float]  # the group's mean share or rate, log-uniform
    concentration: tuple[float, float]  # beta a + b, or gamma shape; log-uniform
    exposure: tuple[float, float]  # trials (uniform integers up to 5, else log-uniform)


CORNERS = (
    Corner("tiny counts", "beta", (0.2, 0.8), (3.0, 30.0), (1.0, 5.0)),
    Corner("shares near 0", "beta", (0.003, 0.03), (20.0, 300.0), (5.0, 500.0)),
    Corner("shares near 1", "beta", (0.97, 0.997), (20.0, 300.0), (5.0, 500.0)),
    Corner("parameters below 1", "beta", (0.3, 0.7), (0.3, 1.5), (2.0, 200.0)),
    Corner("huge exposures", "beta", (0.1, 0.9), (20.0, 2000.0), (1e4, 1e6)),
    Corner("tiny counts", "gamma", (0.2, 2.0), (2.0, 30.0), (0.5, 5.0)),
    Corner("rates near 0", "gamma", (0.001, 0.01), (1.0, 30.0), (10.0, 1000.0)),
    Corner("shape below 1", "gamma", (0.2, 2.0), (0.2, 0.9), (2.0, 500.0)),
    Corner("huge exposures", "gamma", (0.2, 2.0), (5.0, 1000.0), (1e4, 1e6)),
)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size))


def simulate(corner: Corner, groups: int = GROUPS_PER_CORNER, seed: int = SEED) -> pd.DataFrame:
    """`groups` groups of `corner`, one row per cell and per probe."""
    rng = np.random.default_rng([seed, CORNERS.index(corner)])
    beta = corner.family == "beta"
    regions = len(REGION_SIZES)
    mean = _log_uniform(rng, corner.mean, groups)
    concentration = _log_uniform(rng, corner.concentration, groups)
    noise = rng.normal(0, REGION_SPREAD, (groups, regions))
    if beta:
        region_mean = 1 / (1 + np.exp(-(np.log(mean / (1 - mean))[:, None] + noise)))
    else:
        region_mean = mean[:, None] * np.exp(noise)
    # Per group: the départements région by région, then one probe per région.
    region = np.r_[np.repeat(np.arange(regions), REGION_SIZES), np.arange(regions)]
    probe = np.arange(len(region)) >= REGION_SIZES.sum()
    frame = pd.DataFrame(
        {
            "group": np.repeat(np.arange(groups), len(region)),
            "region": np.tile(region, groups),
            "probe": np.tile(probe, groups),
        }
    )
    size = len(frame)
    cell_mean = region_mean[frame["group"], frame["region"]]
    cell_concentration = concentration[frame["group"]]
    if beta:
        true = rng.beta(cell_mean * cell_concentration, (1 - cell_mean) * cell_concentration)
        if corner.exposure[1] <= 10:
            exposure = rng.integers(corner.exposure[0], corner.exposure[1] + 1, size)
        else:
            exposure = np.round(_log_uniform(rng, corner.exposure, size))
        events = rng.binomial(exposure.astype(np.int64), true).astype(float)
    else:
        true = rng.gamma(cell_concentration, cell_mean / cell_concentration)
        exposure = np.maximum(0.1, np.round(_log_uniform(rng, corner.exposure, size), 1))
        events = rng.poisson(true * exposure).astype(float)
    frame["corner"] = corner.name
    frame["group_id"] = [f"{corner.name}/{g}" for g in frame["group"]]
    frame["cell_id"] = frame["group_id"] + ":" + frame.index.astype(str)
    frame["true_value"] = true
    frame["events"] = np.where(frame["probe"], 0.0, events)
    frame["exposure"] = np.where(frame["probe"], 0.0, exposure.astype(float))
    # The publisher's totals count every cell, masked ones included; probes are not cells.
    region_totals = frame.groupby(["group", "region"])[["events", "exposure"]].transform("sum")
    national_totals = frame.groupby("group")[["events", "exposure"]].transform("sum")
    frame["region_events"] = region_totals["events"]
    frame["region_exposure"] = region_totals["exposure"]
    frame["national_events"] = national_totals["events"]
    frame["national_exposure"] = national_totals["exposure"]
    frame["masked"] = frame["probe"] | (rng.random(size) < MASKED_FRACTION)
    frame.loc[frame["masked"], "events"] = np.nan
    if not beta:  # a rate's exposure is unknown with its events (market tension)
        frame.loc[frame["masked"], "exposure"] = np.nan
    return frame


def run_estimates(sql: str, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` beside the macro's output for its cells."""
    columns = [
        "cell_id",
        "group_id",
        "events",
        "exposure",
        "region_events",
        "region_exposure",
        "national_events",
        "national_exposure",
    ]
    con = duckdb.connect()
    register(con)
    try:
        con.register("frame_view", frame[columns])
        con.execute(f"create table {table} as select * from frame_view")
        return frame.merge(con.sql(sql).df(), on="cell_id", how="left", validate="1:1")
    finally:
        con.close()


def estimate_corners(family: str, sql: str) -> pd.DataFrame:
    """Each corner of `family` estimated on its own."""
    table = "sim_shares" if family == "beta" else "sim_rates"
    corners = [c for c in CORNERS if c.family == family]
    return pd.concat([run_estimates(sql, table, simulate(c)) for c in corners], ignore_index=True)


def coverage_table(result: pd.DataFrame) -> pd.DataFrame:
    """Per corner: coverage of the 80 % intervals, its standard error across groups, cells."""
    cells = result.loc[~result["probe"]].copy()
    cells["inside"] = (cells["low_80"] <= cells["true_value"]) & (
        cells["true_value"] <= cells["high_80"]
    )
    per_group = cells.groupby(["corner", "group"])["inside"].mean()
    table = per_group.groupby("corner").agg(
        coverage="mean", standard_error=lambda s: s.std(ddof=1) / np.sqrt(len(s))
    )
    table["cells"] = cells.groupby("corner").size()
    return table


def _with_prior_intervals(result: pd.DataFrame) -> pd.DataFrame:
    """The cells with data beside the interval of their région's probe (the prior's own)."""
    probes = result.loc[result["probe"], ["group_id", "region", "low_80", "high_80"]]
    probes = probes.rename(columns={"low_80": "prior_low_80", "high_80": "prior_high_80"})
    cells = result.loc[~result["probe"] & result["has_data"].astype(bool)]
    return cells.merge(probes, on=["group_id", "region"], how="left", validate="m:1")


def _width(low: pd.Series, high: pd.Series, family: str) -> pd.Series:
    """Width on the logit (share) or log (rate) scale. A double resolves a share near 1 to
    about 1e-16, so 1 - q is unknown below 1e-12: quantiles closer to 1 count as 1 - 1e-12
    (for the cell and its prior alike); a quantile that underflows to 0 counts as the
    smallest double."""
    tiny = np.finfo(float).tiny
    if family == "gamma":
        return np.log(np.maximum(high, tiny)) - np.log(np.maximum(low, tiny))
    unresolved = 1.0 - 1e-12
    low, high = np.clip(low, tiny, unresolved), np.clip(high, tiny, unresolved)
    return (np.log(high) - np.log1p(-high)) - (np.log(low) - np.log1p(-low))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return compiled_estimators(tmp_path_factory.mktemp("coverage"))


@pytest.fixture(scope="module", params=["beta", "gamma"])
def estimates(request, compiled: dict[str, str]) -> tuple[str, pd.DataFrame]:
    family = request.param
    print(f"\n{family}: seed {SEED}, {GROUPS_PER_CORNER} groups per corner")
    return family, estimate_corners(family, compiled[family])


def test_every_cell_gets_an_estimate(estimates) -> None:
    _, result = estimates
    assert result[["shrunk_rate", "low_80", "high_80"]].notna().all().all()
    assert not result.loc[result["masked"], "has_data"].astype(bool).any()
    assert result.loc[~result["masked"], "has_data"].astype(bool).all()


def test_coverage_is_nominal_in_every_corner(estimates) -> None:
    _, result = estimates
    table = coverage_table(result)
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    assert (table["standard_error"] < MAX_STANDARD_ERROR).all(), table
    low, high = COVERAGE_RANGE
    assert table["coverage"].between(low, high).all(), table


def test_estimate_is_inside_its_interval(estimates) -> None:
    family, result = estimates
    assert (result["low_80"] <= result["shrunk_rate"]).all()
    assert (result["shrunk_rate"] <= result["high_80"]).all()
    assert (result["low_80"] >= 0).all()
    if family == "beta":
        assert (result["high_80"] <= 1).all()


def test_data_never_widens_the_prior_interval(estimates) -> None:
    family, result = estimates
    cells = _with_prior_intervals(result)
    assert len(cells) > 0.9 * (~result["probe"]).sum()
    width = _width(cells["low_80"], cells["high_80"], family)
    prior_width = _width(cells["prior_low_80"], cells["prior_high_80"], family)
    wider = cells.loc[width > prior_width * (1 + 1e-9)]
    shown = ["cell_id", "events", "exposure", "low_80", "high_80", "prior_low_80"]
    assert wider.empty, wider[[*shown, "prior_high_80"]]


@pytest.mark.parametrize("corner", [CORNERS[0], CORNERS[5]], ids=lambda c: c.family)
def test_a_group_without_national_totals_leans_on_its_regions(compiled, corner) -> None:
    frame = simulate(corner, groups=4)
    unpublished = frame["group"] == 0
    frame.loc[unpublished, ["national_events", "national_exposure"]] = np.nan
    table = "sim_shares" if corner.family == "beta" else "sim_rates"
    result = run_estimates(compiled[corner.family], table, frame)
    assert result[["shrunk_rate", "low_80", "high_80"]].notna().all().all()
    assert (result.loc[unpublished, "prior_level"] == "region").all()
