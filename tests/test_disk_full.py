"""Disk full: a real small filesystem fills up while tremplin writes (docs/RELIABILITY.md).

The warehouse of a good run is copied onto a tmpfs mounted for the test, sized to it plus
some room. The disk is then filled (a filler file written until ENOSPC) before landing,
during raw publication (a tiny tmpfs mounted on the source's raw folder), while dbt
builds its copy of the warehouse and while the export writes its vintage. Each time: the
run fails with an error that says the disk is full and where; no partial file is left;
the last good warehouse and `latest` are intact; and once the filler is removed, the next
run succeeds. Mounting needs root (CAP_SYS_ADMIN): elsewhere the tests skip and say so.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from test_faults import (
    GEO,
    MIRROR,
    assert_nothing_lost,
    changed_mirror,
    digest_tree,
    output_of,
    point_at,
    snapshot,
    start_run,
)

from assets.export.vintages import verify_export
from pipelines import cli

pytestmark = [pytest.mark.slow, pytest.mark.faults]

NO_SPACE = ("no space left on device", "disk is full", "disk full")


def mount_tmpfs(where: Path, size_bytes: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")


def umount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class Filler:
    """Fills a filesystem to its last byte, and frees it again."""

    def __init__(self, mount: Path):
        self.path = mount / f"filler-{uuid.uuid4().hex}"

    def fill(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 1 << 12, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        os.write(fd, block)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def good_state(tmp_path_factory):
    base = tmp_path_factory.mktemp("good-disk") / "warehouse"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, base, MIRROR)
        assert cli.main(["run"]) == 0
    return base


@pytest.fixture
def disk(good_state, tmp_path, monkeypatch):
    """The good state copied onto a fresh tmpfs with room for a run; yields (mount, state)."""
    mount = tmp_path / "disk"
    room = 700 * 2**20
    mount_tmpfs(mount, tree_size(good_state) + room)
    try:
        state = mount / "warehouse"
        shutil.copytree(good_state, state, symlinks=True)
        point_at(monkeypatch, state, MIRROR)
        yield mount, state
    finally:
        umount(mount)


def no_space_said(text: str) -> bool:
    return any(words in text.lower() for words in NO_SPACE)


def assert_no_partial_files(state: Path) -> None:
    """Nothing half-written anywhere: no temporary file of a write-then-rename, no
    building copy of the warehouse, no hidden export directory."""
    leftovers = [
        p
        for p in state.rglob("*")
        if p.name.startswith((".tmp", ".warehouse.duckdb.building"))
        or (p.parent.name in ("exports",) and p.name.startswith(".tmp-"))
        or ".partial" in p.name
    ]
    assert not leftovers, f"partial files left behind: {leftovers}"


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 64 MB tmpfs holding a warehouse where the geography source was ingested."""
    mount = tmp_path / "small-disk"
    mount_tmpfs(mount, 64 * 2**20)
    try:
        state = mount / "warehouse"
        point_at(monkeypatch, state, MIRROR)
        assert cli.main(["ingest", "--source", GEO]) == 0
        yield mount, state
    finally:
        umount(mount)


def digests(state: Path) -> dict[str, dict[str, str]]:
    """Landed files and published raw tables (not the records saying what was validated:
    a failed publication removes its record, so that the next run parses again)."""
    return {
        "landing": digest_tree(state / "landing"),
        "raw": {
            k: v
            for k, v in digest_tree(state / "raw").items()
            if "_rejected" not in k and "_published" not in k
        },
    }


def test_disk_full_while_landing(small_disk, tmp_path, capsys, monkeypatch):
    mount, state = small_disk
    before = digests(state)
    monkeypatch.setenv("TREMPLIN_MIRROR", str(changed_mirror(tmp_path)))
    filler = Filler(mount)
    filler.fill()
    try:
        assert cli.main(["ingest", "--source", GEO]) == 1
        err = capsys.readouterr().err
        assert GEO in err and "departements.json" in err, err
        assert no_space_said(err), err
    finally:
        filler.free()
    assert digests(state) == before, "landing or raw changed"
    assert_no_partial_files(state)
    # Space freed: the next run lands and publishes the new file.
    assert cli.main(["ingest", "--source", GEO]) == 0
    assert digests(state)["raw"] != before["raw"]
    capsys.readouterr()


def test_disk_full_while_publishing_raw(small_disk, tmp_path, capsys, monkeypatch):
    """The source's raw folder sits on its own tiny filesystem, filled up: landing works,
    the raw publication cannot."""
    mount, state = small_disk
    monkeypatch.setenv("TREMPLIN_MIRROR", str(changed_mirror(tmp_path)))
    raw = state / "raw" / GEO
    kept = tmp_path / "raw-kept"
    shutil.copytree(raw, kept)
    shutil.rmtree(raw)
    mount_tmpfs(raw, tree_size(kept) + 256 * 2**10)
    try:
        shutil.copytree(kept, raw, dirs_exist_ok=True)
        before = digests(state)
        filler = Filler(raw)
        filler.fill()
        assert cli.main(["ingest", "--source", GEO]) == 1
        err = capsys.readouterr().err
        assert GEO in err and no_space_said(err), err
        assert "nothing was published" in err, err
        filler.free()
        after = digests(state)
        assert after["raw"] == before["raw"], "published raw tables changed"
        for name, sha in before["landing"].items():
            if not name.endswith("current.json"):
                assert after["landing"].get(name) == sha, f"landed file changed: {name}"
        assert_no_partial_files(state)
        assert cli.main(["ingest", "--source", GEO]) == 0
        assert digests(state)["raw"] != before["raw"]
        capsys.readouterr()
    finally:
        umount(raw)


def fill_when(process: subprocess.Popen, ready, filler: Filler, timeout: float = 600) -> bool:
    """Fill the disk as soon as `ready()` is true while the run is going."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            filler.fill()
            return True
        time.sleep(0.01)
    return False


def test_disk_full_during_dbt_build_then_export_then_freed(disk, tmp_path):
    mount, state = disk
    mirror = changed_mirror(tmp_path)
    env = {"TREMPLIN_MIRROR": str(mirror)}
    filler = Filler(mount)

    # 1. The disk fills while dbt builds its copy of the warehouse.
    before = snapshot(state)
    run = start_run(state, env)
    building = lambda: any(state.glob(".warehouse.duckdb.building*"))  # noqa: E731
    assert fill_when(run, building, filler), "the run ended before dbt started building"
    assert run.wait(timeout=600) == 1, output_of(run)
    log = run.log.read_text()
    assert no_space_said(log), output_of(run)
    filler.free()
    assert_nothing_lost(state, before, landed_new=True, raw_rebuilt=True)
    assert_no_partial_files(state)

    # 2. Freed, then full again while the export writes its vintage.
    before = snapshot(state)
    run = start_run(state, env)
    exporting = lambda: any((state / "exports").glob(".tmp-*"))  # noqa: E731
    assert fill_when(run, exporting, filler), "the run ended before the export started"
    assert run.wait(timeout=600) == 1, output_of(run)
    assert no_space_said(run.log.read_text()), output_of(run)
    filler.free()
    assert_nothing_lost(state, before, warehouse_rebuilt=True, landed_new=True, raw_rebuilt=True)
    assert_no_partial_files(state)

    # 3. Space freed: the next run publishes the new vintage.
    run = start_run(state, env)
    assert run.wait(timeout=600) == 0, output_of(run)
    latest = state / "exports" / "latest"
    assert os.readlink(latest) != before.latest_target
    verify_export(latest)
    assert_no_partial_files(state)
