"""The landing area: immutability, mirror and live fetches, and reading members back."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopback import Recorded, Reply, serve

from assets.foundation.settings import PROJECT_ROOT, Settings
from assets.ingest import fetch, landing
from assets.ingest.fetch import PER_FILE_LOG_LIMIT, fetch_source
from assets.ingest.http import FetchError
from assets.ingest.landing import (
    LandedFile,
    LandingWriteError,
    NotFetchedError,
    current_files,
    land_file,
    landed_history,
)
from assets.ingest.members import iter_members
from assets.ingest.spec import Download, SourceSpec

SLUG = "demo_source"
ROME_CSV = b"code_rome;libelle\nA1101;Conduite d'engins agricoles\n"
APPELLATION_CSV = b"code_ogr;libelle\n11;Abatteur\n"


@pytest.fixture
def server():
    with serve() as running:
        yield running


def settings_for(tmp_path: Path, mode: str) -> Settings:
    return Settings(
        warehouse_dir=tmp_path / "warehouse",
        mirror_dir=tmp_path / "mirror",
        mode=mode,
        duckdb_path=tmp_path / "warehouse" / "warehouse.duckdb",
        http_timeout_s=5,
        max_download_bytes=10 * 2**20,
    )


def make_spec(downloads: tuple[Download, ...], patterns: tuple[str, ...] = ()) -> SourceSpec:
    return SourceSpec(
        slug=SLUG,
        publisher="Demo publisher",
        title="Demo dataset",
        landing_page="https://example.org/demo",
        licence="Licence Ouverte 2.0",
        cadence="yearly",
        downloads=downloads,
        mirror_patterns=patterns,
    )


def data_files(directory: Path) -> list[str]:
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and not p.name.endswith(".meta.json") and p.name != "current.json"
    )


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- land_file


def test_same_bytes_land_once(tmp_path):
    src = write(tmp_path / "in" / "rome.csv", ROME_CSV)
    landing = tmp_path / "landing"
    first_day = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    first = land_file(
        landing,
        SLUG,
        "rome.csv",
        src,
        url="https://example.org/rome.csv",
        upstream_url="https://example.org/rome.csv",
        mode="live",
        status=200,
        headers={"ETag": '"e1"', "Set-Cookie": "session=secret"},
        fetched_at=first_day,
    )
    second = land_file(
        landing,
        SLUG,
        "rome.csv",
        src,
        url="https://example.org/rome.csv",
        upstream_url=None,
        mode="live",
        fetched_at=datetime(2025, 4, 1, tzinfo=UTC),
    )
    sha = hashlib.sha256(ROME_CSV).hexdigest()
    assert first.new and not second.new
    assert second == LandedFile(**{**first.__dict__, "new": False})
    assert first.path.name == f"2025-03-01__{sha[:12]}__rome.csv"
    assert first.fetched_at == "2025-03-01T08:30:00Z"
    assert data_files(landing / SLUG) == [first.path.name]
    assert first.path.read_bytes() == ROME_CSV
    assert src.exists(), "land_file never removes its source"
    meta = json.loads(first.path.with_name(first.path.name + ".meta.json").read_text())
    assert meta["sha256"] == sha and meta["size"] == len(ROME_CSV)
    assert meta["headers"] == {"etag": '"e1"'}
    assert meta["status"] == 200 and meta["mode"] == "live"
    assert meta["upstream_url"] == "https://example.org/rome.csv"
    assert [p.name for p in (landing / SLUG).iterdir() if p.name.startswith(".")] == []


def test_different_bytes_land_a_new_file(tmp_path):
    landing = tmp_path / "landing"
    src = write(tmp_path / "in" / "rome.csv", ROME_CSV)
    first = land_file(
        landing, SLUG, "rome.csv", src, url="file:///x", upstream_url=None, mode="mirror"
    )
    write(src, ROME_CSV + b"A1102;Conduite d'engins forestiers\n")
    second = land_file(
        landing, SLUG, "rome.csv", src, url="file:///x", upstream_url=None, mode="mirror"
    )
    assert first.new and second.new and first.path != second.path
    assert first.path.read_bytes() == ROME_CSV, "a landed file is never rewritten"
    assert len(data_files(landing / SLUG)) == 2
    assert [f.sha256 for f in landed_history(landing, SLUG)] == [first.sha256, second.sha256]


def test_given_sha_must_match_the_bytes(tmp_path):
    src = write(tmp_path / "rome.csv", ROME_CSV)
    with pytest.raises(FetchError, match="demo_source.*expected sha256"):
        land_file(
            tmp_path / "landing",
            SLUG,
            "rome.csv",
            src,
            url="file:///x",
            upstream_url=None,
            mode="mirror",
            sha256="0" * 64,
        )
    assert data_files(tmp_path / "landing" / SLUG) == []
    assert list((tmp_path / "landing" / SLUG).iterdir()) == []


def test_file_name_must_be_plain(tmp_path):
    src = write(tmp_path / "rome.csv", ROME_CSV)
    with pytest.raises(ValueError, match="not a plain file name"):
        land_file(
            tmp_path / "landing",
            SLUG,
            "../rome.csv",
            src,
            url="file:///x",
            upstream_url=None,
            mode="mirror",
        )


def test_many_mirror_files_give_the_run_log_one_summary(tmp_path, caplog):
    """Each line of a run's log is an event-log row: a thousand files, one line."""
    settings = settings_for(tmp_path, "mirror")
    count = PER_FILE_LOG_LIMIT + 5
    for i in range(count):
        write(settings.mirror_dir / SLUG / f"part_{i:03d}.csv", b"a,b\n1,2\n")
    run_log = logging.getLogger("tremplin.test.run_log")
    with caplog.at_level(logging.DEBUG):
        fetch_source(make_spec((), ("part_*.csv",)), settings, log=run_log)
    run_lines = [r.getMessage() for r in caplog.records if r.name == run_log.name]
    assert len(run_lines) == 1, run_lines
    assert f"{count} mirror file(s): {count} landed" in run_lines[0]
    per_file = [r for r in caplog.records if r.name == landing.logger.name]
    assert len(per_file) == count and "part_000.csv" in per_file[0].getMessage()


def test_current_files_before_any_fetch(tmp_path):
    with pytest.raises(NotFetchedError, match="demo_source: nothing has been landed yet"):
        current_files(tmp_path / "landing", SLUG)
    assert issubclass(NotFetchedError, FileNotFoundError)


# -------------------------------------------------------------------------- mirror mode


def test_mirror_fetch_is_idempotent(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    mirror = settings.mirror_dir / SLUG
    write(mirror / "unix_referentiel_code_rome_v460_utf8.csv", ROME_CSV)
    write(mirror / "unix_referentiel_appellation_v460_utf8.csv", APPELLATION_CSV)
    write(mirror / "README.txt", b"not part of the source")
    spec = make_spec(
        (Download("https://example.org/RefRomeCsv.zip", "RefRomeCsv.zip", "zip"),),
        ("unix_referentiel_code_rome_v*.csv", "unix_referentiel_appellation_v*.csv"),
    )

    first = fetch_source(spec, settings)
    slug_dir = settings.landing_dir / SLUG
    pointer = (slug_dir / "current.json").read_bytes()
    listing = sorted(p.name for p in slug_dir.iterdir())
    second = fetch_source(spec, settings)

    assert first.mode == "mirror"
    assert [f.file_name for f in first.files] == [
        "unix_referentiel_appellation_v460_utf8.csv",
        "unix_referentiel_code_rome_v460_utf8.csv",
    ]
    assert len(first.new_files) == 2 and second.new_files == ()
    assert (slug_dir / "current.json").read_bytes() == pointer
    assert sorted(p.name for p in slug_dir.iterdir()) == listing
    landed = first.files[1]
    assert landed.url.startswith("file://") and landed.url.endswith(landed.file_name)
    assert landed.upstream_url == "https://example.org/RefRomeCsv.zip"
    assert landed.mode == "mirror"
    assert current_files(settings.landing_dir, SLUG) == second.files


def test_mirror_file_missing_for_a_pattern(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    write(settings.mirror_dir / SLUG / "unix_referentiel_code_rome_v460_utf8.csv", ROME_CSV)
    spec = make_spec((), ("unix_referentiel_code_rome_v*.csv", "unix_texte_v*.csv"))
    with pytest.raises(FetchError) as caught:
        fetch_source(spec, settings)
    message = str(caught.value)
    assert SLUG in message and "unix_texte_v*.csv" in message
    assert str(settings.mirror_dir / SLUG) in message
    assert not (settings.landing_dir / SLUG / "current.json").exists()


def test_mirror_directory_missing(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    with pytest.raises(FetchError, match=r"demo_source: mirror directory .* does not exist"):
        fetch_source(make_spec((), ("*.csv",)), settings)


def test_mirror_file_that_is_an_html_page(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    write(settings.mirror_dir / SLUG / "data.csv", b"<!doctype html><html></html>")
    with pytest.raises(FetchError, match="mirror file .*data.csv: served an HTML page"):
        fetch_source(make_spec((), ("*.csv",)), settings)


# ---------------------------------------------------------------------------- live mode


def _etag_server(body: bytes, etag: str):
    def reply(recorded: Recorded) -> Reply:
        if recorded.headers.get("if-none-match") == etag:
            return Reply(status=304, headers={"ETag": etag})
        return Reply(body=body, headers={"ETag": etag, "Content-Type": "text/csv"})

    return reply


def test_live_fetch_then_304(server, tmp_path, caplog):
    settings = settings_for(tmp_path, "live")
    server.route("/rome.csv", _etag_server(ROME_CSV, '"v1"'))
    server.route("/appellation.csv", Reply(body=APPELLATION_CSV))
    spec = make_spec(
        (
            Download(server.url("/rome.csv"), "rome.csv", "csv"),
            Download(server.url("/appellation.csv"), "appellation.csv", "csv"),
        )
    )
    caplog.set_level("INFO", logger="assets.ingest.landing")

    first = fetch_source(spec, settings)
    slug_dir = settings.landing_dir / SLUG
    pointer = (slug_dir / "current.json").read_bytes()
    second = fetch_source(spec, settings)

    assert [f.file_name for f in first.files] == ["rome.csv", "appellation.csv"]
    assert len(first.new_files) == 2 and second.new_files == ()
    assert second.files == tuple(LandedFile(**{**f.__dict__, "new": False}) for f in first.files)
    rome_requests = server.requests_to("/rome.csv")
    assert "if-none-match" not in rome_requests[0].headers
    assert rome_requests[1].headers["if-none-match"] == '"v1"'
    assert "not modified upstream" in caplog.text
    assert (slug_dir / "current.json").read_bytes() == pointer
    assert len(data_files(slug_dir)) == 2
    assert [p.name for p in slug_dir.iterdir() if p.name.startswith(".")] == []
    meta = json.loads(Path(str(first.files[0].path) + ".meta.json").read_text())
    assert meta["url"] == server.url("/rome.csv") and meta["mode"] == "live"
    assert meta["headers"]["etag"] == '"v1"' and meta["status"] == 200


def test_live_fetch_lands_changed_bytes_and_moves_the_pointer(server, tmp_path):
    settings = settings_for(tmp_path, "live")
    spec = make_spec((Download(server.url("/rome.csv"), "rome.csv", "csv"),))
    server.route("/rome.csv", _etag_server(ROME_CSV, '"v1"'))
    first = fetch_source(spec, settings)
    server.route("/rome.csv", _etag_server(ROME_CSV + b"B1101;Art\n", '"v2"'))
    second = fetch_source(spec, settings)
    assert server.requests_to("/rome.csv")[1].headers["if-none-match"] == '"v1"'
    assert second.new_files and second.files[0].path != first.files[0].path
    assert current_files(settings.landing_dir, SLUG)[0].path == second.files[0].path


def test_failed_live_fetch_keeps_the_previous_pointer(server, tmp_path):
    settings = settings_for(tmp_path, "live")
    spec = make_spec((Download(server.url("/rome.csv"), "rome.csv", "csv"),))
    server.route("/rome.csv", Reply(body=ROME_CSV))
    fetch_source(spec, settings)
    pointer = (settings.landing_dir / SLUG / "current.json").read_bytes()
    server.route("/rome.csv", Reply(status=404))
    with pytest.raises(FetchError, match="404"):
        fetch_source(spec, settings)
    assert (settings.landing_dir / SLUG / "current.json").read_bytes() == pointer


# -------------------------------------------------------------------------- iter_members


def landed(tmp_path: Path, name: str, data: bytes) -> LandedFile:
    src = write(tmp_path / "src" / name, data)
    return land_file(
        tmp_path / "landing", SLUG, name, src, url=src.as_uri(), upstream_url=None, mode="mirror"
    )


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_iter_members_on_plain_files(tmp_path):
    files = [
        landed(tmp_path, "unix_referentiel_code_rome_v460_utf8.csv", ROME_CSV),
        landed(tmp_path, "unix_texte_v460_utf8.csv", b"t\n"),
    ]
    found = list(iter_members(files, "unix_referentiel_code_rome_v*.csv"))
    assert [(name, lf) for name, _, lf in found] == [(files[0].file_name, files[0])]
    with found[0][1]() as handle:
        assert handle.read() == ROME_CSV


def test_iter_members_sees_through_a_zip(tmp_path):
    archive = zip_bytes(
        {
            "RefRomeCsv/": b"",
            "RefRomeCsv/unix_referentiel_code_rome_v460_utf8.csv": ROME_CSV,
            "RefRomeCsv/unix_texte_v460_utf8.csv": b"t\n",
        }
    )
    zip_file = landed(tmp_path, "RefRomeCsv.zip", archive)
    found = list(iter_members([zip_file], "unix_referentiel_code_rome_v*.csv"))
    assert [(name, lf) for name, _, lf in found] == [
        ("unix_referentiel_code_rome_v460_utf8.csv", zip_file)
    ]
    with found[0][1]() as handle:
        assert handle.read() == ROME_CSV
    assert [name for name, _, _ in iter_members([zip_file], "*.zip")] == ["RefRomeCsv.zip"]


@pytest.mark.parametrize("entry", ["../../etc/evil.csv", "/abs/evil.csv", "a\\..\\..\\b.csv"])
def test_zip_slip_entry_rejected(tmp_path, entry):
    zip_file = landed(tmp_path, "RefRomeCsv.zip", zip_bytes({"ok.csv": b"x\n", entry: b"x\n"}))
    with pytest.raises(FetchError, match=r"zip RefRomeCsv.zip .*unsafe entry"):
        list(iter_members([zip_file], "*.csv"))


def test_corrupted_zip_rejected(tmp_path):
    archive = zip_bytes({"unix_texte_v460_utf8.csv": b"t\n" * 100})
    zip_file = landed(tmp_path, "RefRomeCsv.zip", archive[: len(archive) // 2])
    with pytest.raises(FetchError, match=r"demo_source: RefRomeCsv.zip .* not a readable zip"):
        list(iter_members([zip_file], "*.csv"))


# ------------------------------------------------- re-fetching: index and mirror stat records


class OpenCounter:
    """Records every mirror or download file whose bytes the landing code opens."""

    def __init__(self, monkeypatch, on_open=None) -> None:
        self.paths: list[str] = []
        real = landing._open_source

        def counting(path):
            self.paths.append(Path(path).name)
            handle = real(path)
            if on_open is not None:
                on_open(Path(path))
            return handle

        monkeypatch.setattr(landing, "_open_source", counting)


def many_parts(settings: Settings, count: int = 12) -> dict[str, Path]:
    return {
        f"part_{i:03d}.csv": write(
            settings.mirror_dir / SLUG / f"part_{i:03d}.csv",
            b"id;value\n" + f"{i};{i * i}\n".encode() * (i + 1),
        )
        for i in range(count)
    }


PARTS = make_spec((), ("part_*.csv",))


@pytest.fixture
def settled(monkeypatch):
    """Mirror files written by a test are 'racily clean' for a few seconds; the tests that
    exercise the stat records drop that window (one of them checks it on its own)."""
    monkeypatch.setattr(fetch, "RACY_WINDOW_NS", 0)


def test_unchanged_mirror_is_not_read_again(tmp_path, monkeypatch, settled):
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings)
    first = fetch_source(PARTS, settings)
    slug_dir = settings.landing_dir / SLUG
    pointer = (slug_dir / "current.json").read_bytes()
    listing = sorted(p.name for p in slug_dir.iterdir())

    opened = OpenCounter(monkeypatch)
    second = fetch_source(PARTS, settings)

    assert len(first.new_files) == 12 and second.new_files == ()
    assert opened.paths == [], "unchanged mirror files must not be read"
    assert second.files == tuple(LandedFile(**{**f.__dict__, "new": False}) for f in first.files)
    assert (slug_dir / "current.json").read_bytes() == pointer
    assert sorted(p.name for p in slug_dir.iterdir()) == listing
    assert current_files(settings.landing_dir, SLUG) == second.files


def test_freshly_written_mirror_files_are_hashed_again(tmp_path, monkeypatch):
    """A file whose stat is younger than the racy window may still change within the same
    timestamp tick: its stat is not recorded, so it is read again (and found landed)."""
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings, 3)
    fetch_source(PARTS, settings)
    opened = OpenCounter(monkeypatch)
    second = fetch_source(PARTS, settings)
    assert sorted(opened.paths) == ["part_000.csv", "part_001.csv", "part_002.csv"]
    assert second.new_files == ()


def test_touched_mirror_file_is_rehashed_and_deduplicated(tmp_path, monkeypatch, settled):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings)
    first = fetch_source(PARTS, settings)
    touched = parts["part_004.csv"]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))

    opened = OpenCounter(monkeypatch)
    second = fetch_source(PARTS, settings)
    assert opened.paths == ["part_004.csv"]
    assert second.new_files == ()
    assert [f.path for f in second.files] == [f.path for f in first.files]
    assert len(data_files(settings.landing_dir / SLUG)) == 12

    third = fetch_source(PARTS, settings)  # the new stat was recorded
    assert opened.paths == ["part_004.csv"] and third.files == second.files


def test_changed_mirror_file_lands_a_new_version(tmp_path, monkeypatch, settled):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings)
    first = fetch_source(PARTS, settings)
    write(parts["part_002.csv"], b"id;value\n2;5\n")  # another size
    # Same size and mtime as before, other bytes: only the ctime tells (cp -p, rsync -t).
    same_size = parts["part_007.csv"]
    st = same_size.stat()
    time.sleep(0.05)  # past the timestamp tick of the first write
    write(same_size, same_size.read_bytes().replace(b"49", b"50"))
    os.utime(same_size, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert same_size.stat().st_size == st.st_size

    opened = OpenCounter(monkeypatch)
    second = fetch_source(PARTS, settings)
    assert sorted(opened.paths) == ["part_002.csv", "part_007.csv"]
    assert sorted(f.file_name for f in second.new_files) == ["part_002.csv", "part_007.csv"]
    assert len(data_files(settings.landing_dir / SLUG)) == 14
    before = {f.file_name: f for f in first.files}
    for f in second.files:
        assert f.path.read_bytes() == parts[f.file_name].read_bytes()
        assert before[f.file_name].path.is_file(), "a landed file is never rewritten"
    assert current_files(settings.landing_dir, SLUG) == tuple(
        LandedFile(**{**f.__dict__, "new": False}) for f in second.files
    )


def test_missing_or_corrupted_stat_records_are_rebuilt(tmp_path, monkeypatch, settled):
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings, 5)
    first = fetch_source(PARTS, settings)
    pointer = settings.landing_dir / SLUG / "current.json"
    good = pointer.read_bytes()
    opened = OpenCounter(monkeypatch)

    pointer.write_bytes(good[: len(good) // 2])  # a pointer cut short: records unusable
    again = fetch_source(PARTS, settings)
    assert len(opened.paths) == 5 and again.new_files == ()
    assert pointer.read_bytes() == good, "the pointer is rebuilt as it was"

    pointer.unlink()
    opened.paths.clear()
    assert fetch_source(PARTS, settings).new_files == ()
    assert len(opened.paths) == 5 and pointer.read_bytes() == good

    data = json.loads(good)
    data["mirror"]["files"]["part_001.csv"]["sha256"] = "0" * 64  # a record that lies
    data["mirror"]["files"]["part_003.csv"] = {"stat": "not a stat"}
    pointer.write_text(json.dumps(data))
    opened.paths.clear()
    assert fetch_source(PARTS, settings).new_files == ()
    assert sorted(opened.paths) == ["part_001.csv", "part_003.csv"]

    # A record naming landed bytes that are gone: the file is landed again.
    lost = first.files[4]
    lost.path.unlink()
    opened.paths.clear()
    report = fetch_source(PARTS, settings)
    assert opened.paths == ["part_004.csv"]
    assert [f.file_name for f in report.new_files] == ["part_004.csv"]
    assert (
        report.files[4].path.read_bytes()
        == (settings.mirror_dir / SLUG / "part_004.csv").read_bytes()
    )

    opened.paths.clear()
    assert fetch_source(PARTS, settings).new_files == () and opened.paths == []


def test_records_of_another_mirror_directory_are_not_used(tmp_path, monkeypatch, settled):
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings, 4)
    first = fetch_source(PARTS, settings)
    moved = settings.__class__(**{**settings.__dict__, "mirror_dir": tmp_path / "elsewhere"})
    for path in (settings.mirror_dir / SLUG).iterdir():
        write(moved.mirror_dir / SLUG / path.name, path.read_bytes())
    opened = OpenCounter(monkeypatch)
    report = fetch_source(PARTS, moved)
    assert len(opened.paths) == 4 and report.new_files == ()
    assert [f.path for f in report.files] == [f.path for f in first.files]


def test_partition_fetches_keep_each_others_records(tmp_path, monkeypatch, settled):
    """A periodic source fetches one period's files at a time (literal patterns): the
    pointer moves to each period in turn, and coming back to one reads nothing again."""
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings, 6)
    first_half = make_spec((), ("part_000.csv", "part_001.csv", "part_002.csv"))
    second_half = make_spec((), ("part_003.csv", "part_004.csv", "part_005.csv"))
    fetch_source(first_half, settings)
    fetch_source(second_half, settings)
    opened = OpenCounter(monkeypatch)
    again = fetch_source(first_half, settings)
    assert opened.paths == [] and again.new_files == ()
    assert [f.file_name for f in current_files(settings.landing_dir, SLUG)] == [
        "part_000.csv",
        "part_001.csv",
        "part_002.csv",
    ]
    with pytest.raises(FetchError, match=r"matches 'part_009.csv' \(present: \['part_000"):
        fetch_source(make_spec((), ("part_009.csv",)), settings)


def test_unwritable_landing_area_is_reported_and_a_no_op_fetch_needs_no_write(
    tmp_path, monkeypatch, settled
):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings, 3)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(settings.landing_dir / SLUG))

    with monkeypatch.context() as patched:
        patched.setattr(landing.tempfile, "mkstemp", refuse)
        with pytest.raises(LandingWriteError, match="demo_source: cannot write to the landing"):
            fetch_source(PARTS, settings)
    assert data_files(settings.landing_dir / SLUG) == []
    assert not (settings.landing_dir / SLUG / "current.json").exists()

    fetch_source(PARTS, settings)
    monkeypatch.setattr(landing.tempfile, "mkstemp", refuse)
    assert fetch_source(PARTS, settings).new_files == ()  # nothing to write: no error
    write(parts["part_001.csv"], b"id;value\n1;2\n")
    with pytest.raises(LandingWriteError, match="nothing was replaced"):
        fetch_source(PARTS, settings)


def test_many_files_land_together_and_one_bad_file_fails_the_fetch(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings, 40)
    write(parts["part_017.csv"], b"<!DOCTYPE html><html>maintenance</html>")
    with pytest.raises(FetchError, match=r"mirror file .*part_017.csv: served an HTML page"):
        fetch_source(PARTS, settings)
    slug_dir = settings.landing_dir / SLUG
    assert not (slug_dir / "current.json").exists()
    assert [p.name for p in slug_dir.iterdir() if p.name.startswith(".")] == []
    assert not any("part_017" in name for name in data_files(slug_dir))
    for name in data_files(slug_dir):  # whatever landed meanwhile is complete
        meta = json.loads((slug_dir / f"{name}.meta.json").read_text())
        assert hashlib.sha256((slug_dir / name).read_bytes()).hexdigest() == meta["sha256"]

    write(parts["part_017.csv"], b"id;value\n17;289\n")
    report = fetch_source(PARTS, settings)
    assert len(report.files) == 40 and len(data_files(slug_dir)) == 40
    for f in report.files:
        assert f.path.read_bytes() == parts[f.file_name].read_bytes()


def test_mirror_file_rewritten_while_landing_is_refused(tmp_path, monkeypatch):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings, 3)

    def rewrite(path: Path) -> None:
        if path.name == "part_001.csv":
            with path.open("ab") as fh:
                fh.write(b"1;1\n")

    OpenCounter(monkeypatch, on_open=rewrite)
    with pytest.raises(FetchError, match=r"part_001.csv changed while it was being landed"):
        fetch_source(PARTS, settings)
    slug_dir = settings.landing_dir / SLUG
    assert not any("part_001" in name for name in data_files(slug_dir))
    assert [p.name for p in slug_dir.iterdir() if p.name.startswith(".")] == []
    assert not (slug_dir / "current.json").exists()
    assert parts["part_001.csv"].exists()


def test_stale_temporaries_are_swept(tmp_path):
    settings = settings_for(tmp_path, "mirror")
    many_parts(settings, 2)
    slug_dir = settings.landing_dir / SLUG
    old = write(slug_dir / ".landing-killed.part", b"half a file")
    old_sidecar = write(slug_dir / ".x.csv.meta.json.abc.tmp", b"{")
    (slug_dir / ".fetch-killed").mkdir()
    write(slug_dir / ".fetch-killed" / "body", b"partial")
    write(slug_dir / ".landing-running.part", b"being written")
    foreign = write(slug_dir / ".someone-else", b"not ours")
    two_hours_ago = time.time() - 7200
    for path in (old, old_sidecar, slug_dir / ".fetch-killed", foreign):
        os.utime(path, (two_hours_ago, two_hours_ago))
    fetch_source(PARTS, settings)
    left = sorted(p.name for p in slug_dir.iterdir() if p.name.startswith("."))
    assert left == [".landing-running.part", ".someone-else"]


def reference_history(slug_dir: Path) -> list[LandedFile]:
    """What `landed_history` returned before it had an index: every sidecar, read."""
    found = []
    for meta_path in slug_dir.glob("*.meta.json"):
        meta = json.loads(meta_path.read_text())
        found.append(
            LandedFile(
                slug=SLUG,
                file_name=meta["file_name"],
                path=meta_path.with_name(meta_path.name[: -len(".meta.json")]),
                sha256=meta["sha256"],
                size=meta["size"],
                url=meta["url"],
                upstream_url=meta.get("upstream_url"),
                fetched_at=meta["fetched_at"],
                mode=meta["mode"],
                new=False,
            )
        )
    return sorted(found, key=lambda f: (f.fetched_at, f.path.name))


def test_landed_history_is_a_checked_view_of_the_sidecars(tmp_path):
    landing_dir = tmp_path / "landing"
    slug_dir = landing_dir / SLUG
    src = tmp_path / "in" / "a__b.csv"
    for day, data in ((3, b"x\n1\n"), (1, b"x\n2\n"), (2, b"x\n1\n"), (2, b"x\n3\n")):
        write(src, data)
        land_file(
            landing_dir,
            SLUG,
            src.name,
            src,
            url="file:///x",
            upstream_url=None,
            mode="mirror",
            fetched_at=datetime(2025, 1, day, tzinfo=UTC),
        )
    # A sidecar whose name this module did not choose is still part of the history.
    legacy = write(slug_dir / "legacy.csv", ROME_CSV)
    write(
        slug_dir / "legacy.csv.meta.json",
        json.dumps(
            {
                "file_name": "rome.csv",
                "sha256": hashlib.sha256(ROME_CSV).hexdigest(),
                "size": len(ROME_CSV),
                "url": "file:///legacy",
                "fetched_at": "2020-01-01T00:00:00Z",
                "mode": "mirror",
            }
        ).encode(),
    )
    history = landed_history(landing_dir, SLUG)
    assert list(history) == reference_history(slug_dir)
    assert len(history) == 4 and history[0].path == legacy
    assert landed_history(landing_dir, SLUG) == history  # from the memo, same answer

    # The index finds the legacy landing: the same bytes under that name land nothing.
    again = land_file(
        landing_dir,
        SLUG,
        "rome.csv",
        write(tmp_path / "rome.csv", ROME_CSV),
        url="file:///y",
        upstream_url=None,
        mode="mirror",
    )
    assert again == history[0]

    # A sidecar edited in place, or removed, is seen at once: the memo is checked.
    meta_path = Path(f"{history[1].path}.meta.json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "fetched_at": "2030-01-01T00:00:00Z"}))
    history_after = landed_history(landing_dir, SLUG)
    assert list(history_after) == reference_history(slug_dir)
    assert history_after[-1].fetched_at == "2030-01-01T00:00:00Z"
    Path(f"{history[2].path}.meta.json").unlink()
    assert list(landed_history(landing_dir, SLUG)) == reference_history(slug_dir)

    meta_path.write_text("{")
    with pytest.raises(FetchError, match="unreadable landing sidecar"):
        landed_history(landing_dir, SLUG)


def test_data_file_without_sidecar_is_landed_again(tmp_path):
    """A fetch killed between the data rename and the sidecar leaves bytes nobody sees."""
    landing_dir = tmp_path / "landing"
    src = write(tmp_path / "rome.csv", ROME_CSV)
    when = datetime(2025, 5, 1, tzinfo=UTC)
    first = land_file(
        landing_dir,
        SLUG,
        "rome.csv",
        src,
        url="file:///x",
        upstream_url=None,
        mode="mirror",
        fetched_at=when,
    )
    Path(f"{first.path}.meta.json").unlink()
    assert landed_history(landing_dir, SLUG) == ()
    again = land_file(
        landing_dir,
        SLUG,
        "rome.csv",
        src,
        url="file:///x",
        upstream_url=None,
        mode="mirror",
        fetched_at=when,
    )
    assert again.new and again.path == first.path
    assert landed_history(landing_dir, SLUG) == (LandedFile(**{**again.__dict__, "new": False}),)


KILLED_FETCH = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from assets.ingest import fetch, landing
from assets.ingest.spec import SourceSpec
from assets.foundation.settings import Settings

real = landing._open_source

class Slow:
    def __init__(self, fh):
        self.fh = fh
    def readinto(self, buffer):
        time.sleep(0.05)
        return self.fh.readinto(buffer)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.fh.close()

landing._open_source = lambda path: Slow(real(path))
landing.COPY_CHUNK = 64
settings = Settings(
    warehouse_dir=Path({warehouse!r}), mirror_dir=Path({mirror!r}), mode="mirror",
    duckdb_path=Path({warehouse!r}) / "w.duckdb", http_timeout_s=5, max_download_bytes=2**20,
)
spec = SourceSpec(
    slug={slug!r}, publisher="p", title="t", landing_page="https://example.org",
    licence="l", cadence="yearly", downloads=(), mirror_patterns=("part_*.csv",),
)
from assets.ingest.fetch import fetch_source
fetch_source(spec, settings)
"""


def test_fetch_killed_midway_leaves_nothing_visible_that_is_partial(tmp_path, monkeypatch):
    settings = settings_for(tmp_path, "mirror")
    parts = many_parts(settings, 40)
    slug_dir = settings.landing_dir / SLUG
    script = KILLED_FETCH.format(
        root=str(PROJECT_ROOT),
        warehouse=str(settings.warehouse_dir),
        mirror=str(settings.mirror_dir),
        slug=SLUG,
    )
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if slug_dir.is_dir() and len(list(slug_dir.glob("*.meta.json"))) >= 5:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the fetch ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()

    assert not (slug_dir / "current.json").exists(), "a killed fetch never moves the pointer"
    assert len(data_files(slug_dir)) < 40
    for meta_path in slug_dir.glob("*.meta.json"):
        meta = json.loads(meta_path.read_text())
        data = meta_path.with_name(meta["data_file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert all(f.path.is_file() for f in landed_history(settings.landing_dir, SLUG))

    monkeypatch.setattr(landing, "STALE_TEMP_S", 0.0)  # the killed fetch's leftovers
    report = fetch_source(PARTS, settings)
    assert [p.name for p in slug_dir.iterdir() if p.name.startswith(".")] == []
    assert len(report.files) == 40
    for f in current_files(settings.landing_dir, SLUG):
        assert f.path.read_bytes() == parts[f.file_name].read_bytes()


def test_a_landing_log_line_names_the_first_new_files_then_counts_the_rest():
    from assets.ingest.factory import LOGGED_NAMES, _first_names

    names = [f"page{i:03d}.json.gz" for i in range(184)]
    line = _first_names(names)
    assert line.startswith("[page000.json.gz, ") and line.endswith(", ... and 179 more]")
    assert line.count(".json.gz") == LOGGED_NAMES
    assert _first_names(names[:2]) == "[page000.json.gz, page001.json.gz]"
    assert _first_names([]) == "[]"
