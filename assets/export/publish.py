"""Publish the warehouse's diagnostic tables as files the product reads.

The product never opens the DuckDB file: it reads `warehouse/exports/latest/`, a directory of
Parquet + JSON Lines files, one JSON Schema per table and a `manifest.json` that says what
was published, from which sources, with which tool versions. This module orchestrates one
publication (writing.py writes the files, vintages.py names and switches the directories,
the publication gate is passed in); the rules it keeps:

- the warehouse is opened read-only, so an export never competes with dbt for the writer lock
  longer than it takes to read;
- the JSON records are written by DuckDB from the same types the published schema is derived
  from, and a sample of them is checked against it before anything becomes visible, so the
  product can trust the schema;
- a vintage directory is complete and verified before it gets its final name, and `latest`
  moves with one `os.replace` of a symlink: a reader sees the old export or the new one, never
  a mix, and a failed run leaves the previous export byte-identical;
- publishing unchanged content is a no-op, so a scheduled run does not mint a new vintage
  every time;
- when the inputs (the warehouse file, the tables, the dbt docs, this code) are exactly those
  the current `latest` was exported from (`export_fingerprint`, recorded in
  `exports/.latest-inputs.json`), the tables are not even read again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from assets.export import writing
from assets.export.errors import ExportError
from assets.export.lineage import (
    FIELD_LINEAGE_PATH,
    annotate_models,
    load_field_lineage,
    manifest_fields,
)
from assets.export.sql import split_relation
from assets.export.tables import EXPORT_TABLES
from assets.export.vintages import (
    LATEST,
    MANIFEST,
    PUBLICATION,
    content_sha256,
    file_kinds,
    held_vintages,
    publish_lock,
    read_latest_manifest,
    read_publication,
    switch_latest,
    utc_text,
    verify_export,
    vintage_for,
)
from assets.foundation.files import fsync_dir, fsync_tree

# Packages whose versions go into the manifest, so an export can be reproduced.
VERSIONED_PACKAGES = ("tremplin", "dbt-core", "dbt-duckdb", "duckdb", "dagster", "pandas")

_EXPORT_NAME = re.compile(r"^[a-z0-9_]+$")
_TMP_PREFIX = ".tmp-"
# What the current `latest` (or the held vintage) was exported from; see export_fingerprint.
INPUTS_RECORD = ".latest-inputs.json"
INPUTS_RECORD_KIND = "export"

log_ = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What `publish_export` did.

    `changed` is False when the content equals the current `latest` (or a vintage already
    held); `vintage` and `path` then name that existing export. `held` means the vintage was
    written but the publication gate kept `latest` where it was, for `hold_reasons`.
    `unchanged_inputs` means the tables were not read at all: the inputs are those this
    existing export was made from.
    """

    vintage: str
    path: Path
    changed: bool
    row_counts: dict[str, int]
    manifest: dict
    held: bool = False
    hold_reasons: tuple[str, ...] = ()
    unchanged_inputs: bool = False


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _normalise_sources(sources: list[dict] | None) -> list[dict]:
    if sources is None:
        return []
    if not isinstance(sources, list) or not all(
        isinstance(item, dict) and isinstance(item.get("slug"), str) for item in sources
    ):
        raise ExportError(
            "sources must be a list of dicts with a 'slug' (and files, vintage, synthetic)"
        )
    try:
        return json.loads(json.dumps(sources, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ExportError(f"sources cannot be written to {MANIFEST}: {exc}") from None


def publish_export(
    duckdb_path: Path,
    exports_dir: Path,
    *,
    tables: Mapping[str, str] = EXPORT_TABLES,
    sources: list[dict] | None = None,
    synthetic: bool = False,
    now: dt.datetime | None = None,
    log: logging.Logger | None = None,
    dbt_manifest: Path | None = None,
    gate: Any = None,
    inputs_fingerprint: str | None = None,
) -> ExportResult:
    """Export `tables` (export name -> relation) from the warehouse and switch `latest`.

    `sources` describes the inputs (slug, files with sha256, vintage, synthetic flag) and is
    copied into the manifest; the export is marked synthetic when `synthetic` is set or any
    source is. Field descriptions come from `dbt_manifest` (else DuckDB comments). With a
    `gate` (assets.export.gate.GatePolicy), a new vintage that fails it against the
    current `latest` is written but not promoted (`held`). Raises ExportError with `latest`
    left exactly as it was.

    With `inputs_fingerprint` (see `export_fingerprint`), an export whose inputs are the
    ones the current `latest` (or the held vintage) was made from returns that export
    without reading the warehouse (`unchanged_inputs`); any other outcome is recorded
    under that fingerprint once it is complete.
    """
    log = log or log_
    duckdb_path = Path(duckdb_path)
    exports_dir = Path(exports_dir)
    if not tables:
        raise ExportError("no tables to export")
    for name in tables:
        if not _EXPORT_NAME.match(name):
            raise ExportError(f"export name {name!r} must match {_EXPORT_NAME.pattern}")
    source_list = _normalise_sources(sources)
    is_synthetic = bool(synthetic) or any(bool(item.get("synthetic")) for item in source_list)
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)

    if not duckdb_path.is_file():
        raise ExportError(f"warehouse {duckdb_path} does not exist: run `tremplin build` first")
    exports_dir.mkdir(parents=True, exist_ok=True)

    with publish_lock(exports_dir):
        for stale in exports_dir.glob(f"{_TMP_PREFIX}*"):
            log.warning("removing leftover temporary export %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        for stale_link in exports_dir.glob(f"{LATEST}.tmp-*"):
            stale_link.unlink(missing_ok=True)
        if inputs_fingerprint is not None:
            kept = _unchanged_export(exports_dir, inputs_fingerprint, log)
            if kept is not None:
                return kept
            from assets.foundation.fingerprint import remove_record

            remove_record(exports_dir / INPUTS_RECORD)
        models = _manifest_models(dbt_manifest, log)
        vintage = vintage_for(exports_dir, now)
        tmp_dir = exports_dir / f"{_TMP_PREFIX}{vintage}-{secrets.token_hex(4)}"
        tmp_dir.mkdir()
        try:
            result = _publish_locked(
                duckdb_path,
                exports_dir,
                tmp_dir,
                vintage,
                tables=tables,
                sources=source_list,
                synthetic=is_synthetic,
                now=now,
                log=log,
                models=models,
                gate=gate,
            )
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if inputs_fingerprint is not None:
            _record_inputs(exports_dir, inputs_fingerprint, result)
        return result


def exporter_identity() -> dict:
    """The export code (this module and the export modules it uses, the gate, the diff, the
    dbt docs reader) and the package versions the manifest records; the export asset takes
    it when it is defined, right after the import, so it describes the code that will run."""
    import assets.dbt_manifest
    import assets.export.diff
    import assets.export.gate
    from assets.foundation.fingerprint import code_digest

    code = code_digest(
        sys.modules[__name__], assets.dbt_manifest, assets.export.diff, assets.export.gate
    )
    return {"code": code, "versions": _package_versions()}


def export_fingerprint(
    duckdb_path: Path,
    tables: Mapping[str, str],
    *,
    sources: list[dict] | None = None,
    synthetic: bool = False,
    dbt_manifest: Path | None = None,
    gate: Any = None,
    identity: dict | None = None,
) -> str | None:
    """What an export's content and outcome depend on: the warehouse file (size and mtime:
    dbt replaces it on every build; not its path, the warehouse is relocatable like the
    dbt build's own fingerprint), the tables, the dbt docs that describe the
    fields, the landed files named in the manifest, the gate and `exporter_identity()`.
    None when the warehouse does not exist (nothing to compare)."""
    from assets.foundation.fingerprint import canonical, digest, file_sha256, stat_of

    warehouse = stat_of(duckdb_path)
    if warehouse is None:
        return None
    manifest = Path(dbt_manifest) if dbt_manifest is not None else None
    return digest(
        {
            "warehouse": warehouse,
            "tables": dict(tables),
            "sources": [
                {
                    "slug": item.get("slug"),
                    "synthetic": item.get("synthetic"),
                    "files": [[f.get("file_name"), f.get("sha256")] for f in item.get("files", [])],
                }
                for item in (sources or [])
            ],
            "synthetic": bool(synthetic),
            "dbt_manifest": file_sha256(manifest) if manifest and manifest.is_file() else None,
            "field_lineage": (
                file_sha256(FIELD_LINEAGE_PATH) if FIELD_LINEAGE_PATH.is_file() else None
            ),
            "gate": canonical(gate),
            **(identity or exporter_identity()),
        }
    )


def _unchanged_export(exports_dir: Path, fingerprint: str, log: logging.Logger):
    """The existing export made from these very inputs, if `latest` (and the held vintage,
    when the gate held it) is still what was recorded; else None (export for real)."""
    from assets.foundation.fingerprint import read_record

    record = read_record(exports_dir / INPUTS_RECORD, kind=INPUTS_RECORD_KIND)
    if record is None or record["fingerprint"] != fingerprint:
        return None
    link = exports_dir / LATEST
    latest = os.readlink(link) if os.path.islink(link) else None
    if latest is None or latest != record.get("latest"):
        return None
    try:
        manifest = read_latest_manifest(exports_dir)
    except ExportError:
        return None
    if not manifest or manifest.get("vintage") != latest or not _files_in_place(link, manifest):
        return None
    result = _existing_result(exports_dir / latest, manifest)
    if record.get("held"):
        held_dir = exports_dir / str(record.get("vintage"))
        if held_dir.name in (latest, LATEST) or read_publication(held_dir).get("status") != "held":
            return None
        try:
            held_manifest = json.loads((held_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not _files_in_place(held_dir, held_manifest):
            return None
        reasons = tuple(read_publication(held_dir).get("reasons", ()))
        result = _existing_result(held_dir, held_manifest, reasons=reasons)
        log.warning(
            "export inputs unchanged since %s: vintage %s is still held: %s",
            record["recorded_at"],
            held_dir.name,
            "; ".join(reasons),
        )
    else:
        log.info(
            "export inputs unchanged since %s (same warehouse file, tables, docs and code): "
            "latest stays %s, tables not read again",
            record["recorded_at"],
            latest,
        )
    return dataclasses.replace(result, unchanged_inputs=True)


def _files_in_place(directory: Path, manifest: dict) -> bool:
    """Every file the manifest lists is there with its size (a cheap sanity check; the
    sha256s are verified by `tremplin check`)."""
    try:
        for entry in manifest["tables"].values():
            for kind in file_kinds(entry):
                listed = entry["files"][kind]
                if (Path(directory) / listed["path"]).stat().st_size != listed["bytes"]:
                    return False
    except (OSError, KeyError, TypeError, AttributeError):
        return False
    return True


def _record_inputs(exports_dir: Path, fingerprint: str, result: ExportResult) -> None:
    from assets.foundation.fingerprint import write_record

    link = exports_dir / LATEST
    write_record(
        exports_dir / INPUTS_RECORD,
        kind=INPUTS_RECORD_KIND,
        fingerprint=fingerprint,
        latest=os.readlink(link) if os.path.islink(link) else None,
        vintage=result.vintage,
        held=result.held,
        hold_reasons=list(result.hold_reasons),
    )


def _manifest_models(dbt_manifest: Path | None, log: logging.Logger) -> dict:
    if dbt_manifest is None:
        return {}
    from assets.dbt_manifest import ManifestError, load_models

    try:
        # Each exported field's description ends with its sources (column lineage).
        return annotate_models(load_models(dbt_manifest))
    except ManifestError as exc:
        log.warning("field descriptions from DuckDB comments only: %s", exc)
        return {}


def _publish_locked(
    duckdb_path: Path,
    exports_dir: Path,
    tmp_dir: Path,
    vintage: str,
    *,
    tables: Mapping[str, str],
    sources: list[dict],
    synthetic: bool,
    now: dt.datetime,
    log: logging.Logger,
    models: dict,
    gate: Any,
) -> ExportResult:
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as exc:
        raise ExportError(f"cannot open warehouse {duckdb_path} read-only: {exc}") from None
    try:
        # Timestamps WITH TIME ZONE come back in UTC, whatever the machine's zone.
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        entries = {}
        for name, relation in tables.items():
            docs = models.get(split_relation(relation)[1])
            try:
                entries[name] = writing.write_table(
                    con, tmp_dir, name, relation, duckdb_path, log, docs=docs
                )
            except (duckdb.Error, OSError) as exc:
                raise ExportError(f"{name} ({relation}) in {duckdb_path}: {exc}") from None
    finally:
        con.close()

    manifest = {
        "vintage": vintage,
        "created_at": utc_text(now),
        "content_sha256": content_sha256(entries),
        "synthetic": synthetic,
        "tables": entries,
        "sources": sources,
        # Per field: its source families and whether one is synthetic (column lineage).
        "fields": manifest_fields(load_field_lineage(), entries),
        "versions": _package_versions(),
    }
    row_counts = {name: entry["rows"] for name, entry in entries.items()}

    try:
        previous = read_latest_manifest(exports_dir)
    except ExportError as exc:
        log.warning("ignoring the current latest export: %s", exc)
        previous = None
    if previous and previous.get("content_sha256") == manifest["content_sha256"]:
        old_vintage = previous["vintage"]
        log.info(
            "export unchanged (content %s): latest stays %s",
            manifest["content_sha256"][:12],
            old_vintage,
        )
        return _existing_result(exports_dir / old_vintage, previous)
    for held_dir in held_vintages(exports_dir):
        held_manifest = json.loads((held_dir / MANIFEST).read_text(encoding="utf-8"))
        if held_manifest.get("content_sha256") == manifest["content_sha256"]:
            reasons = tuple(read_publication(held_dir).get("reasons", ()))
            log.warning(
                "export content equals vintage %s, already held: %s",
                held_dir.name,
                "; ".join(reasons),
            )
            return _existing_result(held_dir, held_manifest, reasons=reasons)

    writing.dump_json_file(tmp_dir / MANIFEST, manifest)
    verify_export(tmp_dir)
    hold_reasons: tuple[str, ...] = ()
    if gate is not None and previous is not None:
        try:
            decision = gate.evaluate(exports_dir / LATEST, tmp_dir)
            reasons, notes = decision.reasons, decision.notes
        except (duckdb.Error, ExportError, OSError) as exc:  # a human must look: hold
            reasons, notes = [f"cannot compare with latest ({previous['vintage']}): {exc}"], []
        for note in notes:
            log.info("publication gate: %s", note)
        if reasons:
            hold_reasons = tuple(reasons)
            writing.dump_json_file(
                tmp_dir / PUBLICATION,
                {
                    "status": "held",
                    "held_at": utc_text(now),
                    "compared_with": previous["vintage"],
                    "reasons": list(hold_reasons),
                    "notes": list(notes),
                },
            )
    fsync_tree(tmp_dir)
    final_dir = exports_dir / vintage
    try:
        os.rename(tmp_dir, final_dir)
    except OSError as exc:
        raise ExportError(f"cannot move the new export to {final_dir}: {exc}") from None
    fsync_dir(exports_dir, strict=True)
    if hold_reasons:
        log.warning(
            "export %s written but NOT published: latest stays %s. %s. Review with "
            "`tremplin diff %s %s`, publish with `tremplin accept %s`",
            vintage,
            previous["vintage"],
            "; ".join(hold_reasons),
            previous["vintage"],
            vintage,
            vintage,
        )
        return ExportResult(
            vintage=vintage,
            path=final_dir,
            changed=True,
            row_counts=row_counts,
            manifest=manifest,
            held=True,
            hold_reasons=hold_reasons,
        )
    try:
        switch_latest(exports_dir, vintage)
    except ExportError:
        shutil.rmtree(final_dir, ignore_errors=True)
        raise
    log.info(
        "published export %s (%s) and switched latest",
        vintage,
        ", ".join(f"{name}={rows}" for name, rows in row_counts.items()),
    )
    return ExportResult(
        vintage=vintage, path=final_dir, changed=True, row_counts=row_counts, manifest=manifest
    )


def _existing_result(path: Path, manifest: dict, reasons: tuple[str, ...] = ()) -> ExportResult:
    return ExportResult(
        vintage=manifest["vintage"],
        path=path,
        changed=False,
        row_counts={name: entry["rows"] for name, entry in manifest["tables"].items()},
        manifest=manifest,
        held=bool(reasons),
        hold_reasons=reasons,
    )
