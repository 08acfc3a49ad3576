"""The landing area: immutability, mirror and live fetches, and reading members back."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopback import Recorded, Reply, serve

from assets.sources.http import FetchError
from assets.sources.landing import (
    LandedFile,
    NotFetchedError,
    current_files,
    fetch_source,
    iter_members,
    land_file,
    landed_history,
)
from assets.sources.spec import Download, SourceSpec
from pipelines.settings import Settings

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
    caplog.set_level("INFO", logger="assets.sources.landing")

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
