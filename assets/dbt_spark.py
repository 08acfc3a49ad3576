"""`tremplin-dbt`: dbt, with the project's SQL functions on the Spark session it opens.

dbt-spark's `session` method runs Spark inside the dbt process and asks
`SparkSession.builder...getOrCreate()` for the session before every statement, with the
parameters of `profiles.yml`. SQL cannot register a Python function and dbt has no hook
that runs Python, so this entry point wraps `getOrCreate`: the first time a session
comes back, the exact Beta / Gamma quantiles of `assets.quantiles` are registered on it
as vectorised (pandas) UDFs under the names the DuckDB plugin uses, with ln Gamma (scipy's
gammaln; DuckDB has lgamma built in). Models then call
`tremplin_beta_quantile` / `tremplin_gamma_quantile` on both engines, with the same scipy
code behind them. On DuckDB (or any other target) this is plain `dbt`.

The Python workers Spark starts run this interpreter (`PYSPARK_PYTHON`), so they import
scipy and this package from the same environment; Spark binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import numpy as np
import pandas as pd
import scipy.special

from assets.quantiles import (
    BETA_QUANTILE,
    GAMMA_QUANTILE,
    beta_quantile_values,
    gamma_quantile_values,
)

# ln Gamma: DuckDB's lgamma is built in, Spark has none (macros/special_functions.sql).
LN_GAMMA = "tremplin_lgamma"

_REGISTERED_ON: set[int] = set()


def _as_series(values: np.ndarray) -> pd.Series:
    # NaN (outside the domain) reaches SQL as NULL, as on DuckDB.
    return pd.Series(np.where(np.isfinite(values), values, np.nan), dtype="float64")


def _beta(a: pd.Series, b: pd.Series, p: pd.Series) -> pd.Series:
    values = beta_quantile_values(
        a.to_numpy(dtype=float), b.to_numpy(dtype=float), p.to_numpy(dtype=float)
    )
    return _as_series(values)


def _gamma(shape: pd.Series, rate: pd.Series, p: pd.Series) -> pd.Series:
    values = gamma_quantile_values(
        shape.to_numpy(dtype=float), rate.to_numpy(dtype=float), p.to_numpy(dtype=float)
    )
    return _as_series(values)


def _ln_gamma(x: pd.Series) -> pd.Series:
    with np.errstate(all="ignore"):
        values = scipy.special.gammaln(x.to_numpy(dtype=float))
    return _as_series(np.where(x.to_numpy(dtype=float) > 0, values, np.nan))


def register_spark_functions(session: Any) -> None:
    """Register the quantile functions on `session` (once per session). NaN (outside the
    domain) reaches SQL as NULL, as on DuckDB."""
    if id(session) in _REGISTERED_ON:
        return
    from pyspark.sql.functions import pandas_udf

    functions = ((BETA_QUANTILE, _beta), (GAMMA_QUANTILE, _gamma), (LN_GAMMA, _ln_gamma))
    for name, function in functions:
        session.udf.register(name, pandas_udf(function, "double"))
    _REGISTERED_ON.add(id(session))


def spark_environment() -> dict[str, str]:
    """Variables the local Spark needs: its Python workers use this interpreter, and it
    binds the loopback address rather than the machine's network interface."""
    return {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def install_session_hook() -> None:
    """Make every `SparkSession.builder.getOrCreate()` of this process register the
    functions on the session it returns."""
    from pyspark.sql import SparkSession

    builder_class = SparkSession.Builder
    if getattr(builder_class.getOrCreate, "_tremplin_hook", False):
        return
    original = builder_class.getOrCreate

    def get_or_create(self: Any) -> Any:
        session = original(self)
        register_spark_functions(session)
        return session

    get_or_create._tremplin_hook = True  # type: ignore[attr-defined]
    builder_class.getOrCreate = get_or_create  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """`tremplin-dbt ARGS...`: the dbt command line, with the Spark session hook."""
    for key, value in spark_environment().items():
        os.environ.setdefault(key, value)
    with contextlib.suppress(ImportError):  # no pyspark: only the DuckDB target can run
        install_session_hook()
    from dbt.cli.main import cli

    try:
        cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="dbt")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
