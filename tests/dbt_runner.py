"""Run the real dbt project from a test, against a temporary warehouse and raw folder.

Artefacts (target, logs) go to the test's own folder, so tests never clobber the shared
`dbt_project/target` that the Dagster definitions read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "dbt_project"


def run_dbt_build(
    work: Path, select: list[str], extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """`dbt build --select … [extra]` reading `work/raw`, writing `work/warehouse.duckdb`."""
    env = {
        **os.environ,
        "TREMPLIN_RAW_DIR": str(work / "raw"),
        "TREMPLIN_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), "build", "--indirect-selection", "cautious", *extra, "--select", *select]
        + ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        + ["--target-path", str(work / "target"), "--log-path", str(work / "logs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def query(path: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the DuckDB file a build wrote, opened read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
