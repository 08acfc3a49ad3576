"""The empirical-Bayes macros of dbt_project/macros/shrinkage.sql on simulated cells.

Cells are drawn with known true rates (a gamma or beta spread around a regional mean,
regions spread around a national mean), written to DuckDB, and the SQL that dbt compiles
from the macros (the same text the marts embed) is run on them, with the exact quantile
functions registered as dbt registers them (assets/quantiles.py). The 80 % intervals must
contain the true value about 80 % of the time, which also checks the estimated prior (its
dispersions and means). The corners are in tests/test_interval_coverage.py.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.quantiles import register

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
GROUPS = 40
REGIONS = 6
CELLS_PER_REGION = 15


def _dbt_executable() -> str:
    beside_python = Path(sys.executable).with_name("dbt")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("dbt")
    if found is None:
        pytest.fail("dbt executable not found next to the interpreter nor on PATH")
    return found


def _compile(inline_sql: str, work_dir: Path) -> str:
    """The SQL dbt renders from `inline_sql` (macros expanded), without touching a database."""
    env = {
        **os.environ,
        "TREMPLIN_RAW_DIR": str(work_dir / "raw"),
        "TREMPLIN_DUCKDB_PATH": str(work_dir / "compile.duckdb"),
        "DO_NOT_TRACK": "1",
    }
    completed = subprocess.run(
        [
            _dbt_executable(),
            "--quiet",
            "compile",
            "--inline",
            inline_sql,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(work_dir / "target"),
            "--log-path",
            str(work_dir / "logs"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a loaded machine (make test runs one worker per core)
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


_COMPILED: dict[str, str] = {}


def compiled_estimators(work_dir: Path) -> dict[str, str]:
    """The SQL of both macros, on tables sim_rates and sim_shares; compiled once per process
    (this module and tests/test_interval_coverage.py share it)."""
    if not _COMPILED:
        # One dbt invocation for both macros: the two queries are separated by a marker.
        marker = "-- tremplin-split --"
        text = _compile(
            "{{ gamma_poisson_estimates('sim_rates') }}\n"
            + marker
            + "\n{{ beta_binomial_estimates('sim_shares') }}\n"
            + marker
            + "\nselect x, {{ default__shrinkage_lgamma('x') }} as value from points",
            work_dir,
        )
        gamma_sql, beta_sql, lgamma_sql = text.split(marker)
        _COMPILED.update(gamma=gamma_sql, beta=beta_sql, lgamma=lgamma_sql)
    return _COMPILED


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return compiled_estimators(tmp_path_factory.mktemp("shrinkage"))


def _layout(rng: np.random.Generator) -> pd.DataFrame:
    rows = [
        (g, r, c) for g in range(GROUPS) for r in range(REGIONS) for c in range(CELLS_PER_REGION)
    ]
    frame = pd.DataFrame(rows, columns=["group", "region", "cell"])
    frame["cell_id"] = [f"{g}:{r}:{c}" for g, r, c in rows]
    frame["group_id"] = frame["group"].astype(str)
    return frame


def _with_totals(frame: pd.DataFrame) -> pd.DataFrame:
    region = frame.groupby(["group", "region"])[["events", "exposure"]].transform("sum")
    national = frame.groupby("group")[["events", "exposure"]].transform("sum")
    frame["region_events"] = region["events"]
    frame["region_exposure"] = region["exposure"]
    frame["national_events"] = national["events"]
    frame["national_exposure"] = national["exposure"]
    return frame


def _run(sql: str, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    register(con)
    try:
        con.register("frame_view", frame)
        con.execute(f"create table {table} as select * from frame_view")
        return con.sql(sql).df().merge(frame, on="cell_id")
    finally:
        con.close()


def _coverage(result: pd.DataFrame) -> float:
    inside = (result["low_80"] <= result["true_value"]) & (
        result["true_value"] <= result["high_80"]
    )
    return float(inside.mean())


def test_gamma_poisson_intervals_cover_true_rates(compiled: dict[str, str]) -> None:
    rng = np.random.default_rng(20240601)
    frame = _layout(rng)
    national = rng.uniform(0.2, 3.0, GROUPS)  # offers per job seeker
    region_factor = rng.lognormal(0.0, 0.25, (GROUPS, REGIONS))
    cv = rng.uniform(0.2, 0.6, GROUPS)
    mean = national[frame["group"]] * region_factor[frame["group"], frame["region"]]
    shape = 1.0 / cv[frame["group"]] ** 2
    frame["true_value"] = rng.gamma(shape, mean / shape)
    # Small to large cells: from a handful of job seekers to a few thousand.
    frame["exposure"] = np.round(np.exp(rng.uniform(np.log(3), np.log(3000), len(frame))), 1)
    frame["events"] = rng.poisson(frame["true_value"] * frame["exposure"]).astype(float)
    result = _run(compiled["gamma"], "sim_rates", _with_totals(frame))

    assert len(result) == len(frame)
    assert 0.75 <= _coverage(result) <= 0.85
    # Small cells are the point: they must be covered too, not only the large ones.
    small = result[result["exposure"] < 30]
    assert len(small) > 200
    assert 0.72 <= _coverage(small) <= 0.88
    # Shrinkage helps: closer to the truth than the raw ratio on small cells.
    raw_error = (small["raw_rate"] - small["true_value"]).abs().mean()
    shrunk_error = (small["shrunk_rate"] - small["true_value"]).abs().mean()
    assert shrunk_error < raw_error
    assert (result["low_80"] <= result["shrunk_rate"]).all()
    assert (result["shrunk_rate"] <= result["high_80"]).all()
    assert set(result["confidence_level"]) == {"high", "medium", "low"}


def test_beta_binomial_intervals_cover_true_shares(compiled: dict[str, str]) -> None:
    rng = np.random.default_rng(20240602)
    frame = _layout(rng)
    national = rng.uniform(0.1, 0.8, GROUPS)  # share of difficult projects
    concentration = rng.uniform(8.0, 40.0, GROUPS)
    logit = np.log(national / (1 - national))
    region_share = 1 / (1 + np.exp(-(logit[:, None] + rng.normal(0, 0.3, (GROUPS, REGIONS)))))
    mean = region_share[frame["group"], frame["region"]]
    phi = concentration[frame["group"]]
    frame["true_value"] = rng.beta(mean * phi, (1 - mean) * phi)
    frame["exposure"] = np.round(np.exp(rng.uniform(np.log(2), np.log(2000), len(frame))))
    frame["events"] = rng.binomial(frame["exposure"].astype(int), frame["true_value"]).astype(float)
    # A few masked cells: no data, the prior alone, and still an honest interval.
    masked = rng.random(len(frame)) < 0.05
    frame.loc[masked, "events"] = np.nan
    result = _run(compiled["beta"], "sim_shares", _with_totals(frame))

    assert len(result) == len(frame)
    assert 0.75 <= _coverage(result) <= 0.85
    small = result[result["exposure"] < 20]
    assert len(small) > 200
    assert 0.72 <= _coverage(small) <= 0.88
    no_data = result[result["events"].isna()]
    assert no_data["raw_rate"].isna().all()
    assert (no_data["confidence_level"] == "low").all()
    assert ((result["low_80"] >= 0) & (result["high_80"] <= 1)).all()


def test_portable_lgamma_matches_the_engine_one(compiled: dict[str, str]) -> None:
    """The default__ seam of shrinkage_lgamma (Stirling), for engines without lgamma."""
    points = [1e-4, 0.03, 0.5, 1.0, 2.5, 7.0, 123.4, 1e6]
    con = duckdb.connect()
    try:
        con.execute("create table points as select unnest(?::double[]) as x", [points])
        for x, value in con.sql(compiled["lgamma"]).fetchall():
            assert value == pytest.approx(math.lgamma(x), rel=1e-12, abs=1e-10)
    finally:
        con.close()
