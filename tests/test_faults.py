"""Fault suite: whatever goes wrong, the error says what happened and nothing good is lost.

Every fault starts from a copy of one good state (a full run on the embedded mirror) and
ends with `assert_nothing_lost`: the published `latest` export is byte-identical and still
verifies, the warehouse opens and holds the last good data, the landing area holds no
partial file, and the raw tables are the last good ones. A recovery step then proves the
next normal operation succeeds. The table of faults is in docs/RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import pytest
from loopback import Reply, closed_port, serve

from assets.export.vintages import verify_export
from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.fetch import fetch_source
from assets.ingest.http import FetchError
from assets.ingest.landing import current_files
from assets.ingest.raw import ParseError
from assets.ingest.spec import Download
from assets.sources import etalab_decoupage_administratif as etalab
from assets.sources import francetravail_rome as rome
from pipelines import cli

pytestmark = [pytest.mark.slow, pytest.mark.faults]

MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
GEO = etalab.SLUG
ROME = rome.SLUG
SECRET = "planted-secret-7f3a9c"


# ------------------------------------------------------------------------- good state


def digest_tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@dataclasses.dataclass
class Snapshot:
    latest_target: str
    export: dict[str, str]
    warehouse_sha: str
    landing: dict[str, str]
    raw: dict[str, str]


def snapshot(warehouse: Path) -> Snapshot:
    latest = warehouse / "exports" / "latest"
    return Snapshot(
        latest_target=os.readlink(latest),
        export=digest_tree(latest.resolve()),
        warehouse_sha=hashlib.sha256((warehouse / "warehouse.duckdb").read_bytes()).hexdigest(),
        landing=digest_tree(warehouse / "landing"),
        raw={k: v for k, v in digest_tree(warehouse / "raw").items() if "_rejected" not in k},
    )


def assert_nothing_lost(
    warehouse: Path,
    before: Snapshot,
    *,
    warehouse_rebuilt: bool = False,
    landed_new: bool = False,
    raw_rebuilt: bool = False,
):
    """`landed_new`: the fault's bytes reached landing (they are what upstream served);
    they must be complete files with their sidecar, and what landed before stays."""
    latest = warehouse / "exports" / "latest"
    assert os.readlink(latest) == before.latest_target, "latest was switched"
    assert digest_tree(latest.resolve()) == before.export, "the published export changed"
    verify_export(latest)
    db = warehouse / "warehouse.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("select count(*) from dim_departement").fetchall() == [(101,)]
        assert con.sql("select count(*) from dim_job_group").fetchall() == [(1584,)]
    if not warehouse_rebuilt:
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before.warehouse_sha
    landing = digest_tree(warehouse / "landing")
    for name in landing:
        parts = Path(name).parts
        assert not any(p.startswith(".") for p in parts), f"partial file in landing: {name}"
        if not name.endswith((".meta.json", "current.json")):
            assert f"{name}.meta.json" in landing, f"landed file without its sidecar: {name}"
            assert landing[name].startswith(Path(name).name.split("__")[1]), name
    for name, sha in before.landing.items():
        if landed_new and name.endswith("current.json"):
            continue
        assert landing.get(name) == sha, f"landed file changed or vanished: {name}"
    if not landed_new:
        assert set(landing) == set(before.landing), "unexpected files in landing"
    if not raw_rebuilt:
        raw = {k: v for k, v in digest_tree(warehouse / "raw").items() if "_rejected" not in k}
        assert raw == before.raw, "published raw tables changed"


@pytest.fixture(scope="module")
def good_state(tmp_path_factory):
    base = tmp_path_factory.mktemp("good") / "warehouse"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, base, MIRROR)
        assert cli.main(["run"]) == 0
    return base


def point_at(mp: pytest.MonkeyPatch, warehouse: Path, mirror: Path) -> None:
    mp.setenv("TREMPLIN_WAREHOUSE_DIR", str(warehouse))
    mp.setenv("TREMPLIN_MIRROR", str(mirror))
    mp.setenv("TREMPLIN_HTTP_RETRIES", "2")
    mp.setenv("TREMPLIN_HTTP_BACKOFF", "0.05")
    mp.setenv("TREMPLIN_HTTP_TIMEOUT", "2")
    for name in ("TREMPLIN_DUCKDB_PATH", "TREMPLIN_MODE", "DAGSTER_HOME"):
        mp.delenv(name, raising=False)


@pytest.fixture
def state(good_state, tmp_path, monkeypatch):
    """A private copy of the good state, with the environment pointing at it."""
    warehouse = tmp_path / "warehouse"
    # Everything tremplin writes is replaced by rename, never rewritten in place, so hard
    # links are a safe and cheap copy; the DuckDB file is copied for real because an
    # analyst's read-write session may checkpoint into it.
    shutil.copytree(good_state, warehouse, symlinks=True, copy_function=os.link)
    db = warehouse / "warehouse.duckdb"
    db.unlink()
    shutil.copy2(good_state / "warehouse.duckdb", db)
    point_at(monkeypatch, warehouse, MIRROR)
    return warehouse


# ------------------------------------------------------------------------ network faults


@pytest.fixture
def server():
    with serve() as running:
        yield running


GEO_FILES = {
    name: (MIRROR / GEO / name).read_bytes() for name in ("departements.json", "regions.json")
}


def live_geo_spec(server, paths: dict[str, str] | None = None):
    paths = paths or {}
    downloads = tuple(
        Download(url=server.url(paths.get(name, f"/{name}")), file_name=name, format="json")
        for name in GEO_FILES
    )
    return dataclasses.replace(etalab.SPEC, downloads=downloads)


def serve_good_geo(server) -> None:
    for name, body in GEO_FILES.items():
        server.route(f"/{name}", Reply(body=body, headers={"Content-Type": "application/json"}))


def live_settings():
    return dataclasses.replace(get_settings(), mode="live")


NETWORK_FAULTS = {
    # id: (replies for /departements.json, expected words in the error, recovers by itself)
    "http_500_then_ok": ([Reply(status=500)], None, True),
    "http_502_then_ok": ([Reply(status=502)], None, True),
    "http_503_then_ok": ([Reply(status=503)], None, True),
    "http_429_retry_after": ([Reply(status=429, headers={"Retry-After": "0"})], None, True),
    "http_503_persistent": ([Reply(status=503)] * 5, "503", False),
    "http_404": ([Reply(status=404, body=b"not found")], "404", False),
    "read_timeout": ([Reply(body=b"[]", delay_s=4)] * 4, "timed out", False),
    "reset_mid_body": ([Reply(body=b"[" + b" " * 50000 + b"]", reset_after=1000)] * 4, "", False),
    "truncated_body": (
        [Reply(body=b'[{"code": "01"}', content_length=400)] * 4,
        "truncated",
        False,
    ),
    "html_error_page": (
        [Reply(body=b"<!DOCTYPE html><html><body>Maintenance</body></html>")],
        "HTML",
        False,
    ),
    "oversize_body": ([Reply(body=b"[" + b"0," * 600_000 + b"0]")], "cap", False),
    "wrong_content": ([Reply(body=b"PK\x03\x04 this is a zip, not JSON")], "json", False),
}


@pytest.mark.parametrize("fault", sorted(NETWORK_FAULTS))
def test_network_fault(fault, state, server, monkeypatch):
    replies, words, recovers = NETWORK_FAULTS[fault]
    serve_good_geo(server)
    body = GEO_FILES["departements.json"]
    good = Reply(body=body, headers={"Content-Type": "application/json"})
    server.route("/departements.json", *replies, good)
    monkeypatch.setenv("TREMPLIN_MAX_DOWNLOAD_MB", "1")
    before = snapshot(state)
    pointer = (state / "landing" / GEO / "current.json").read_bytes()
    spec = live_geo_spec(server)
    if recovers:
        report = fetch_source(spec, live_settings())
        assert {f.file_name for f in report.files} == set(GEO_FILES)
        # Same bytes as the mirror copy: nothing new landed.
        assert not report.new_files
    else:
        with pytest.raises(FetchError) as failure:
            fetch_source(spec, live_settings())
        message = str(failure.value)
        assert GEO in message and "departements.json" in message, message
        assert words.lower() in message.lower(), message
        assert (state / "landing" / GEO / "current.json").read_bytes() == pointer
    # A fault that recovers by retrying lands the file: the pointer then names it.
    assert_nothing_lost(state, before, landed_new=recovers)
    # The next normal fetch succeeds.
    server.route("/departements.json", good)
    assert fetch_source(spec, live_settings()).files


def test_network_connection_refused(state, server):
    before = snapshot(state)
    spec = dataclasses.replace(
        etalab.SPEC,
        downloads=(
            Download(
                f"http://127.0.0.1:{closed_port()}/departements.json", "departements.json", "json"
            ),
        ),
    )
    with pytest.raises(FetchError, match="departements.json"):
        fetch_source(spec, live_settings())
    assert_nothing_lost(state, before)


def test_network_redirect_loop(state, server):
    serve_good_geo(server)
    server.route("/loop", Reply(status=302, headers={"Location": "/loop"}))
    before = snapshot(state)
    with pytest.raises(FetchError, match="redirect"):
        fetch_source(live_geo_spec(server, {"departements.json": "/loop"}), live_settings())
    assert_nothing_lost(state, before)


def test_network_redirect_to_undeclared_host(state, server):
    serve_good_geo(server)
    elsewhere = server.url("/departements.json", host="localhost")
    server.route("/moved", Reply(status=302, headers={"Location": elsewhere}))
    before = snapshot(state)
    with pytest.raises(FetchError, match="localhost"):
        fetch_source(live_geo_spec(server, {"departements.json": "/moved"}), live_settings())
    assert_nothing_lost(state, before)


# --------------------------------------------------------------------------- file faults


def mirror_with(tmp_path: Path, slug: str, name: str, data: bytes | None) -> Path:
    """A copy of the embedded mirror with one file replaced (None: removed)."""
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    target = mirror / slug / name
    if data is None:
        target.unlink()
    else:
        target.write_bytes(data)
    return mirror


def rewrite_lines(path: Path, edit, encoding: str = "utf-8") -> bytes:
    lines = path.read_text(encoding=encoding).splitlines(keepends=True)
    return "".join(edit(lines)).encode(encoding)


FICHES = "unix_referentiel_code_rome_v460_utf8.csv"
MOBILITY = "unix_rubrique_mobilite_v460_utf8.csv"


def _drop_first_column(lines):
    return [line.split(",", 1)[1] for line in lines]


def _rename_code_rome(lines):
    return [lines[0].replace('"code_rome"', '"rome"', 1), *lines[1:]]


def _duplicate_a_key(lines):
    return [*lines, lines[1]]


def _unknown_code(lines):
    return [lines[0], lines[1].replace('"A1101"', '"Z9999"', 1), *lines[2:]]


def _negative_order(lines):
    return [lines[0], lines[1].replace(',"6"', ',"-6"'), *lines[2:]]


def fiches_bytes(edit) -> bytes:
    return rewrite_lines(MIRROR / ROME / FICHES, edit)


def geo_records() -> list[dict]:
    return json.loads(GEO_FILES["departements.json"])


FILE_FAULTS = {
    # id: (slug, file, new bytes or None, words the error must contain)
    "missing_column": (ROME, FICHES, lambda: fiches_bytes(_drop_first_column), "code_rome"),
    "renamed_column": (ROME, FICHES, lambda: fiches_bytes(_rename_code_rome), "code_rome"),
    "wrong_encoding": (
        ROME,
        FICHES,
        lambda: (MIRROR / ROME / FICHES).read_text(encoding="utf-8").encode("utf-16"),
        "expected UTF-8",
    ),
    "empty_file": (ROME, FICHES, lambda: b"", FICHES),
    "header_only": (ROME, FICHES, lambda: fiches_bytes(lambda lines: lines[:1]), "rows"),
    "duplicated_keys": (ROME, FICHES, lambda: fiches_bytes(_duplicate_a_key), "unique"),
    "unknown_codes": (ROME, FICHES, lambda: fiches_bytes(_unknown_code), "Z9999"),
    "negative_counts": (
        ROME,
        MOBILITY,
        lambda: rewrite_lines(MIRROR / ROME / MOBILITY, _negative_order),
        "-6",
    ),
    "file_removed": (ROME, MOBILITY, lambda: None, "unix_rubrique_mobilite"),
    "truncated_json": (
        GEO,
        "departements.json",
        lambda: GEO_FILES["departements.json"][:500],
        "JSON",
    ),
    "json_not_an_array": (GEO, "departements.json", lambda: b'{"code": "01"}', "array"),
    "too_few_departements": (
        GEO,
        "departements.json",
        lambda: json.dumps(geo_records()[:60]).encode(),
        "at least 101",
    ),
    "unknown_zone": (
        GEO,
        "departements.json",
        lambda: json.dumps([{**r, "zone": "outre-mer"} for r in geo_records()]).encode(),
        "zone",
    ),
}


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS))
def test_file_fault(fault, state, tmp_path, monkeypatch, capsys):
    slug, name, make, words = FILE_FAULTS[fault]
    before = snapshot(state)
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror_with(tmp_path, slug, name, make())))
    assert cli.main(["ingest", "--source", slug]) == 1
    err = capsys.readouterr().err
    assert slug in err, err
    assert words.lower() in err.lower(), err
    if fault != "file_removed":
        assert name in err, err
    assert_nothing_lost(state, before, landed_new=True)


def test_file_faults_then_recovery(state, tmp_path, monkeypatch, capsys):
    """Several bad mirrors in a row, then the good one: the next normal run succeeds."""
    for fault in ("missing_column", "truncated_json", "duplicated_keys"):
        slug, name, make, _ = FILE_FAULTS[fault]
        bad = mirror_with(tmp_path / fault, slug, name, make())
        monkeypatch.setenv("TREMPLIN_MIRROR", str(bad))
        assert cli.main(["ingest", "--source", slug]) == 1
    monkeypatch.setenv("TREMPLIN_MIRROR", str(MIRROR))
    before = snapshot(state)
    assert cli.main(["run"]) == 0
    capsys.readouterr()
    latest = state / "exports" / "latest"
    assert os.readlink(latest) == before.latest_target  # same content: not republished
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from dim_region").fetchall() == [(18,)]


def rome_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def land_rome_zip(state: Path, server, body: bytes):
    server.route("/RefRomeCsv.zip", Reply(body=body))
    spec = dataclasses.replace(
        rome.SPEC, downloads=(Download(server.url("/RefRomeCsv.zip"), "RefRomeCsv.zip", "zip"),)
    )
    return fetch_source(spec, live_settings())


def test_corrupted_zip(state, server):
    before = snapshot(state)
    good = rome_zip({f"RefRomeCsv/{p.name}": p.read_bytes() for p in (MIRROR / ROME).iterdir()})
    report = land_rome_zip(state, server, good[: len(good) // 2])
    with pytest.raises((FetchError, ParseError), match="RefRomeCsv.zip"):
        rome.parse(report.files)
    assert_nothing_lost(state, before, landed_new=True)


def test_zip_entry_escaping_its_folder(state, server):
    before = snapshot(state)
    entries = {f"RefRomeCsv/{p.name}": p.read_bytes() for p in (MIRROR / ROME).iterdir()}
    entries["../../evil.csv"] = b"x"
    report = land_rome_zip(state, server, rome_zip(entries))
    with pytest.raises(FetchError, match=r"\.\./\.\./evil\.csv"):
        rome.parse(report.files)
    assert not (state.parent / "evil.csv").exists()
    assert_nothing_lost(state, before, landed_new=True)


def test_corrupted_workbook_magic(state, server):
    """A file announced as XLSX that is not one is refused at download."""
    before = snapshot(state)
    server.route("/data.xlsx", Reply(body=b"this is not a workbook"))
    spec = dataclasses.replace(
        etalab.SPEC, downloads=(Download(server.url("/data.xlsx"), "data.xlsx", "xlsx"),)
    )
    with pytest.raises(FetchError, match="data.xlsx"):
        fetch_source(spec, live_settings())
    assert_nothing_lost(state, before)


# ------------------------------------------------------------------------ process faults


def start_run(warehouse: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "TREMPLIN_WAREHOUSE_DIR": str(warehouse),
        "TREMPLIN_MIRROR": str(MIRROR),
        **(env_extra or {}),
    }
    env.pop("DAGSTER_HOME", None)
    tremplin = Path(sys.executable).with_name("tremplin")
    # Output goes to a file: a pipe nobody reads fills up and stalls the run.
    log = warehouse.parent / f"run-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(tremplin), "run"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    process.log = log
    return process


def output_of(process: subprocess.Popen) -> str:
    return process.log.read_text()[-4000:]


def kill_when(process: subprocess.Popen, ready, timeout: float = 900) -> bool:
    """SIGKILL the run's whole process group as soon as `ready()` is true; False when the
    run ended first. A run still going without `ready()` after `timeout` s is killed and
    fails the test: the bound is generous (a loaded machine is slow, not wrong), and it
    says which of the two happened, unlike a shorter bound that once waited for the run's
    end and reported it as "finished before"."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"the run neither ended nor reached the awaited point in {timeout:.0f} s")
        time.sleep(0.005)
    return False


def changed_mirror(tmp_path: Path) -> Path:
    """The mirror with one département renamed, so that a run publishes a new export."""
    records = geo_records()
    records[0]["nom"] = "Ain (renommé)"
    return mirror_with(tmp_path, GEO, "departements.json", json.dumps(records).encode())


def test_sigkill_during_dbt_build(state, tmp_path):
    before = snapshot(state)
    process = start_run(state, {"TREMPLIN_MIRROR": str(changed_mirror(tmp_path))})
    building = lambda: any(state.glob(".warehouse.duckdb.building*"))  # noqa: E731
    assert kill_when(process, building), "the run ended before dbt started building"
    # The new vintage landed and passed its contract (raw is rebuilt); the warehouse and
    # the export must still be the last good ones.
    assert_nothing_lost(state, before, landed_new=True, raw_rebuilt=True)
    # The next normal run succeeds and cleans the leftover building copy.
    done = start_run(state)
    assert done.wait(timeout=400) == 0, output_of(done)
    assert not list(state.glob(".warehouse.duckdb.building*"))


def test_sigkill_during_export(state, tmp_path):
    mirror = changed_mirror(tmp_path)
    exporting = lambda: any((state / "exports").glob(".tmp-*"))  # noqa: E731
    before = snapshot(state)
    process = start_run(state, {"TREMPLIN_MIRROR": str(mirror)})
    if not kill_when(process, exporting):
        pytest.fail("the export finished before it could be interrupted")
    assert_nothing_lost(state, before, warehouse_rebuilt=True, landed_new=True, raw_rebuilt=True)
    done = start_run(state, {"TREMPLIN_MIRROR": str(mirror)})
    assert done.wait(timeout=400) == 0, output_of(done)
    assert os.readlink(state / "exports" / "latest") != before.latest_target
    assert not list((state / "exports").glob(".tmp-*"))


def test_sigkill_at_random_points_never_changes_latest(state, tmp_path):
    mirror = changed_mirror(tmp_path)
    rng = random.Random(20261125)
    for delay in sorted(rng.uniform(2.0, 15.0) for _ in range(2)):
        before = snapshot(state)
        process = start_run(state, {"TREMPLIN_MIRROR": str(mirror)})
        started = time.monotonic()
        killed = kill_when(process, lambda d=delay, t=started: time.monotonic() - t > d)
        if not killed:  # the run completed: the new export is a legitimate one
            verify_export(state / "exports" / "latest")
            return
        latest = state / "exports" / "latest"
        assert os.readlink(latest) == before.latest_target
        assert digest_tree(latest.resolve()) == before.export
        verify_export(latest)


def test_analyst_session_holding_the_warehouse(state):
    """An analyst's open DuckDB session (read-write lock) does not block a run, and keeps
    seeing the data it opened."""
    before = snapshot(state)
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        "print(con.sql('select count(*) from dim_departement').fetchall(), flush=True); "
        "time.sleep(120)"
    )
    analyst = subprocess.Popen(
        [sys.executable, "-c", code, str(state / "warehouse.duckdb")], stdout=subprocess.PIPE
    )
    try:
        assert analyst.stdout.readline().strip() == b"[(101,)]"
        run = start_run(state)
        assert run.wait(timeout=400) == 0, output_of(run)
    finally:
        analyst.kill()
        analyst.wait()
    with duckdb.connect(str(state / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from dim_departement").fetchall() == [(101,)]
    assert os.readlink(state / "exports" / "latest") == before.latest_target


def chattr(path: Path, flag: str) -> bool:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    return done.returncode == 0


def test_export_directory_read_only(state, tmp_path, monkeypatch, capsys):
    exports = state / "exports"
    if not chattr(exports, "+i"):
        pytest.skip("chattr +i unsupported here: cannot make a directory read-only for root")
    try:
        before = snapshot(state)
        monkeypatch.setenv("TREMPLIN_MIRROR", str(changed_mirror(tmp_path)))
        assert cli.main(["run"]) == 1
        err = capsys.readouterr().err
        assert "exports" in err and ("read-only" in err.lower() or "not permitted" in err.lower())
    finally:
        chattr(exports, "-i")
    assert_nothing_lost(state, before, warehouse_rebuilt=True, landed_new=True, raw_rebuilt=True)


def test_landing_directory_read_only(state, tmp_path, monkeypatch, capsys):
    slug_dir = state / "landing" / GEO
    if not chattr(slug_dir, "+i"):
        pytest.skip("chattr +i unsupported here")
    try:
        before = snapshot(state)
        monkeypatch.setenv("TREMPLIN_MIRROR", str(changed_mirror(tmp_path)))
        assert cli.main(["ingest", "--source", GEO]) == 1
        err = capsys.readouterr().err
        assert GEO in err and "departements.json" in err, err
    finally:
        chattr(slug_dir, "-i")
    assert_nothing_lost(state, before)


# ------------------------------------------------------------------------------ security


def test_planted_secret_never_appears(state, tmp_path, capfd):
    env = {
        "FRANCE_TRAVAIL_CLIENT_ID": "client-" + SECRET,
        "FRANCE_TRAVAIL_CLIENT_SECRET": SECRET,
        "TREMPLIN_MIRROR": str(changed_mirror(tmp_path)),
    }
    run = start_run(state, env)
    assert run.wait(timeout=400) == 0, output_of(run)
    assert SECRET not in run.log.read_text()
    for path in state.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), f"secret found in {path}"


@pytest.mark.parametrize(
    "statement",
    [
        "drop table dim_departement",
        "insert into dim_region select * from dim_region",
        "copy dim_region to '/tmp/tremplin-leak.csv'",
        "attach '/tmp/tremplin-other.duckdb' as other",
        "create table t as select 1",
    ],
)
def test_sql_is_read_only(state, statement, capsys):
    before = snapshot(state)
    assert cli.main(["sql", statement]) == 2
    assert "only reads" in capsys.readouterr().err
    assert not Path("/tmp/tremplin-leak.csv").exists()
    assert_nothing_lost(state, before)


def test_current_files_survive_a_failed_fetch(state, server):
    """The current pointer keeps naming a complete, consistent set after a failure."""
    before = current_files(state / "landing", GEO)
    server.route("/departements.json", Reply(status=404))
    server.route("/regions.json", Reply(body=GEO_FILES["regions.json"]))
    with pytest.raises(FetchError):
        fetch_source(live_geo_spec(server), live_settings())
    assert current_files(state / "landing", GEO) == before
