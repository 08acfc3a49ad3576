"""Overlapping runs never collide on the warehouse.

Two `tremplin run` processes start together on the same warehouse (as a schedule tick and
a sensor run, or a CLI run beside the daemon, would): the Dagster pool only serialises
runs of one instance, so the dbt copy-build-swap takes a file lock and the export its
own. Both runs succeed (one waits for the other) and the warehouse and the export stay
intact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from assets.export.vintages import verify_export
from pipelines.dbt import warehouse_write_lock

pytestmark = pytest.mark.slow


def test_the_write_lock_makes_a_second_builder_wait(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    order: list[str] = []

    def second() -> None:
        with warehouse_write_lock(path):
            order.append("second")

    with warehouse_write_lock(path):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        order.append("first released")
    waiter.join(timeout=5)
    assert order == ["first released", "second"]


def test_two_overlapping_full_runs_both_succeed_and_the_warehouse_is_whole(tmp_path):
    warehouse = tmp_path / "warehouse"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TREMPLIN_") and k != "DAGSTER_HOME"
    }
    # One Dagster instance for both, as `make run` shares .dagster: both write its event log.
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", home)
    env.update(TREMPLIN_WAREHOUSE_DIR=str(warehouse), TREMPLIN_AUTOMATION="")
    env["DAGSTER_HOME"] = str(home)
    tremplin = Path(sys.executable).with_name("tremplin")
    # Output goes to files, not pipes: a run blocked on a full pipe while holding the
    # warehouse lock would stall the other one.
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    runs = []
    for log in logs:
        with log.open("w") as out:
            runs.append(subprocess.Popen([str(tremplin), "run"], env=env, stdout=out, stderr=out))
    for run in runs:
        run.wait(timeout=900)  # two full builds one after the other on 2 loaded cores
    outputs = [log.read_text() for log in logs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    # Both reached dbt together unless one was much faster; then one waited on the lock.
    waited = sum("being rebuilt by another run" in output for output in outputs)
    print(f"runs that waited for the warehouse lock: {waited}")

    assert not list(warehouse.glob(".warehouse.duckdb.building*")), "a leftover copy"
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from dim_departement").fetchone()[0] == 101
        assert con.execute("select count(*) from dim_job_group").fetchone()[0] == 1584
    manifest = verify_export(warehouse / "exports" / "latest")
    assert manifest["tables"]["departements"]["rows"] == 101
