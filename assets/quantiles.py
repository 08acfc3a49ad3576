"""Exact Beta and Gamma quantiles as DuckDB functions, for the shrinkage macros of dbt.

SQL has no Beta or Gamma quantile function. The closed-form approximations the macros
used (logit-normal, Wilson-Hilferty) break when a Beta parameter is below 1, which is
exactly the small-cell corner shrinkage is for; scipy's inverse regularised incomplete
beta and gamma functions are exact there. `register` puts them on a connection: dbt does
it on each of its connections through the plugin in `assets/dbt_udfs.py`, tests and
analysts call it directly. On Spark the same numpy functions are registered as pandas
UDFs on dbt's session (`assets/dbt_spark.py`); the `adapter.dispatch` seam of
`macros/shrinkage.sql` names them on both engines.

The functions are vectorised (Arrow batches in, one scipy call per batch) and return NULL
for NULL or invalid input, so a cell without data stays NULL rather than failing a build.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import scipy.special

BETA_QUANTILE = "tremplin_beta_quantile"
GAMMA_QUANTILE = "tremplin_gamma_quantile"


def _as_float(array: Any) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=float)


def _result(values: np.ndarray) -> pa.Array:
    # scipy answers NaN outside the domain (a <= 0, p outside [0, 1]): NULL in SQL.
    return pa.array(values, mask=~np.isfinite(values), type=pa.float64())


def beta_quantile_values(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """p-quantile of Beta(a, b) on float arrays; NaN where undefined. Both engines' SQL
    functions call this one (DuckDB here, Spark in `assets.dbt_spark`)."""
    with np.errstate(all="ignore"):
        return scipy.special.betaincinv(a, b, p)


def gamma_quantile_values(shape: np.ndarray, rate: np.ndarray, p: np.ndarray) -> np.ndarray:
    """p-quantile of Gamma(shape, rate) (rate = 1 / scale) on float arrays; NaN where
    undefined."""
    with np.errstate(all="ignore"):
        return scipy.special.gammaincinv(shape, p) / rate


def beta_quantile(a: Any, b: Any, p: Any) -> pa.Array:
    """p-quantile of Beta(a, b)."""
    return _result(beta_quantile_values(_as_float(a), _as_float(b), _as_float(p)))


def gamma_quantile(shape: Any, rate: Any, p: Any) -> pa.Array:
    """p-quantile of Gamma(shape, rate) (rate = 1 / scale)."""
    return _result(gamma_quantile_values(_as_float(shape), _as_float(rate), _as_float(p)))


def register(connection: duckdb.DuckDBPyConnection) -> None:
    """Make the quantile functions callable from SQL on `connection`."""
    double = duckdb.sqltype("DOUBLE")
    for name, function in ((BETA_QUANTILE, beta_quantile), (GAMMA_QUANTILE, gamma_quantile)):
        connection.create_function(
            name,
            function,
            [double, double, double],
            double,
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
