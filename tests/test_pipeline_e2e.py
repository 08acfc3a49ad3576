"""End to end: `tremplin run` on the embedded mirror, in a temporary warehouse.

Runs the real graph (fetch, parse, Great Expectations, dbt build, export) in process, then
re-runs it to prove idempotence, breaks an input to prove the last good state survives,
and swaps the mirror for another vintage through TREMPLIN_MIRROR.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from assets.foundation.settings import PROJECT_ROOT
from pipelines import cli
from pipelines.sources import source_modules

pytestmark = pytest.mark.slow

MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
ROME = "francetravail_rome"


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (symlinks resolved), by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(monkeypatch, warehouse: Path, mirror: Path = MIRROR, *args: str) -> int:
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror))
    monkeypatch.delenv("TREMPLIN_DUCKDB_PATH", raising=False)
    monkeypatch.delenv("TREMPLIN_MODE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return cli.main(["run", *args])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    with pytest.MonkeyPatch.context() as mp:
        code = run(mp, warehouse)
    assert code == 0
    return warehouse


def latest_manifest(warehouse: Path) -> dict:
    return json.loads((warehouse / "exports" / "latest" / "manifest.json").read_text())


def test_export_has_the_101_departements_and_every_rome_fiche(first_run):
    manifest = latest_manifest(first_run)
    assert manifest["tables"]["departements"]["rows"] == 101
    assert manifest["tables"]["regions"]["rows"] == 18
    mirror_fiches = MIRROR / ROME / "unix_referentiel_code_rome_v460_utf8.csv"
    with mirror_fiches.open(encoding="utf-8") as fh:
        fiches = {row["code_rome"]: row["code_rome_parent"] for row in csv.DictReader(fh)}
    assert manifest["tables"]["job_groups"]["rows"] == len(fiches) == 1584

    latest = first_run / "exports" / "latest"
    deps = [json.loads(line) for line in (latest / "departements.jsonl").open()]
    codes = {d["departementCode"] for d in deps}
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= codes
    assert not codes & {"975", "977", "978", "984", "986", "987", "988", "989", "20"}

    jobs = [json.loads(line) for line in (latest / "job_groups.jsonl").open()]
    assert {j["jobGroupCode"]: j["romeV3Code"] for j in jobs} == fiches
    assert len({j["romeV3Code"] for j in jobs}) == 532


def test_manifest_lists_sources_versions_and_checksums(first_run):
    manifest = latest_manifest(first_run)
    latest = first_run / "exports" / "latest"
    for table in manifest["tables"].values():
        for entry in table["files"].values():
            path = latest / Path(entry["path"]).name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    slugs = {s["slug"] for s in manifest["sources"]}
    assert slugs == {m.SPEC.slug for m in source_modules()}
    synthetic = {s["slug"] for s in manifest["sources"] if s["synthetic"]}
    assert synthetic == {"francetravail_marche_travail", "francetravail_offres"}
    rome_files = next(s for s in manifest["sources"] if s["slug"] == ROME)["files"]
    assert any(f["sha256"].startswith("226cd2af473d") for f in rome_files)
    # The API sources are generated in the embedded mirror: the export says so.
    assert manifest["synthetic"] is True
    assert {"dbt-core", "duckdb", "dagster"} <= set(manifest["versions"])


def test_warehouse_is_queryable_read_only(first_run, monkeypatch, capsys):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(first_run))
    monkeypatch.delenv("TREMPLIN_DUCKDB_PATH", raising=False)
    query = "select rome_version, count(*) as n from dim_job_group group by 1"
    assert cli.main(["sql", query]) == 0
    out = capsys.readouterr().out
    assert "4.60" in out and "1584" in out
    assert cli.main(["sql", "drop table dim_job_group"]) == 2
    assert "read" in capsys.readouterr().err
    with duckdb.connect(str(first_run / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from dim_job_group").fetchall() == [(1584,)]


def test_second_run_lands_nothing_and_keeps_the_export(first_run, monkeypatch):
    landing_before = tree_digest(first_run / "landing")
    manifest_before = latest_manifest(first_run)
    exports_before = sorted(p.name for p in (first_run / "exports").iterdir())
    # --force: through Dagster, although nothing moved (tests/test_noop_rerun.py has both).
    assert run(monkeypatch, first_run, MIRROR, "--force") == 0
    assert tree_digest(first_run / "landing") == landing_before
    manifest_after = latest_manifest(first_run)
    assert manifest_after["content_sha256"] == manifest_before["content_sha256"]
    assert manifest_after["vintage"] == manifest_before["vintage"]
    assert sorted(p.name for p in (first_run / "exports").iterdir()) == exports_before


def broken_mirror(tmp_path: Path) -> Path:
    """The embedded mirror with the ROME fiches file stripped of its code_rome column."""
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    path = mirror / ROME / "unix_referentiel_code_rome_v460_utf8.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(r[1:] for r in rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return mirror


def test_broken_input_fails_clearly_and_keeps_last_good_state(
    first_run, tmp_path, monkeypatch, capsys
):
    latest = first_run / "exports" / "latest"
    target_before = os.readlink(latest)
    export_before = tree_digest(latest.resolve())
    raw_before = tree_digest(first_run / "raw" / ROME)
    warehouse_before = hashlib.sha256((first_run / "warehouse.duckdb").read_bytes()).hexdigest()

    assert run(monkeypatch, first_run, broken_mirror(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "unix_referentiel_code_rome_v460_utf8.csv" in err
    assert "code_rome" in err and "missing column" in err

    assert os.readlink(latest) == target_before
    assert tree_digest(latest.resolve()) == export_before
    published = {k: v for k, v in tree_digest(first_run / "raw" / ROME).items() if "/" not in k}
    assert published == {k: v for k, v in raw_before.items() if "/" not in k}
    assert (first_run / "raw" / ROME / "_rejected" / "referentiel_code_rome.parquet").exists()
    after = hashlib.sha256((first_run / "warehouse.duckdb").read_bytes()).hexdigest()
    assert after == warehouse_before


def next_vintage_mirror(tmp_path: Path) -> Path:
    """The mirror as a later ROME release could look: v461 file names, a column added and
    the columns of the fiches file reordered, one new fiche."""
    mirror = tmp_path / "mirror461"
    shutil.copytree(MIRROR, mirror)
    for src in (mirror / ROME).glob("*.csv"):
        src.rename(src.with_name(src.name.replace("_v460_", "_v461_")))
    fiches = mirror / ROME / "unix_referentiel_code_rome_v461_utf8.csv"
    rows = list(csv.DictReader(fiches.open(encoding="utf-8")))
    new = dict(rows[0], code_rome="A1199", libelle_rome="Fiche ajoutée pour le test")
    rows.append(new)
    columns = ["libelle_rome", "code_rome_parent", "code_rome"]
    columns += [c for c in rows[0] if c not in columns] + ["date_maj"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "date_maj": "2027-01-15"} for r in rows)
    fiches.write_text(out.getvalue(), encoding="utf-8")
    domains = mirror / ROME / "unix_cr_gd_dp_v461_utf8.csv"
    with domains.open("a", encoding="utf-8") as fh:
        fh.write('"A1199","Fiche ajoutée pour le test","A","Agriculture","A11","Engins"\n')
    titles = mirror / ROME / "unix_referentiel_appellation_v461_utf8.csv"
    with titles.open("a", encoding="utf-8") as fh:
        fh.write(
            '"999001","Testeur / Testeuse","Testeur / Testeuse","A1199","","","","","",'
            '"PRINCIPALE","","A1101","N"\n'
        )
    return mirror


def test_another_vintage_through_tremplin_mirror(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    assert run(monkeypatch, warehouse, next_vintage_mirror(tmp_path)) == 0
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        versions = con.sql("select distinct rome_version from dim_job_group").fetchall()
        added = con.sql("select label from dim_job_group where job_group_code = 'A1199'")
        assert versions == [("4.61",)]
        assert added.fetchall() == [("Fiche ajoutée pour le test",)]
    assert latest_manifest(warehouse)["tables"]["job_groups"]["rows"] == 1585
