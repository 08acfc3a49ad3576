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
  every time;
- when the inputs (the warehouse file, the tables, the dbt docs, this code) are exactly those
  the current `latest` was exported from (`export_fingerprint`, recorded in
  `exports/.latest-inputs.json`), the tables are not even read again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import secrets
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

# The one list of exported tables: export name -> dbt relation.
EXPORT_TABLES: dict[str, str] = {
    "local_diagnosis": "diag_local_diagnosis",
    "job_group_info": "diag_job_group_info",
    "best_jobs_in_area": "diag_best_jobs_in_area",
    "job_groups": "diag_job_groups",
    "departements": "diag_departements",
    "regions": "diag_regions",
}
# Tables whose dbt model is still being written (issue 4): the pipeline exports them only
# once their model is in the dbt manifest, so runs stay green meanwhile. Empty this set when
# the models have landed; from then on a missing relation is an ExportError like any other.
PENDING_TABLES = frozenset({"local_diagnosis", "job_group_info", "best_jobs_in_area"})

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
LATEST = "latest"
MANIFEST = "manifest.json"
# Written into a vintage the publication gate held back: why, and later who accepted it.
PUBLICATION = "publication.json"
# Packages whose versions go into the manifest, so an export can be reproduced.
VERSIONED_PACKAGES = ("tremplin", "dbt-core", "dbt-duckdb", "duckdb", "dagster", "pandas")
# Rows fetched per round trip when streaming JSON Lines: bounded memory on big tables.
FETCH_BATCH_ROWS = 10_000

_EXPORT_NAME = re.compile(r"^[a-z0-9_]+$")
_TMP_PREFIX = ".tmp-"
_LOCK_FILE = ".publish.lock"
# What the current `latest` (or the held vintage) was exported from; see export_fingerprint.
INPUTS_RECORD = ".latest-inputs.json"
INPUTS_RECORD_KIND = "export"
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


# --------------------------------------------------------------------------- JSON shape


def camel_case(name: str) -> str:
    """`offers_per_10_job_seekers` -> `offersPer10JobSeekers` (the product's API spelling)."""
    parts = [part for part in name.split("_") if part]
    if not parts:
        raise ExportError(f"name {name!r} has no letters to build a JSON field from")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def json_path(column: str) -> tuple[str, ...]:
    """Where a flat column lands in the nested JSON record: `a__b_c` -> ("a", "bC")."""
    try:
        return tuple(camel_case(part) for part in column.split("__"))
    except ExportError:
        raise ExportError(
            f"column {column!r}: every part between double underscores must be a name"
        ) from None


def _json_paths(relation: str, names: list[str]) -> list[tuple[str, ...]]:
    """The JSON path of every column, refusing two columns that would land on one field."""
    leaves: dict[tuple[str, ...], str] = {}
    blocks: dict[tuple[str, ...], str] = {}
    paths = []
    for name in names:
        path = json_path(name)
        clash = leaves.get(path) or blocks.get(path)
        clash = clash or next(
            (leaves[path[:i]] for i in range(1, len(path)) if path[:i] in leaves), None
        )
        if clash:
            raise ExportError(
                f"{relation}: columns {clash!r} and {name!r} both map to the JSON field "
                f"{'.'.join(path[: len(json_path(clash))])}"
            )
        leaves[path] = name
        for i in range(1, len(path)):
            blocks.setdefault(path[:i], name)
        paths.append(path)
    return paths


def _nester(paths: list[tuple[str, ...]]):
    """A function building the nested record from a row's values, planned once per table."""
    plan: dict[str, Any] = {}  # key -> column index, or a sub-plan for a block
    for index, path in enumerate(paths):
        target = plan
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = index

    def compile_plan(node: dict):
        leaves = [(k, v) for k, v in node.items() if isinstance(v, int)]
        if len(leaves) == len(node):
            return lambda values: {key: values[index] for key, index in leaves}
        parts = [(k, v if isinstance(v, int) else compile_plan(v)) for k, v in node.items()]
        return lambda values: {
            key: values[part] if isinstance(part, int) else part(values) for key, part in parts
        }

    return compile_plan(plan)


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
        properties: dict[str, dict] = {}
        for name, child in duckdb_type.children:
            key = camel_case(name)
            if key in properties:
                raise ExportError(f"two fields of {duckdb_type} map to the JSON field {key}")
            properties[key] = json_schema_for_type(child, nullable=True)
        schema = {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
    else:
        raise ExportError(f"DuckDB type {duckdb_type} has no JSON export mapping")
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _table_schema(
    name: str,
    relation: str,
    columns: list[dict],
    paths: list[tuple[str, ...]],
    comment: str | None,
) -> dict:
    """The schema of one JSON Lines record: nested blocks, camelCase, closed objects.

    A block (`market` for the columns `market__*`) is always present in a record, so it is
    a required, non-nullable object; only the leaves carry the columns' nullability.
    """
    root: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": name,
        "description": comment or f"One row of the diagnostic table {relation}.",
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }
    for column, path in zip(columns, paths, strict=True):
        try:
            prop = json_schema_for_type(column["type"], nullable=column["nullable"])
        except ExportError as exc:
            raise ExportError(f"{relation}: column {column['name']!r}: {exc}") from None
        if column["comment"]:
            prop = {"description": column["comment"], **prop}
        target = root
        for depth, part in enumerate(path[:-1], start=1):
            if part not in target["properties"]:
                prefix = "__".join(column["name"].split("__")[:depth])
                target["properties"][part] = {
                    "description": f"Block of the columns {prefix}__* of {relation}.",
                    "type": "object",
                    "properties": {},
                    "required": [],
                    "additionalProperties": False,
                }
                target["required"].append(part)
            target = target["properties"][part]
        target["properties"][path[-1]] = prop
        target["required"].append(path[-1])
    return root


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
    if isinstance(value, dict):  # a STRUCT: its field names follow the JSON spelling too
        return {_struct_key(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    raise ValueError(f"unsupported value of type {type(value).__name__}")


@functools.cache
def _struct_key(name: str) -> str:
    return camel_case(str(name))


def _converter(duckdb_type: Any):
    """The cheapest faithful `_json_value` for a column type (None: the value as is)."""
    # NaN and infinities in FLOAT / DOUBLE columns are refused by json.dumps(allow_nan=False)
    # at write time (see `_write_table`), cheaper than testing every value here.
    if duckdb_type.id in ("varchar", "boolean", "float", "double"):
        return None
    if duckdb_type.id in _INTEGER_TYPES:
        return None
    return _json_value


def _error_field(error: Any) -> str:
    return _field_name(tuple(error.absolute_path))


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}
_ANNOTATIONS = {"$schema", "title", "description"}


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt == "date":
            return bool(_DATE.match(value)) and bool(dt.date.fromisoformat(value))
        if fmt == "date-time":
            return bool(_DATE_TIME.match(value)) and bool(
                dt.datetime.fromisoformat(value.replace("z", "Z"))
            )
        if fmt == "uuid":
            return bool(uuid.UUID(value))
    except ValueError:
        return False
    return True


def compile_record_check(schema: dict):
    """A fast checker for the schemas `_table_schema` writes; returns (path, message) or None.

    jsonschema spends about 300 µs on a 60-field nested record, a minute on the 160,000
    records of local_diagnosis. The published schemas use a small keyword set (type,
    properties, required, additionalProperties: false, items, enum, format, min/maxItems),
    which this checks directly; a keyword outside that set raises NotImplementedError and
    the caller falls back to jsonschema. tests/test_exports.py holds both to the same verdicts.
    """
    return _compile(schema)[0]


def _compile(schema: dict) -> tuple[Any, tuple | None]:
    """(check, scalar spec): the spec (python types, bool allowed, message) of a plain leaf
    lets the enclosing object test it inline, which is most of the cost saved."""
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "properties", "required", "additionalProperties", "items", "enum", "format",
        "minItems", "maxItems",
    }  # fmt: skip
    if unknown or schema.get("additionalProperties", False) is not False:
        raise NotImplementedError(f"keywords {sorted(unknown)} are not compiled")
    types = schema.get("type")
    type_names = [types] if isinstance(types, str) else list(types or [])
    py_types = tuple(t for name in type_names for t in _PY_TYPES[name]) or (object,)
    bool_ok = "boolean" in type_names or not type_names  # bool is an int in Python, not in JSON
    type_error = f"is not of type {' or '.join(type_names)}"
    compiled = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    properties = {k: check for k, (check, _) in compiled.items()}
    scalars = [(k, *spec) for k, (_, spec) in compiled.items() if spec is not None]
    nested = [(k, check) for k, (check, spec) in compiled.items() if spec is None]
    required = frozenset(schema.get("required", []))
    all_keys = frozenset(properties)
    items = _compile(schema["items"])[0] if "items" in schema else None
    enum = schema.get("enum")
    fmt = schema.get("format")
    min_items, max_items = schema.get("minItems"), schema.get("maxItems")

    if not (properties or required or items or enum is not None or fmt or min_items or max_items):

        def check_scalar(value: Any) -> tuple[tuple, str] | None:
            if isinstance(value, py_types) and (bool_ok or value.__class__ is not bool):
                return None
            return (), f"{value!r} {type_error}"

        return check_scalar, (py_types, bool_ok, type_error)

    def check_members(value: dict) -> tuple[tuple, str] | None:
        if value.keys() == all_keys:  # the usual record: every field, nothing else
            for key, leaf_types, leaf_bool_ok, leaf_error in scalars:
                item = value[key]
                if not isinstance(item, leaf_types) or (
                    item.__class__ is bool and not leaf_bool_ok
                ):
                    return (key,), f"{item!r} {leaf_error}"
            for key, sub in nested:
                error = sub(value[key])
                if error is not None:
                    return (key, *error[0]), error[1]
            return None
        if not required <= value.keys():
            return (), f"{sorted(required - value.keys())[0]!r} is a required property"
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None:
                return (), f"additional property {key!r} is not allowed"
            error = sub(item)
            if error is not None:
                return (key, *error[0]), error[1]
        return None

    def check(value: Any) -> tuple[tuple, str] | None:
        if not isinstance(value, py_types) or (value.__class__ is bool and not bool_ok):
            return (), f"{value!r} {type_error}"
        if enum is not None and value not in enum:
            return (), f"{value!r} is not one of {enum}"
        if fmt and value.__class__ is str and not _format_ok(fmt, value):
            return (), f"{value!r} is not a {fmt!r}"
        if value.__class__ is dict:
            return check_members(value)
        if value.__class__ is list:
            if min_items is not None and len(value) < min_items:
                return (), f"{value!r} has fewer than {min_items} items"
            if max_items is not None and len(value) > max_items:
                return (), f"{value!r} has more than {max_items} items"
            if items is not None:
                for index, item in enumerate(value):
                    error = items(item)
                    if error is not None:
                        return (index, *error[0]), error[1]
        return None

    return check, None


def _record_validator(schema: dict):
    """(record) -> (field path, message) or None; the compiled check, else jsonschema."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        fast = compile_record_check(schema)
    except NotImplementedError:
        fast = None

    def validate(record: dict) -> tuple[str, str] | None:
        if fast is not None and fast(record) is None:
            return None
        error = next(validator.iter_errors(record), None)
        if error is not None:
            return _error_field(error), error.message
        if fast is not None:  # stricter than jsonschema (e.g. date-time without a checker)
            path, message = fast(record)
            return _field_name(path), message
        return None

    return validate


def _field_name(path: tuple) -> str:
    field = ""
    for part in path:
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
    con: duckdb.DuckDBPyConnection, relation: str, duckdb_path: Path, docs: Any = None
) -> tuple[list[dict], str | None]:
    """Columns (name, DuckDB type, nullability, description) and the table description.

    Descriptions come from the dbt yml (`docs`, a ModelDoc from the manifest) where it has
    them, else from DuckDB comments.
    """
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
    documented = docs.columns if docs is not None else {}
    columns = []
    for (name, nullable, comment), duckdb_type in zip(rows, types, strict=True):
        doc = documented.get(name)
        columns.append(
            {
                "name": name,
                "type": duckdb_type,
                "nullable": bool(nullable),
                "comment": (doc.description if doc else "") or comment,
            }
        )
    table_comment = comment_row[0] if comment_row else None
    return columns, ((docs.description if docs is not None else "") or table_comment)


def _write_table(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    name: str,
    relation: str,
    duckdb_path: Path,
    log: logging.Logger,
    docs: Any = None,
) -> dict:
    """Write `<name>.schema.json`, `<name>.jsonl` and `<name>.parquet`; return the manifest entry.

    Parquet keeps the relation's flat snake_case columns; JSON Lines nests them (`a__b_c`
    -> `{"a": {"bC": ...}}`). Rows are ordered by every column (NULLs last) so the same
    content always gives the same bytes, and the JSONL is streamed in batches, each record
    validated against the written schema before it is written.
    """
    columns, comment = _describe_relation(con, relation, duckdb_path, docs)
    names = [column["name"] for column in columns]
    paths = _json_paths(relation, names)
    schema = _table_schema(name, relation, columns, paths, comment)
    validate = _record_validator(schema)
    column_of = {".".join(path): column for path, column in zip(paths, names, strict=True)}
    nest = _nester(paths)
    converters = [(i, conv) for i, c in enumerate(columns) if (conv := _converter(c["type"]))]
    schema_path = out_dir / f"{name}.schema.json"
    _dump_json_file(schema_path, schema)
    if any(column["type"].id in ("hugeint", "uhugeint") for column in columns):
        log.warning("%s: HUGEINT columns are written to Parquet as DOUBLE; cast in dbt", relation)

    schema_name, table_name = _split_relation(relation)
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
                values = list(row)
                for index, convert in converters:
                    try:
                        values[index] = convert(values[index])
                    except ValueError as exc:
                        raise ExportError(
                            f"{name} ({relation}): row {rows}: field {names[index]}: {exc}"
                        ) from None
                record = nest(values)
                error = validate(record)
                if error is not None:
                    field, message = error
                    raise ExportError(
                        f"{name} ({relation}): row {rows}: field {field}"
                        f"{_column_hint(field, column_of)}: does not match "
                        f"{schema_path.name}: {message}"
                    )
                try:
                    line = json.dumps(
                        record, ensure_ascii=False, separators=(",", ":"), allow_nan=False
                    )
                except ValueError:
                    column, value = next(
                        (names[i], v)
                        for i, v in enumerate(values)
                        if isinstance(v, float) and not math.isfinite(v)
                    )
                    raise ExportError(
                        f"{name} ({relation}): row {rows}: field {column}: {value} is not a "
                        "JSON number"
                    ) from None
                lines.append(line)
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


def _column_hint(field: str, column_of: dict[str, str]) -> str:
    """` (column a__b_c)` for an error on a nested field, so the dbt model can be fixed."""
    probe = field
    while probe:
        column = column_of.get(probe)
        if column is not None:
            return "" if column == field else f" (column {column})"
        probe = re.sub(r"(\[\d+\]|\.[^.\[]+|^[^.\[]+)$", "", probe)
    return ""


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

    with _publish_lock(exports_dir):
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
        vintage = _vintage_for(exports_dir, now)
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
    """The export code (this module, the gate, the diff, the dbt docs reader) and the
    package versions the manifest records; the export asset takes it when it is defined,
    right after the import, so it describes the code that will run."""
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
    """What an export's content and outcome depend on: the warehouse file (path, size and
    mtime: dbt replaces it on every build), the tables, the dbt docs that describe the
    fields, the landed files named in the manifest, the gate and `exporter_identity()`.
    None when the warehouse does not exist (nothing to compare)."""
    from assets.foundation.fingerprint import canonical, digest, file_sha256, stat_of

    warehouse = stat_of(duckdb_path)
    if warehouse is None:
        return None
    manifest = Path(dbt_manifest) if dbt_manifest is not None else None
    return digest(
        {
            "warehouse": {"path": str(Path(duckdb_path).resolve()), **warehouse},
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
        if held_dir.name in (latest, LATEST) or _read_publication(held_dir).get("status") != "held":
            return None
        try:
            held_manifest = json.loads((held_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not _files_in_place(held_dir, held_manifest):
            return None
        reasons = tuple(_read_publication(held_dir).get("reasons", ()))
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
            for kind in _FILE_KINDS:
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
        return load_models(dbt_manifest)
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
            docs = models.get(_split_relation(relation)[1])
            try:
                entries[name] = _write_table(
                    con, tmp_dir, name, relation, duckdb_path, log, docs=docs
                )
            except (duckdb.Error, OSError) as exc:
                raise ExportError(f"{name} ({relation}) in {duckdb_path}: {exc}") from None
    finally:
        con.close()

    manifest = {
        "vintage": vintage,
        "created_at": _utc_text(now),
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
        return _existing_result(exports_dir / old_vintage, previous)
    for held_dir in held_vintages(exports_dir):
        held_manifest = json.loads((held_dir / MANIFEST).read_text(encoding="utf-8"))
        if held_manifest.get("content_sha256") == manifest["content_sha256"]:
            reasons = tuple(_read_publication(held_dir).get("reasons", ()))
            log.warning(
                "export content equals vintage %s, already held: %s",
                held_dir.name,
                "; ".join(reasons),
            )
            return _existing_result(held_dir, held_manifest, reasons=reasons)

    _dump_json_file(tmp_dir / MANIFEST, manifest)
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
            _dump_json_file(
                tmp_dir / PUBLICATION,
                {
                    "status": "held",
                    "held_at": _utc_text(now),
                    "compared_with": previous["vintage"],
                    "reasons": list(hold_reasons),
                    "notes": list(notes),
                },
            )
    _fsync_tree(tmp_dir)
    final_dir = exports_dir / vintage
    try:
        os.rename(tmp_dir, final_dir)
    except OSError as exc:
        raise ExportError(f"cannot move the new export to {final_dir}: {exc}") from None
    _fsync_dir(exports_dir)
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
        _switch_latest(exports_dir, vintage)
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


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


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


def _switch_latest(exports_dir: Path, vintage: str) -> None:
    """Point `latest` at `vintage` with one rename: readers see the old or the new, never none."""
    link_tmp = exports_dir / f"{LATEST}.tmp-{secrets.token_hex(4)}"
    try:
        os.symlink(vintage, link_tmp)
        os.replace(link_tmp, exports_dir / LATEST)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(link_tmp)
        raise ExportError(f"cannot switch {exports_dir / LATEST} to {vintage}: {exc}") from None
    _fsync_dir(exports_dir)


def _read_publication(vintage_dir: Path) -> dict:
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
        if name != latest and _read_publication(exports_dir / name).get("status") == "held"
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
    with _publish_lock(exports_dir):
        manifest = verify_export(target)
        link = exports_dir / LATEST
        previous = os.readlink(link) if os.path.islink(link) else None
        record = _read_publication(target)
        if record:
            record.update(status="accepted", accepted_at=_utc_text(now))
            tmp = target / f".{PUBLICATION}.tmp"
            _dump_json_file(tmp, record)
            os.replace(tmp, target / PUBLICATION)
        _switch_latest(exports_dir, vintage)
    return previous, manifest


def tables_to_export(
    dbt_manifest: Path | None, log: logging.Logger | None = None
) -> dict[str, str]:
    """EXPORT_TABLES, minus the PENDING_TABLES whose dbt model is not in the manifest yet."""
    log = log or log_
    names: set[str] = set()
    if dbt_manifest is not None:
        from assets.dbt_manifest import ManifestError, load_models

        try:
            names = set(load_models(dbt_manifest))
        except ManifestError as exc:
            log.warning("%s", exc)
    selected = {}
    for name, relation in EXPORT_TABLES.items():
        if name in PENDING_TABLES and _split_relation(relation)[1] not in names:
            log.info("export %s skipped: dbt model %s is not in the manifest yet", name, relation)
            continue
        selected[name] = relation
    return selected


def source_entries(modules, landing_dir: Path) -> list[dict]:
    """What the manifest says about each source: its spec and the landed files used."""
    from assets.ingest.landing import current_files

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
    """The Dagster asset that publishes the diagnostic tables after the dbt build.

    A vintage held by the publication gate is not a data failure, it waits for a human: the
    asset materialises (metadata `published: false`, the reasons), logs a warning, and its
    check `publication_gate` fails with WARN severity, which the UI shows and which
    `tremplin run` turns into exit code 3.
    """
    import dagster as dg

    from assets.dbt_manifest import default_manifest_path
    from assets.export.gate import GATE_CHECK, GatePolicy
    from assets.foundation.settings import get_settings

    manifest_path = default_manifest_path()
    tables = tables_to_export(manifest_path)
    key = dg.AssetKey(["exports", "diagnostic_tables"])
    identity = exporter_identity()

    @dg.asset(
        key=key,
        group_name="exports",
        deps=[dg.AssetKey([relation]) for relation in tables.values()],
        kinds={"parquet", "json"},
        pool="warehouse",
        check_specs=[
            dg.AssetCheckSpec(
                GATE_CHECK,
                asset=key,
                description="The new vintage passed the publication gate and is `latest` "
                "(WARN when held for `tremplin accept`).",
            )
        ],
        description="Diagnostic tables for the product: Parquet + JSON Lines + JSON Schema "
        "per table and a manifest, under warehouse/exports/<vintage>/; `latest` is switched "
        "atomically unless the publication gate holds the vintage.",
    )
    def diagnostic_tables(context):
        settings = get_settings()
        sources = source_entries(modules, settings.landing_dir)
        selected = tables_to_export(manifest_path, log=context.log)
        synthetic = any(s["synthetic"] for s in sources)
        gate = GatePolicy.from_settings(settings)
        result = publish_export(
            settings.duckdb_path,
            settings.exports_dir,
            tables=selected,
            sources=sources,
            synthetic=synthetic,
            log=context.log,
            dbt_manifest=manifest_path,
            gate=gate,
            inputs_fingerprint=export_fingerprint(
                settings.duckdb_path,
                selected,
                sources=sources,
                synthetic=synthetic,
                dbt_manifest=manifest_path,
                gate=gate,
                identity=identity,
            ),
        )
        description = (
            f"vintage {result.vintage} held, latest unchanged: {'; '.join(result.hold_reasons)}"
            if result.held
            else f"latest is {result.vintage}"
        )
        return dg.MaterializeResult(
            metadata={
                "vintage": result.vintage,
                "path": str(result.path),
                "changed": result.changed,
                "unchanged": result.unchanged_inputs,
                "published": not result.held,
                "hold_reasons": dg.MetadataValue.json(list(result.hold_reasons)),
                "rows": dg.MetadataValue.json(result.row_counts),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=GATE_CHECK,
                    passed=not result.held,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=description,
                    metadata={"vintage": result.vintage},
                )
            ],
        )

    return diagnostic_tables
