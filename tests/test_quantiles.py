"""The exact quantile functions dbt's shrinkage macros call, on a real DuckDB connection."""

from __future__ import annotations

import duckdb
import pytest
import scipy.special

from assets.quantiles import register


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    register(connection)
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("a", "b", "p"),
    [(0.3, 5.0, 0.1), (0.3, 5.0, 0.9), (0.05, 0.2, 0.5), (400.0, 3.0, 0.1), (2.0, 2.0, 0.9)],
)
def test_beta_quantile_inverts_the_beta_cdf(con, a: float, b: float, p: float) -> None:
    """Parameters below 1 included: the corner where the logit-normal approximation broke."""
    (q,) = con.execute("select tremplin_beta_quantile(?, ?, ?)", [a, b, p]).fetchone()
    assert 0.0 <= q <= 1.0
    assert scipy.special.betainc(a, b, q) == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize(
    ("shape", "rate", "p"),
    [(0.4, 2.0, 0.1), (0.4, 2.0, 0.9), (5000.0, 10.0, 0.1), (3.0, 0.01, 0.9)],
)
def test_gamma_quantile_inverts_the_gamma_cdf(con, shape: float, rate: float, p: float) -> None:
    (q,) = con.execute("select tremplin_gamma_quantile(?, ?, ?)", [shape, rate, p]).fetchone()
    assert q >= 0.0
    assert scipy.special.gammainc(shape, q * rate) == pytest.approx(p, abs=1e-9)


def test_null_and_invalid_parameters_give_null(con) -> None:
    rows = con.execute(
        "select tremplin_beta_quantile(null, 1, 0.5), tremplin_beta_quantile(-1, 2, 0.5), "
        "tremplin_gamma_quantile(2, 1, 1.5), tremplin_gamma_quantile(0, 1, 0.5)"
    ).fetchone()
    assert rows == (None, None, None, None)


def test_the_functions_work_on_a_column(con) -> None:
    """Vectorised over a batch, in row order."""
    rows = con.execute(
        "select i, tremplin_beta_quantile(1.0 + i, 1.0, 0.5) from range(5000) t(i) order by i"
    ).fetchall()
    # Beta(a, 1) has median 0.5 ** (1 / a).
    assert all(q == pytest.approx(0.5 ** (1 / (1.0 + i)), rel=1e-9) for i, q in rows)
