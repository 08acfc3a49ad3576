"""Vintage directories under `exports/` and the `latest` symlink.

A vintage is complete and fsynced before it gets its final name; `latest` moves with one
`os.replace`; one publisher at a time holds the lock. This module also lists vintages
(held ones too), promotes one (`tremplin accept`), reads the published manifest and
re-verifies a vintage against it (`tremplin check`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

from assets.export.errors import ExportError
from assets.export.writing import dump_json_file, file_entry
from assets.foundation.files import exclusive_lock, fsync_dir

LATEST = "latest"
MANIFEST = "manifest.json"
# Written into a vintage the publication gate held back: why, and later who accepted it.
PUBLICATION = "publication.json"
FILE_KINDS = ("parquet", "jsonl", "schema")
# Written since issue 19 (`<table>.jsonl.gz`); vintages from before do not list it.
OPTIONAL_FILE_KINDS = ("jsonl_gz",)
_LOCK_FILE = ".publish.lock"


def content_sha256(tables: Mapping[str, dict]) -> str:
    """Hash of what the product reads: names, data and schemas; no timestamps, no vintage."""
    content = {
        name: {kind: tables[name]["files"][kind]["sha256"] for kind in file_kinds(tables[name])}
        for name in sorted(tables)
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def file_kinds(entry: Mapping) -> tuple[str, ...]:
    """The kinds of file a manifest entry lists: always FILE_KINDS, and the optional ones
    it has."""
    return FILE_KINDS + tuple(k for k in OPTIONAL_FILE_KINDS if k in entry.get("files", {}))


@contextlib.contextmanager
def publish_lock(exports_dir: Path) -> Iterator[None]:
    """One publisher at a time, so leftover temp dirs are known stale and `latest` cannot race."""
    with exclusive_lock(exports_dir / _LOCK_FILE):
        yield


def vintage_for(exports_dir: Path, now: dt.datetime) -> str:
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    base = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    vintage, suffix = base, 1
    while os.path.lexists(exports_dir / vintage):
        suffix += 1
        vintage = f"{base}-{suffix}"
    return vintage


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def switch_latest(exports_dir: Path, vintage: str) -> None:
    """Point `latest` at `vintage` with one rename: readers see the old or the new, never none."""
    link_tmp = exports_dir / f"{LATEST}.tmp-{secrets.token_hex(4)}"
    try:
        os.symlink(vintage, link_tmp)
        os.replace(link_tmp, exports_dir / LATEST)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(link_tmp)
        raise ExportError(f"cannot switch {exports_dir / LATEST} to {vintage}: {exc}") from None
    fsync_dir(exports_dir, strict=True)


def read_publication(vintage_dir: Path) -> dict:
    try:
        return json.loads((vintage_dir / PUBLICATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def list_vintages(exports_dir: Path) -> list[str]:
    """Vintage directories, oldest first (`20250301T120000Z` < `...Z-2` < `...Z-10`)."""
    exports_dir = Path(exports_dir)
    if not exports_dir.is_dir():
        return []
    names = [
        p.name
        for p in exports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        and (p / MANIFEST).is_file()
    ]  # fmt: skip

    def order(name: str) -> tuple[str, int]:
        base, _, suffix = name.partition("-")
        return base, int(suffix) if suffix.isdigit() else 1

    return sorted(names, key=order)


def held_vintages(exports_dir: Path) -> list[Path]:
    """Vintages the publication gate held and nobody accepted yet, oldest first."""
    exports_dir = Path(exports_dir)
    latest = os.readlink(exports_dir / LATEST) if os.path.islink(exports_dir / LATEST) else None
    return [
        exports_dir / name
        for name in list_vintages(exports_dir)
        if name != latest and read_publication(exports_dir / name).get("status") == "held"
    ]


def promote_vintage(
    exports_dir: Path, vintage: str, *, now: dt.datetime | None = None
) -> tuple[str | None, dict]:
    """Verify `vintage` and switch `latest` to it; returns (previous vintage, its manifest).

    This is `tremplin accept`: the human decision that overrides the publication gate. The
    vintage's publication.json records the acceptance.
    """
    exports_dir = Path(exports_dir)
    target = exports_dir / vintage
    if "/" in vintage or vintage.startswith(".") or vintage == LATEST or not target.is_dir():
        known = ", ".join(list_vintages(exports_dir)[-5:]) or "none"
        raise ExportError(f"no vintage {vintage!r} in {exports_dir} (latest ones: {known})")
    now = now or dt.datetime.now(dt.UTC)
    with publish_lock(exports_dir):
        manifest = verify_export(target)
        link = exports_dir / LATEST
        previous = os.readlink(link) if os.path.islink(link) else None
        record = read_publication(target)
        if record:
            record.update(status="accepted", accepted_at=utc_text(now))
            tmp = target / f".{PUBLICATION}.tmp"
            dump_json_file(tmp, record)
            os.replace(tmp, target / PUBLICATION)
        switch_latest(exports_dir, vintage)
    return previous, manifest


def read_latest_manifest(exports_dir: Path) -> dict | None:
    """The manifest `latest` points to, or None when nothing has been published yet."""
    latest = Path(exports_dir) / LATEST
    if not os.path.lexists(latest):
        return None
    manifest_path = latest / MANIFEST
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {manifest_path}: {exc}") from None


def verify_export(path: Path) -> dict:
    """Re-check an export directory against its manifest and return the manifest.

    Every listed file must exist with the recorded size and sha256, the JSONL line count and
    the Parquet row count must equal the recorded rows, and content_sha256 must match.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        tables = manifest["tables"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{manifest_path}: not a readable export manifest: {exc}") from None
    for name, entry in tables.items():
        for kind in file_kinds(entry):
            expected = entry["files"][kind]
            file_path = path / expected["path"]
            if Path(expected["path"]).name != expected["path"] or not file_path.is_file():
                raise ExportError(f"{file_path}: listed in {manifest_path} but missing")
            actual = file_entry(file_path)
            if actual["bytes"] != expected["bytes"] or actual["sha256"] != expected["sha256"]:
                raise ExportError(
                    f"{file_path}: expected sha256 {expected['sha256']} ({expected['bytes']} "
                    f"bytes), found {actual['sha256']} ({actual['bytes']} bytes)"
                )
        jsonl_path = path / entry["files"]["jsonl"]["path"]
        with jsonl_path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        parquet_path = path / entry["files"]["parquet"]["path"]
        parquet_rows = pq.ParquetFile(parquet_path).metadata.num_rows
        for counted, file_path in ((lines, jsonl_path), (parquet_rows, parquet_path)):
            if counted != entry["rows"]:
                raise ExportError(
                    f"{file_path}: expected {entry['rows']} rows for table {name}, found {counted}"
                )
    if content_sha256(tables) != manifest.get("content_sha256"):
        raise ExportError(f"{manifest_path}: content_sha256 does not match the listed files")
    return manifest
