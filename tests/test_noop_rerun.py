"""A no-op re-run skips parse, dbt build and export; any change makes the work run again.

The end-to-end tests run the real CLI (`tremplin run`: Dagster in process, Great
Expectations, dbt on a DuckDB file, export) on the embedded mirror. One good run is made
once, at a fixed path, and copied aside; every test restores that copy *at the same path*
with mtimes kept, so each starts from a state where a re-run has nothing to do (the staging
views name raw files by absolute path, so a warehouse at another path is rightly rebuilt).
The unit tests at the top pin down the records and fingerprints themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from diag_warehouse import make_warehouse, run_sql

from assets.export import writing
from assets.export.gate import GATE_CHECK, GatePolicy
from assets.export.publish import INPUTS_RECORD, export_fingerprint, publish_export
from assets.export.tables import EXPORT_TABLES
from assets.export.vintages import promote_vintage
from assets.foundation.fingerprint import read_record, write_record
from assets.foundation.settings import DBT_PROJECT_DIR, PROJECT_ROOT, HeadlineThreshold
from assets.ingest.factory import CONTRACT_CHECK, raw_record_path
from assets.ingest.status import read_records
from pipelines import cli
from pipelines import dbt as tremplin_dbt
from pipelines.dbt import build_record_path, dbt_project_digest, raw_files_state
from pipelines.sources import source_modules

MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
ROME = "francetravail_rome"
GEO = "etalab_decoupage_administratif"
EXPORT_KEY = "exports/diagnostic_tables"


# ------------------------------------------------------------------------ records (fast)


def test_a_record_round_trips_and_a_damaged_one_counts_as_absent(tmp_path):
    path = tmp_path / "state" / "r.json"
    written = write_record(path, kind="raw", fingerprint="f" * 64, tables={"t": {"rows": 3}})
    assert read_record(path, kind="raw") == written
    assert not [p for p in path.parent.iterdir() if p.name != "r.json"], "temporary file left"
    assert read_record(path, kind="dbt_build") is None  # another step's record

    tampered = json.loads(path.read_text())
    tampered["tables"]["t"]["rows"] = 4  # valid JSON, but not what was recorded
    path.write_text(json.dumps(tampered))
    assert read_record(path, kind="raw") is None

    for damage in (b"", b"{", b"\x00\xff garbage", b"[]", b'{"format": 1}'):
        path.write_bytes(damage)
        assert read_record(path, kind="raw") is None
    path.unlink()
    assert read_record(path, kind="raw") is None


def test_raw_state_covers_published_parquet_only(tmp_path):
    raw = tmp_path / "raw"
    for name in (
        "geo/regions.parquet",
        "bmo/projects/2024.parquet",
        "geo/_rejected/regions.parquet",
        "geo/_staging/x.parquet",
        "geo/_published.json",
        "bmo/_published/2024.json",
        "geo/.regions.parquet.1234.tmp",
        "geo/.hidden.parquet",
    ):
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes(b"x")
    assert [entry[0] for entry in raw_files_state(raw)] == [
        "bmo/projects/2024.parquet",
        "geo/regions.parquet",
    ]
    before = raw_files_state(raw)
    os.utime(raw / "geo/regions.parquet", ns=(1, 1))
    assert raw_files_state(raw) != before


def test_project_digest_follows_models_not_dbt_outputs(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    before = dbt_project_digest(project)
    (project / "target").mkdir()
    (project / "target" / "run_results.json").write_text("{}")
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("log")
    assert dbt_project_digest(project) == before
    model = next((project / "models" / "marts").glob("*.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    assert dbt_project_digest(project) != before


# ----------------------------------------------------------------------- export (fast)


OFFERS = HeadlineThreshold("local_diagnosis", "market__offers_per_10_job_seekers", "median", 25)
POLICY = GatePolicy(max_dropped_pct=5.0, headlines=(OFFERS,))
NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def _export(db: Path, out: Path, hours: int = 0, fingerprint: str | None = None):
    fingerprint = fingerprint or export_fingerprint(db, EXPORT_TABLES, gate=POLICY)
    return publish_export(
        db, out, now=NOW + dt.timedelta(hours=hours), gate=POLICY, inputs_fingerprint=fingerprint
    )


def _no_table_reads(monkeypatch):
    """Fail on any read of a table. (The code digest follows patched globals, so the
    fingerprint is computed before patching.)"""

    def refuse(*args, **kwargs):
        raise AssertionError("the warehouse tables were read again")

    monkeypatch.setattr(writing, "write_table", refuse)


def test_export_with_unchanged_inputs_reads_nothing(tmp_path, monkeypatch):
    db = make_warehouse(tmp_path / "warehouse.duckdb")
    out = tmp_path / "exports"
    first = _export(db, out)
    assert first.changed and not first.unchanged_inputs
    fingerprint = export_fingerprint(db, EXPORT_TABLES, gate=POLICY)
    with monkeypatch.context() as mp:
        _no_table_reads(mp)
        again = _export(db, out, hours=1, fingerprint=fingerprint)
    assert again.unchanged_inputs and not again.changed and not again.held
    assert again.vintage == first.vintage

    # A damaged record, or a warehouse replaced by dbt (new mtime): the export runs and
    # finds the content unchanged, as before.
    (out / INPUTS_RECORD).write_text("{not json")
    third = _export(db, out, hours=2)
    assert not third.unchanged_inputs and not third.changed and third.vintage == first.vintage
    os.utime(db, ns=(time.time_ns(), time.time_ns()))
    fourth = _export(db, out, hours=3)
    assert not fourth.unchanged_inputs and fourth.vintage == first.vintage


def test_held_vintage_stays_held_without_reading_and_acceptance_is_seen(tmp_path, monkeypatch):
    db = make_warehouse(tmp_path / "warehouse.duckdb")
    out = tmp_path / "exports"
    first = _export(db, out)
    run_sql(db, "delete from diag_local_diagnosis where departement_code = '2A'")
    held = _export(db, out, hours=1)
    assert held.held and os.readlink(out / "latest") == first.vintage
    fingerprint = export_fingerprint(db, EXPORT_TABLES, gate=POLICY)
    with monkeypatch.context() as mp:
        _no_table_reads(mp)
        again = _export(db, out, hours=2, fingerprint=fingerprint)
    assert again.unchanged_inputs and again.held
    assert again.vintage == held.vintage and again.hold_reasons == held.hold_reasons

    promote_vintage(out, held.vintage)  # `tremplin accept`
    after = _export(db, out, hours=3)  # `latest` moved: not the recorded state any more
    assert not after.unchanged_inputs and not after.held and after.vintage == held.vintage


# --------------------------------------------------------------------- end to end (slow)


@dataclass
class Outcome:
    code: int
    results: list = field(default_factory=list)

    def materializations(self) -> dict[str, dict]:
        found = {}
        for result in self.results:
            for event in result.get_asset_materialization_events():
                mat = event.step_materialization_data.materialization
                found[mat.asset_key.to_user_string()] = {
                    k: getattr(v, "value", v) for k, v in mat.metadata.items()
                }
        return found

    def checks(self) -> list:
        return [
            event.event_specific_data
            for result in self.results
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]

    def steps(self) -> set[str]:
        return {
            event.step_key
            for result in self.results
            for event in result.all_events
            if event.event_type_value == "STEP_SUCCESS"
        }


def raw_keys() -> set[str]:
    return {f"{m.SPEC.slug}/{t}" for m in source_modules() for t in m.TABLES}


def split(mats: dict[str, dict]) -> tuple[dict, dict, dict]:
    """(raw tables, dbt models, export) materializations of a run."""
    raw = {k: v for k, v in mats.items() if k in raw_keys()}
    export = {k: v for k, v in mats.items() if k == EXPORT_KEY}
    models = {k: v for k, v in mats.items() if "/" not in k}
    return raw, models, export


def raw_and_models_unchanged(outcome: Outcome) -> dict:
    """Assert a successful run that redid no raw table and no model; its export's
    materialization metadata, for the caller to check."""
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert all(m.get("unchanged") for m in [*raw.values(), *models.values()])
    return export[EXPORT_KEY]


def run(
    monkeypatch, warehouse: Path, mirror: Path = MIRROR, args: tuple[str, ...] = ("run",)
) -> Outcome:
    """`tremplin run`, keeping the Dagster results of the runs it makes."""
    import pipelines.launch

    outcome = Outcome(code=-1)
    original = pipelines.launch.execute_job

    def keep(*args, **kwargs):
        result = original(*args, **kwargs)
        outcome.results.append(result)
        return result

    # The CLI runs every job through pipelines.launch.execute_job.
    monkeypatch.setattr(pipelines.launch, "execute_job", keep)
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror))
    for name in ("TREMPLIN_DUCKDB_PATH", "TREMPLIN_MODE", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    outcome.code = cli.main(list(args))
    monkeypatch.setattr(pipelines.launch, "execute_job", original)
    return outcome


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("noop")
    with pytest.MonkeyPatch.context() as mp:
        outcome = run(mp, root / "warehouse")
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert raw and models and export
    assert not any(m.get("unchanged") for m in [*raw.values(), *models.values()])
    shutil.copytree(root / "warehouse", root / "good", symlinks=True)  # mtimes kept
    return root


@pytest.fixture
def warehouse(base):
    """The good state, restored at the path it was built at."""
    work = base / "warehouse"
    shutil.rmtree(work)
    shutil.copytree(base / "good", work, symlinks=True)
    return work


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def latest_vintage(warehouse: Path) -> str:
    return os.readlink(warehouse / "exports" / "latest")


def changed_geo_mirror(tmp_path: Path) -> Path:
    """The embedded mirror with one département renamed (a new upstream release)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for source in MIRROR.iterdir():
        if source.is_dir() and source.name != GEO:
            (mirror / source.name).symlink_to(source, target_is_directory=True)
    shutil.copytree(MIRROR / GEO, mirror / GEO)
    path = mirror / GEO / "departements.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    records[0]["nom"] = f"{records[0]['nom']} (renommé)"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return mirror


@pytest.mark.slow
def test_noop_rerun_skips_parse_build_and_export(warehouse, monkeypatch, capsys):
    db = warehouse / "warehouse.duckdb"
    db_state = (db.stat().st_mtime_ns, file_sha(db))
    vintage = latest_vintage(warehouse)
    listing = sorted(p.name for p in (warehouse / "exports").iterdir())
    raw_before = {p: p.stat().st_mtime_ns for p in (warehouse / "raw").rglob("*.parquet")}

    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert set(raw) == raw_keys()
    assert all(m.get("unchanged") is True for m in raw.values()), raw
    assert len(models) >= 40 and all(m.get("unchanged") is True for m in models.values())
    assert export[EXPORT_KEY]["unchanged"] is True
    assert export[EXPORT_KEY]["vintage"] == vintage

    checks = outcome.checks()
    contracts = [c for c in checks if c.check_name == CONTRACT_CHECK]
    assert len(contracts) == len(raw_keys())
    assert all(c.passed and "inputs unchanged since" in c.description for c in contracts)
    dbt_checks = [c for c in checks if c.check_name not in (CONTRACT_CHECK, GATE_CHECK)]
    assert dbt_checks and all(c.description.startswith("not re-run") for c in dbt_checks)
    assert all(c.passed for c in dbt_checks if c.severity.value == "ERROR")
    gate = [c for c in checks if c.check_name == GATE_CHECK]
    assert len(gate) == 1 and gate[0].passed

    assert (db.stat().st_mtime_ns, file_sha(db)) == db_state, "the warehouse was rebuilt"
    assert latest_vintage(warehouse) == vintage
    assert sorted(p.name for p in (warehouse / "exports").iterdir()) == listing
    assert {p: p.stat().st_mtime_ns for p in (warehouse / "raw").rglob("*.parquet")} == (
        raw_before
    ), "a raw table was published again"
    # Partitioned sources are recorded per period.
    assert raw_record_path(warehouse / "raw", "francetravail_bmo", "2024").is_file()
    # The summary counts the tables but does not re-read the staging views; the console
    # shows a line per layer, the run's log file every relation.
    out = capsys.readouterr().out
    assert "(unchanged)" in out and "views not re-counted" in out
    listing = Path(out.split("log:")[-1].split()[0]).read_text().split("warehouse relations")[-1]
    assert "dim_departement" in listing
    assert "stg_francetravail_offres__offers" not in listing


@pytest.mark.slow
def test_a_rerun_with_nothing_new_starts_no_dagster_run(warehouse, monkeypatch, capsys):
    # The restored copy is not the warehouse the last run left (new inodes): a Dagster run.
    first = run(monkeypatch, warehouse)
    raw_and_models_unchanged(first)
    capsys.readouterr()
    fetch_log = warehouse / "runs" / "fetches.jsonl"
    fetched = len(read_records(fetch_log))
    db = warehouse / "warehouse.duckdb"
    db_state = (db.stat().st_mtime_ns, file_sha(db))

    again = run(monkeypatch, warehouse)
    assert again.code == 0 and again.results == [], "a Dagster run was started"
    out = capsys.readouterr().out
    assert "nothing new since run" in out and "(unchanged)" in out
    assert f"-> {latest_vintage(warehouse)}" in out
    assert (db.stat().st_mtime_ns, file_sha(db)) == db_state
    # `tremplin status` sees every source's mirror checked just now.
    noted = read_records(fetch_log)[fetched:]
    assert {n["slug"] for n in noted} == {m.SPEC.slug for m in source_modules()}
    assert all(n["new_files"] == [] and n["checked_by"] for n in noted)

    forced = run(monkeypatch, warehouse, args=("run", "--force"))
    assert forced.results and raw_and_models_unchanged(forced)["unchanged"] is True
    # Anything new in the warehouse directory (here a stray file): Dagster runs again.
    (warehouse / "notes.txt").write_text("an analyst's file", encoding="utf-8")
    moved = run(monkeypatch, warehouse)
    assert moved.code == 0 and moved.results


@pytest.mark.slow
def test_damaged_raw_record_reparses_that_source(warehouse, monkeypatch):
    record = raw_record_path(warehouse / "raw", ROME)
    content = json.loads(record.read_text())
    first = sorted(content["tables"])[0]
    content["tables"][first]["rows"] += 1  # tampered: the checksum no longer matches
    record.write_text(json.dumps(content))
    geo_record = raw_record_path(warehouse / "raw", GEO)
    geo_record.write_bytes(b"\x00garbage")

    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, _ = split(outcome.materializations())
    redone = {k for k, m in raw.items() if not m.get("unchanged")}
    assert redone == {k for k in raw_keys() if k.startswith((f"{ROME}/", f"{GEO}/"))}
    # Republished tables have new mtimes: dbt must build on them.
    assert not any(m.get("unchanged") for m in models.values())
    assert read_record(record, kind="raw") is not None
    assert read_record(geo_record, kind="raw") is not None


@pytest.mark.slow
def test_deleted_raw_file_is_published_again(warehouse, monkeypatch):
    table = warehouse / "raw" / ROME / "referentiel_code_rome.parquet"
    table.unlink()
    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, _ = split(outcome.materializations())
    assert not raw[f"{ROME}/referentiel_code_rome"]["unchanged"]
    assert raw[f"{GEO}/regions"]["unchanged"]
    assert table.is_file()
    assert not any(m.get("unchanged") for m in models.values())


@pytest.mark.slow
def test_full_refresh_rebuilds_although_nothing_changed(warehouse, monkeypatch):
    before = (warehouse / "warehouse.duckdb").stat().st_mtime_ns
    outcome = run(monkeypatch, warehouse, args=("run", "--full-refresh"))
    assert outcome.code == 0
    raw, models, _ = split(outcome.materializations())
    assert all(m.get("unchanged") for m in raw.values())
    assert "int_offers__offers" in models
    assert not any(m.get("unchanged") for m in models.values())
    assert (warehouse / "warehouse.duckdb").stat().st_mtime_ns != before


@pytest.mark.slow
def test_damaged_build_record_rebuilds(warehouse, monkeypatch):
    # Parsable but not a valid record (no checksum); a deleted one is the first run's case.
    record = build_record_path(warehouse / "warehouse.duckdb")
    record.write_text('{"format": 1, "kind": "dbt_build", "fingerprint": "x"}')
    vintage = latest_vintage(warehouse)
    before = (warehouse / "warehouse.duckdb").stat().st_mtime_ns

    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert all(m.get("unchanged") for m in raw.values())
    assert models and not any(m.get("unchanged") for m in models.values())
    assert (warehouse / "warehouse.duckdb").stat().st_mtime_ns != before
    # A rebuilt warehouse is exported again; the same content keeps the same vintage.
    assert not export[EXPORT_KEY]["unchanged"] and not export[EXPORT_KEY]["changed"]
    assert latest_vintage(warehouse) == vintage
    assert read_record(record, kind="dbt_build") is not None


@pytest.mark.slow
def test_warehouse_replaced_by_an_older_copy_is_rebuilt(warehouse, monkeypatch):
    db = warehouse / "warehouse.duckdb"
    older = warehouse / "older.duckdb"
    shutil.copyfile(db, older)
    with duckdb.connect(str(older)) as con:
        con.execute("drop table dim_region")
    os.utime(older, ns=(db.stat().st_atime_ns, db.stat().st_mtime_ns - 86_400 * 10**9))
    os.replace(older, db)

    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert all(m.get("unchanged") for m in raw.values())
    assert models and not any(m.get("unchanged") for m in models.values())
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from dim_region").fetchone()[0] == 18
    assert not export[EXPORT_KEY]["unchanged"]


@pytest.mark.slow
def test_changed_dbt_project_rebuilds(warehouse, monkeypatch, tmp_path):
    # The repository's dbt project is shared: the change is made in a copy, which the
    # fingerprint is pointed at (the build itself still runs the real project).
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "marts" / "dim_region.sql"
    model.write_text(model.read_text() + "\n-- a changed model\n")
    monkeypatch.setattr(tremplin_dbt, "DBT_PROJECT_DIR", project)

    outcome = run(monkeypatch, warehouse)
    assert outcome.code == 0
    raw, models, _ = split(outcome.materializations())
    assert all(m.get("unchanged") for m in raw.values())
    assert models and not any(m.get("unchanged") for m in models.values())


@pytest.mark.slow
def test_damaged_export_record_exports_again(warehouse, monkeypatch):
    (warehouse / "exports" / INPUTS_RECORD).write_text("garbage")
    vintage = latest_vintage(warehouse)
    export = raw_and_models_unchanged(run(monkeypatch, warehouse))
    assert not export["unchanged"] and not export["changed"]
    assert latest_vintage(warehouse) == vintage


@pytest.mark.slow
def test_changed_landed_file_reparses_rebuilds_and_exports_then_skips(
    warehouse, monkeypatch, tmp_path
):
    mirror = changed_geo_mirror(tmp_path)
    vintage = latest_vintage(warehouse)
    outcome = run(monkeypatch, warehouse, mirror)
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    redone = {k for k, m in raw.items() if not m.get("unchanged")}
    assert redone == {k for k in raw_keys() if k.startswith(f"{GEO}/")}
    assert models and not any(m.get("unchanged") for m in models.values())
    assert export[EXPORT_KEY]["changed"] and latest_vintage(warehouse) != vintage

    # Nothing moved since: no Dagster run; forced, every step finds its inputs unchanged.
    again = run(monkeypatch, warehouse, mirror)
    assert again.code == 0 and again.results == []
    forced = run(monkeypatch, warehouse, mirror, args=("run", "--force"))
    assert raw_and_models_unchanged(forced)["unchanged"]


@pytest.mark.slow
def test_rejected_publication_records_nothing(warehouse, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for source in MIRROR.iterdir():
        if source.is_dir() and source.name != ROME:
            (mirror / source.name).symlink_to(source, target_is_directory=True)
    shutil.copytree(MIRROR / ROME, mirror / ROME)
    fiches = mirror / ROME / "unix_referentiel_code_rome_v460_utf8.csv"
    lines = fiches.read_text(encoding="utf-8").splitlines(keepends=True)
    fiches.write_text(lines[0].replace("code_rome", "code_romeo", 1) + "".join(lines[1:]))
    record = raw_record_path(warehouse / "raw", ROME)
    before = record.read_bytes()
    build_before = build_record_path(warehouse / "warehouse.duckdb").read_bytes()

    assert run(monkeypatch, warehouse, mirror).code == 1
    assert record.read_bytes() == before, "a rejected publication changed the record"
    assert build_record_path(warehouse / "warehouse.duckdb").read_bytes() == build_before

    # Back to the good files: what is published is what they validated into, so
    # nothing needs redoing.
    assert raw_and_models_unchanged(run(monkeypatch, warehouse))["unchanged"]


@pytest.mark.slow
def test_run_killed_during_the_build_leaves_no_record_saying_done(warehouse, monkeypatch, tmp_path):
    mirror = changed_geo_mirror(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        "TREMPLIN_WAREHOUSE_DIR": str(warehouse),
        "TREMPLIN_MIRROR": str(mirror),
    }
    env.pop("TREMPLIN_DUCKDB_PATH", None)
    log = tmp_path / "killed.log"
    tremplin = Path(sys.executable).with_name("tremplin")
    with log.open("w") as out:  # a file, never an unread pipe
        process = subprocess.Popen(
            [str(tremplin), "run"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(warehouse.glob(".warehouse.duckdb.building*")):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    assert read_record(build_record_path(warehouse / "warehouse.duckdb"), kind="dbt_build") is None

    outcome = run(monkeypatch, warehouse, mirror)
    assert outcome.code == 0
    raw, models, export = split(outcome.materializations())
    assert all(m.get("unchanged") for m in raw.values())  # published before the kill
    assert models and not any(m.get("unchanged") for m in models.values())
    assert export[EXPORT_KEY]["changed"]
    assert not list(warehouse.glob(".warehouse.duckdb.building*"))
