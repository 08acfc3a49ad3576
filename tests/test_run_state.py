"""What `tremplin run` records after a successful mirror-mode run, and when the next one may
skip Dagster (`pipelines.run_state`). The whole CLI path, on a real run, is in
tests/test_noop_rerun.py; these pin down the states and the record on small trees."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from assets.foundation.settings import get_settings
from assets.ingest.status import append_record, read_records
from pipelines import run_state


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A mirror, a warehouse dir with a few outputs and a project with code, settings
    pointing at them."""
    mirror = tmp_path / "mirror"
    (mirror / "geo").mkdir(parents=True)
    (mirror / "geo" / "departements.json").write_text("[]")
    warehouse = tmp_path / "warehouse"
    (warehouse / "raw" / "geo").mkdir(parents=True)
    (warehouse / "raw" / "geo" / "regions.parquet").write_bytes(b"PAR1")
    (warehouse / "warehouse.duckdb").write_bytes(b"db")
    (warehouse / "exports" / "v1").mkdir(parents=True)
    (warehouse / "exports" / "v1" / "manifest.json").write_text("{}")
    (warehouse / "exports" / "latest").symlink_to("v1")
    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pipelines" / "cli.py").write_text("print()")
    (project / "dbt_project" / "target").mkdir(parents=True)
    (project / "dbt_project" / "model.sql").write_text("select 1")
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror))
    for name in ("TREMPLIN_DUCKDB_PATH", "TREMPLIN_MODE"):
        monkeypatch.delenv(name, raising=False)
    return mirror, warehouse, project


def state(project: Path) -> run_state.RunState:
    return run_state.current_state(get_settings(), project_root=project)


def record(project: Path, warnings=(), fetches=()) -> run_state.RunState:
    """Record a run as the CLI does after a success: fetch log first, then the record."""
    settings = get_settings()
    before = state(project)
    start = run_state.fetch_log_size(settings)
    for slug in fetches:
        append_record(
            settings.fetches_log,
            {"slug": slug, "mode": "mirror", "files": [f"{slug}.csv"], "new_files": []},
        )
    assert run_state.record_run(
        settings,
        before,
        run_id="abcdef0123",
        warnings=list(warnings),
        fetch_log_from=start,
        project_root=project,
    )
    return state(project)


def unchanged(project: Path):
    return run_state.unchanged_since_last_run(get_settings(), state(project))


def test_unchanged_after_a_recorded_run_with_its_warnings_and_fetches(layout):
    mirror, warehouse, project = layout
    assert unchanged(project) is None  # no record yet: a run
    record(project, warnings=["  warning: geo is stale"], fetches=["geo", "rome"])
    found = unchanged(project)
    assert found is not None and found.run_id == "abcdef0123"
    assert found.warnings == ["  warning: geo is stale"]
    assert [f["slug"] for f in found.fetches] == ["geo", "rome"]
    # dbt's outputs and the run logs are not inputs: they move without making a run.
    (project / "dbt_project" / "target" / "run_results.json").write_text("{}")
    (warehouse / "runs" / "x.log").write_text("log")
    assert unchanged(project) is not None


@pytest.mark.parametrize(
    "change",
    [
        "mirror file touched",
        "mirror file copied over itself, mtime kept",
        "mirror file added",
        "code changed",
        "setting changed",
        "warehouse file touched",
        "raw file deleted",
        "latest moved",
    ],
)
def test_any_move_means_a_run(layout, monkeypatch, change):
    mirror, warehouse, project = layout
    record(project)
    assert unchanged(project) is not None
    departements = mirror / "geo" / "departements.json"
    if change == "mirror file touched":
        os.utime(departements, ns=(1, 1))
    elif change == "mirror file copied over itself, mtime kept":
        shutil.copy2(departements, mirror / "copy")
        os.replace(mirror / "copy", departements)
    elif change == "mirror file added":
        (mirror / "geo" / "communes.json").write_text("[]")
    elif change == "code changed":
        (project / "dbt_project" / "model.sql").write_text("select 2")
    elif change == "setting changed":
        monkeypatch.setenv("TREMPLIN_GATE_MAX_DROPPED_PCT", "7")
    elif change == "warehouse file touched":
        os.utime(warehouse / "warehouse.duckdb", ns=(1, 1))
    elif change == "raw file deleted":
        (warehouse / "raw" / "geo" / "regions.parquet").unlink()
    elif change == "latest moved":
        (warehouse / "exports" / "v2").mkdir()
        (warehouse / "exports" / "latest").unlink()
        (warehouse / "exports" / "latest").symlink_to("v2")
    assert unchanged(project) is None


def test_a_linked_mirror_folder_is_followed(layout, tmp_path):
    mirror, warehouse, project = layout
    elsewhere = tmp_path / "elsewhere" / "rome"
    elsewhere.mkdir(parents=True)
    (elsewhere / "fiches.csv").write_text("a")
    (mirror / "rome").symlink_to(elsewhere, target_is_directory=True)
    record(project)
    (elsewhere / "fiches.csv").write_text("b")  # behind the link: still the mirror's file
    assert unchanged(project) is None


def test_damaged_record_or_inputs_moving_during_the_run_mean_a_run(layout):
    mirror, warehouse, project = layout
    settings = get_settings()
    record(project)
    path = run_state.record_path(settings)
    content = json.loads(path.read_text())
    content["fingerprint"] = run_state.current_state(settings, project).outputs
    content["run_id"] = "tampered"
    path.write_text(json.dumps(content))  # checksum no longer matches
    assert unchanged(project) is None

    before = state(project)
    os.utime(mirror / "geo" / "departements.json", ns=(5, 5))  # a revision lands mid-run
    recorded = run_state.record_run(
        settings, before, run_id="r", warnings=[], fetch_log_from=0, project_root=project
    )
    assert not recorded and not path.exists()
    assert unchanged(project) is None


def test_the_mirror_check_is_noted_in_the_fetch_log(layout):
    mirror, warehouse, project = layout
    settings = get_settings()
    append_record(settings.fetches_log, {"slug": "old", "mode": "mirror", "files": []})
    record(project, fetches=["geo", "rome"])  # only this run's fetches are repeated
    found = unchanged(project)
    assert run_state.note_mirror_check(settings, found) == 2
    noted = read_records(settings.fetches_log)[-2:]
    assert [n["slug"] for n in noted] == ["geo", "rome"]
    assert all(n["new_files"] == [] and n["files"] for n in noted)
    assert all("nothing new since" in n["checked_by"] for n in noted)
    assert unchanged(project) is not None  # the fetch log is not an output
