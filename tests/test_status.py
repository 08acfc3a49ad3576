"""`tremplin status`: per source last fetch, last change, vintage, next release, state.

Read from the landing area and the run logs only (no Dagster instance), so a source made
deliberately stale (old fetch record) or failing (a recorded failure) shows as such.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.fetch import fetch_source
from assets.ingest.status import append_record, collect_status, max_age, next_release, now_iso
from assets.sources import etalab_decoupage_administratif, francetravail_rome
from pipelines import cli

ETALAB = etalab_decoupage_administratif.SPEC
ROME = francetravail_rome.SPEC
PARIS_TICK = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # Monday 06:00 in Paris


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    for spec in (ETALAB, ROME):
        shutil.copytree(PROJECT_ROOT / "warehouse" / "mirror" / spec.slug, mirror / spec.slug)
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror))
    monkeypatch.setenv("TREMPLIN_AUTOMATION", "")
    monkeypatch.delenv("TREMPLIN_MODE", raising=False)
    settings = get_settings()
    for spec in (ETALAB, ROME):
        fetch_source(spec, settings, log=logging.getLogger("test"))
    return settings


def fetched(settings, slug: str, when: datetime) -> None:
    append_record(settings.fetches_log, {"slug": slug, "fetched_at": now_iso(when)})


def test_calendar_of_the_current_sources():
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert next_release(ROME, now) == PARIS_TICK
    assert max_age(ROME, now) == ROME.max_age or max_age(ROME, now) >= timedelta(days=7)
    assert max_age(ETALAB, now) >= timedelta(days=7)


def test_a_deliberately_stale_source_is_reported_stale(warehouse, capsys):
    now = datetime.now(UTC)
    fetched(warehouse, ROME.slug, now - timedelta(hours=1))
    fetched(warehouse, ETALAB.slug, now - max_age(ETALAB, now) - timedelta(days=1))
    # Only its old fetch record counts: landing wrote nothing newer than that... except
    # the files themselves, landed just now, which are the last *change*.
    rows = {r.slug: r for r in collect_status([ROME, ETALAB], warehouse)}
    assert rows[ROME.slug].state == "ok"
    assert rows[ETALAB.slug].state == "stale"
    assert "max age" in rows[ETALAB.slug].detail

    code = cli.main(["status", ROME.slug, ETALAB.slug])
    out = capsys.readouterr().out
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith(ETALAB.slug))
    assert " stale " in line
    assert next(x for x in out.splitlines() if x.startswith(ROME.slug)).split()[1] == "ok"
    assert "460" in out, "ROME vintage read from the file names"


def test_a_recorded_failure_marks_the_source_failing_until_a_good_fetch(warehouse, capsys):
    now = datetime.now(UTC)
    for spec in (ROME, ETALAB):
        fetched(warehouse, spec.slug, now - timedelta(hours=2))
    append_record(
        warehouse.failures_log,
        {
            "failed_at": now_iso(now - timedelta(hours=1)),
            "run_id": "0123456789abcdef",
            "sources": [ROME.slug],
            "steps": [{"step": "francetravail_rome__raw", "error": "contract failed: code_rome"}],
        },
    )
    assert cli.main(["status", "--json", ROME.slug, ETALAB.slug]) == 1
    rows = {r["slug"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[ROME.slug]["state"] == "failing"
    assert "contract failed" in rows[ROME.slug]["detail"]
    assert rows[ETALAB.slug]["state"] == "ok"
    assert rows[ROME.slug]["next_release"] and rows[ROME.slug]["last_change"]

    fetched(warehouse, ROME.slug, now)
    assert cli.main(["status", ROME.slug, ETALAB.slug]) == 0


def test_never_fetched_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path))
    monkeypatch.setenv("TREMPLIN_AUTOMATION", "")
    [row] = collect_status([ETALAB], get_settings())
    assert (row.state, row.last_fetch, row.detail) == ("stale", None, "never fetched")


def test_status_json_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`tremplin status --json | head`: when the reader is gone, no BrokenPipeError traceback."""
    env = {**os.environ, "TREMPLIN_WAREHOUSE_DIR": str(tmp_path)}
    env.pop("TREMPLIN_DUCKDB_PATH", None)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already exited: every write fails with EPIPE
    try:
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("tremplin")), "status", "--json"],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr and "BrokenPipe" not in completed.stderr
