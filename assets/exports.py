"""Publish the warehouse's diagnostic tables as files the product reads.

The product never opens the DuckDB file: it reads `warehouse/exports/latest/`, a directory of
Parquet + JSON Lines files, one JSON Schema per table and a `manifest.json` that says what
was published, from which sources, with which tool versions. The rules this module keeps:

- the warehouse is opened read-only, so an export never competes with dbt for the writer lock
  longer than it takes to read;
- every JSON record is checked against the published schema before anything becomes visible,
  so the product can trust the schema;
- a vintage directory is complete and verified before it gets its final name, and `latest`
  moves with one `os.replace` of a symlink: a reader sees the old export or the new one, never
  a mix, and a failed run leaves the previous export byte-identical;
- publishing unchanged content is a no-op, so a scheduled run does not mint a new vintage
  every time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

EXPORT_TABLES: dict[str, str] = {
    "job_groups": "diag_job_groups",
    "departements": "diag_departements",
    "regions": "diag_regions",
}

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
LATEST = "latest"
MANIFEST = "manifest.json"
# Packages whose versions go into the manifest, so an export can be reproduced.
VERSIONED_PACKAGES = ("tremplin", "dbt-core", "dbt-duckdb", "duckdb", "dagster", "pandas")
# Rows fetched per round trip when streaming JSON Lines: bounded memory on big tables.
FETCH_BATCH_ROWS = 10_000

_EXPORT_NAME = re.compile(r"^[a-z0-9_]+$")
_TMP_PREFIX = ".tmp-"
_LOCK_FILE = ".publish.lock"
_FILE_KINDS = ("parquet", "jsonl", "schema")

_INTEGER_TYPES = {
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
}
_NUMBER_TYPES = {"float", "double", "decimal"}
_DATETIME_TYPES = {
    "timestamp",
    "timestamp_s",
    "timestamp_ms",
    "timestamp_ns",
    "timestamp with time zone",
}

log_ = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """An export could not be published; the previous `latest` is untouched."""


@dataclass(frozen=True)
class ExportResult:
    """What `publish_export` did.

    `changed` is False when the content equals the current `latest`; `vintage` and `path`
    then name that existing export.
    """

    vintage: str
    path: Path
    changed: bool
    row_counts: dict[str, int]
    manifest: dict


# --------------------------------------------------------------------------- JSON Schema


def json_schema_for_type(duckdb_type: duckdb.sqltypes.DuckDBPyType, *, nullable: bool) -> dict:
    """Translate one DuckDB type into a JSON Schema fragment.

    Nested values (list items, struct fields) are always nullable: DuckDB cannot declare
    them NOT NULL, so the schema must not promise it. Types without a faithful JSON form
    (BLOB, INTERVAL, MAP, ...) are refused rather than exported as something ambiguous.
    """
    type_id = duckdb_type.id
    schema: dict[str, Any]
    if type_id in ("varchar", "time"):
        schema = {"type": "string"}
    elif type_id == "uuid":
        schema = {"type": "string", "format": "uuid"}
    elif type_id == "date":
        schema = {"type": "string", "format": "date"}
    elif type_id in _DATETIME_TYPES:
        schema = {"type": "string", "format": "date-time"}
    elif type_id == "enum":
        values: list[Any] = list(dict(duckdb_type.children)["values"])
        schema = {"type": "string", "enum": values + [None] if nullable else values}
    elif type_id in _INTEGER_TYPES:
        schema = {"type": "integer"}
    elif type_id in _NUMBER_TYPES:
        schema = {"type": "number"}
    elif type_id == "boolean":
        schema = {"type": "boolean"}
    elif type_id == "list":
        child = dict(duckdb_type.children)["child"]
        schema = {"type": "array", "items": json_schema_for_type(child, nullable=True)}
    elif type_id == "array":
        children = dict(duckdb_type.children)
        size = int(children["size"])
        schema = {
            "type": "array",
            "items": json_schema_for_type(children["child"], nullable=True),
            "minItems": size,
            "maxItems": size,
        }
    elif type_id == "struct":
        fields = list(duckdb_type.children)
        schema = {
            "type": "object",
            "properties": {
                name: json_schema_for_type(child, nullable=True) for name, child in fields
            },
            "required": [name for name, _ in fields],
            "additionalProperties": False,
        }
    else:
        raise ExportError(f"DuckDB type {duckdb_type} has no JSON export mapping")
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _table_schema(name: str, relation: str, columns: list[dict], comment: str | None) -> dict:
    properties: dict[str, dict] = {}
    for column in columns:
        try:
            prop = json_schema_for_type(column["type"], nullable=column["nullable"])
        except ExportError as exc:
            raise ExportError(f"{relation}: column {column['name']!r}: {exc}") from None
        if column["comment"]:
            prop = {"description": column["comment"], **prop}
        properties[column["name"]] = prop
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": name,
        "description": comment or f"One row of the diagnostic table {relation}.",
        "type": "object",
        "properties": properties,
        "required": [column["name"] for column in columns],
        "additionalProperties": False,
    }


# --------------------------------------------------------------------------- JSON values


def _json_value(value: Any) -> Any:
    """Turn a DuckDB Python value into what `json.dumps` writes faithfully.

    Naive timestamps are taken as UTC (the warehouse stores UTC) and written as RFC 3339
    with `Z`, which DuckDB's own JSON writer does not do. Integral decimals stay exact ints;
    other decimals become floats (the Parquet file keeps the exact decimal).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat() + "Z"
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    raise ValueError(f"unsupported value of type {type(value).__name__}")


def _error_field(error: Any) -> str:
    field = ""
    for part in error.absolute_path:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "(record)"


# --------------------------------------------------------------------------- files


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _split_relation(relation: str) -> tuple[str, str]:
    schema, _, table = relation.rpartition(".")
    return (schema or "main"), table


def _file_entry(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def _dump_json_file(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _describe_relation(
    con: duckdb.DuckDBPyConnection, relation: str, duckdb_path: Path
) -> tuple[list[dict], str | None]:
    """Columns (name, DuckDB type, nullability, comment) and the table comment."""
    schema_name, table_name = _split_relation(relation)
    rows = con.execute(
        """
        select column_name, is_nullable, comment
        from duckdb_columns()
        where database_name = current_database() and schema_name = ? and table_name = ?
        order by column_index
        """,
        [schema_name, table_name],
    ).fetchall()
    if not rows:
        raise ExportError(
            f"relation {schema_name}.{table_name} not found in {duckdb_path}: expected a "
            "diagnostic table built by dbt (run `tremplin build` first)"
        )
    comment_row = con.execute(
        """
        select comment from duckdb_tables()
        where database_name = current_database() and schema_name = ? and table_name = ?
        union all
        select comment from duckdb_views()
        where database_name = current_database() and schema_name = ? and view_name = ?
        """,
        [schema_name, table_name, schema_name, table_name],
    ).fetchone()
    types = con.sql(f"select * from {_quote(schema_name)}.{_quote(table_name)}").types
    columns = [
        {"name": name, "type": duckdb_type, "nullable": bool(nullable), "comment": comment}
        for (name, nullable, comment), duckdb_type in zip(rows, types, strict=True)
    ]
    return columns, (comment_row[0] if comment_row else None)


def _write_table(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    name: str,
    relation: str,
    duckdb_path: Path,
    log: logging.Logger,
) -> dict:
    """Write `<name>.schema.json`, `<name>.jsonl` and `<name>.parquet`; return the manifest entry.

    Rows are ordered by every column (NULLs last) so the same content always gives the
    same bytes, and the JSONL is streamed in batches, each record validated before it is
    written.
    """
    from jsonschema import Draft202012Validator

    columns, comment = _describe_relation(con, relation, duckdb_path)
    schema = _table_schema(name, relation, columns, comment)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    schema_path = out_dir / f"{name}.schema.json"
    _dump_json_file(schema_path, schema)
    if any(column["type"].id in ("hugeint", "uhugeint") for column in columns):
        log.warning("%s: HUGEINT columns are written to Parquet as DOUBLE; cast in dbt", relation)

    schema_name, table_name = _split_relation(relation)
    names = [column["name"] for column in columns]
    order = ", ".join(f"{_quote(column)} asc nulls last" for column in names)
    query = f"select * from {_quote(schema_name)}.{_quote(table_name)} order by {order}"

    jsonl_path = out_dir / f"{name}.jsonl"
    rows = 0
    with jsonl_path.open("w", encoding="utf-8", newline="\n") as handle:
        cursor = con.execute(query)
        while batch := cursor.fetchmany(FETCH_BATCH_ROWS):
            lines = []
            for row in batch:
                rows += 1
                record = {}
                for column, value in zip(names, row, strict=True):
                    try:
                        record[column] = _json_value(value)
                    except ValueError as exc:
                        raise ExportError(
                            f"{name} ({relation}): row {rows}: field {column}: {exc}"
                        ) from None
                error = next(validator.iter_errors(record), None)
                if error is not None:
                    raise ExportError(
                        f"{name} ({relation}): row {rows}: field {_error_field(error)}: "
                        f"does not match {schema_path.name}: {error.message}"
                    )
                lines.append(
                    json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                )
            handle.write("\n".join(lines) + "\n")
    if rows == 0:
        raise ExportError(
            f"{name} ({relation}) in {duckdb_path} has 0 rows: an empty diagnostic table is "
            "never published"
        )

    parquet_path = out_dir / f"{name}.parquet"
    target = str(parquet_path).replace("'", "''")
    con.execute(f"copy ({query}) to '{target}' (format parquet, compression zstd)")

    log.info("export %s: %d rows from %s", name, rows, relation)
    return {
        "relation": relation,
        "rows": rows,
        "files": {
            "parquet": _file_entry(parquet_path),
            "jsonl": _file_entry(jsonl_path),
            "schema": _file_entry(schema_path),
        },
    }


def _content_sha256(tables: Mapping[str, dict]) -> str:
    """Hash of what the product reads: names, data and schemas; no timestamps, no vintage."""
    content = {
        name: {kind: tables[name]["files"][kind]["sha256"] for kind in _FILE_KINDS}
        for name in sorted(tables)
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _fsync_tree(directory: Path) -> None:
    """Flush files and the directory so a crash after the rename cannot expose empty files."""
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _publish_lock(exports_dir: Path) -> Iterator[None]:
    """One publisher at a time, so leftover temp dirs are known stale and `latest` cannot race."""
    with (exports_dir / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _vintage_for(exports_dir: Path, now: dt.datetime) -> str:
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    base = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    vintage, suffix = base, 1
    while os.path.lexists(exports_dir / vintage):
        suffix += 1
        vintage = f"{base}-{suffix}"
    return vintage


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


# --------------------------------------------------------------------------- public API


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
        for kind in _FILE_KINDS:
            expected = entry["files"][kind]
            file_path = path / expected["path"]
            if Path(expected["path"]).name != expected["path"] or not file_path.is_file():
                raise ExportError(f"{file_path}: listed in {manifest_path} but missing")
            actual = _file_entry(file_path)
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
    if _content_sha256(tables) != manifest.get("content_sha256"):
        raise ExportError(f"{manifest_path}: content_sha256 does not match the listed files")
    return manifest


def publish_export(
    duckdb_path: Path,
    exports_dir: Path,
    *,
    tables: Mapping[str, str] = EXPORT_TABLES,
    sources: list[dict] | None = None,
    synthetic: bool = False,
    now: dt.datetime | None = None,
    log: logging.Logger | None = None,
) -> ExportResult:
    """Export `tables` (export name -> relation) from the warehouse and switch `latest`.

    `sources` describes the inputs (slug, files with sha256, vintage, synthetic flag) and is
    copied into the manifest; the export is marked synthetic when `synthetic` is set or any
    source is. Raises ExportError with `latest` left exactly as it was.
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

    with _publish_lock(exports_dir):
        for stale in exports_dir.glob(f"{_TMP_PREFIX}*"):
            log.warning("removing leftover temporary export %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        for stale_link in exports_dir.glob(f"{LATEST}.tmp-*"):
            stale_link.unlink(missing_ok=True)
        vintage = _vintage_for(exports_dir, now)
        tmp_dir = exports_dir / f"{_TMP_PREFIX}{vintage}-{secrets.token_hex(4)}"
        tmp_dir.mkdir()
        try:
            return _publish_locked(
                duckdb_path,
                exports_dir,
                tmp_dir,
                vintage,
                tables=tables,
                sources=source_list,
                synthetic=is_synthetic,
                now=now,
                log=log,
            )
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)


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
            try:
                entries[name] = _write_table(con, tmp_dir, name, relation, duckdb_path, log)
            except (duckdb.Error, OSError) as exc:
                raise ExportError(f"{name} ({relation}) in {duckdb_path}: {exc}") from None
    finally:
        con.close()

    manifest = {
        "vintage": vintage,
        "created_at": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "content_sha256": _content_sha256(entries),
        "synthetic": synthetic,
        "tables": entries,
        "sources": sources,
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
        return ExportResult(
            vintage=old_vintage,
            path=exports_dir / old_vintage,
            changed=False,
            row_counts={name: entry["rows"] for name, entry in previous["tables"].items()},
            manifest=previous,
        )

    _dump_json_file(tmp_dir / MANIFEST, manifest)
    verify_export(tmp_dir)
    _fsync_tree(tmp_dir)
    final_dir = exports_dir / vintage
    try:
        os.rename(tmp_dir, final_dir)
    except OSError as exc:
        raise ExportError(f"cannot move the new export to {final_dir}: {exc}") from None
    link_tmp = exports_dir / f"{LATEST}.tmp-{secrets.token_hex(4)}"
    try:
        os.symlink(vintage, link_tmp)
        os.replace(link_tmp, exports_dir / LATEST)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(link_tmp)
        shutil.rmtree(final_dir, ignore_errors=True)
        raise ExportError(f"cannot switch {exports_dir / LATEST} to {vintage}: {exc}") from None
    _fsync_dir(exports_dir)
    log.info(
        "published export %s (%s) and switched latest",
        vintage,
        ", ".join(f"{name}={rows}" for name, rows in row_counts.items()),
    )
    return ExportResult(
        vintage=vintage, path=final_dir, changed=True, row_counts=row_counts, manifest=manifest
    )


def source_entries(modules, landing_dir: Path) -> list[dict]:
    """What the manifest says about each source: its spec and the landed files used."""
    from assets.sources.landing import current_files

    entries = []
    for module in modules:
        spec = module.SPEC
        files = current_files(landing_dir, spec.slug)
        entries.append(
            {
                "slug": spec.slug,
                "publisher": spec.publisher,
                "title": spec.title,
                "licence": spec.licence,
                "synthetic": spec.synthetic,
                "mode": files[0].mode if files else None,
                "files": [
                    {
                        "file_name": f.file_name,
                        "sha256": f.sha256,
                        "bytes": f.size,
                        "upstream_url": f.upstream_url,
                        "fetched_at": f.fetched_at,
                    }
                    for f in files
                ],
            }
        )
    return entries


def build_export_asset(modules):
    """The Dagster asset that publishes EXPORT_TABLES after the dbt build."""
    import dagster as dg

    from pipelines.settings import get_settings

    @dg.asset(
        key=dg.AssetKey(["exports", "diagnostic_tables"]),
        group_name="exports",
        deps=[dg.AssetKey([relation]) for relation in EXPORT_TABLES.values()],
        kinds={"parquet", "json"},
        pool="warehouse",
        description="Diagnostic tables for the product: Parquet + JSON Lines + JSON Schema "
        "per table and a manifest, under warehouse/exports/<vintage>/; `latest` is switched "
        "atomically.",
    )
    def diagnostic_tables(context):
        settings = get_settings()
        sources = source_entries(modules, settings.landing_dir)
        result = publish_export(
            settings.duckdb_path,
            settings.exports_dir,
            sources=sources,
            synthetic=any(s["synthetic"] for s in sources),
            log=context.log,
        )
        return dg.MaterializeResult(
            metadata={
                "vintage": result.vintage,
                "path": str(result.path),
                "changed": result.changed,
                "rows": dg.MetadataValue.json(result.row_counts),
            }
        )

    return diagnostic_tables
