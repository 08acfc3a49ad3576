"""dbt-duckdb plugin: the quantile functions of `assets.quantiles` on every dbt connection.

`dbt_project/profiles.yml` lists this module under `plugins:`; dbt-duckdb imports it and
calls `configure_connection` on each connection it opens, so the models can call
`tremplin_beta_quantile` / `tremplin_gamma_quantile`.
"""

from __future__ import annotations

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin

from assets.quantiles import register


class Plugin(BasePlugin):
    """Registers the project's SQL functions on each connection dbt opens."""

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register(conn)
