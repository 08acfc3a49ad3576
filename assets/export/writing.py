"""One diagnostic table -> `<name>.schema.json`, `<name>.jsonl`, `<name>.jsonl.gz` and
`<name>.parquet` in a directory, with the manifest entry (rows, sha256 and size of each file).

DuckDB writes every data file itself. One SQL projection rounds the published doubles to
their declared precision (precision.py); Parquet keeps it flat and snake_case, and the JSON
Lines are the same rows with the columns nested into camelCase structs (`a__b_c` ->
`{"a": {"bC": ...}}`), written by `COPY ... (FORMAT json)`. No row passes through Python.

The records hold to the JSON Schema by construction: the schema is derived from the very
DuckDB types the JSON is written from. A sample of the written records (every record of a
small table) is then read back and checked with jsonschema-rs, so a mapping mistake is
caught before anything is published, naming the row, the field and the column.

It reads an open read-only connection and writes files; where they go, and when they
become visible, is vintages.py's and publish.py's business.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import duckdb

from assets.export.errors import ExportError
from assets.export.json_shape import camel_case, json_paths
from assets.export.precision import decimals_for
from assets.export.schemas import record_validator, table_schema
from assets.export.sql import quote_ident, split_relation

# Records read back and checked against the schema: all of them up to this many, else the
# first SAMPLE_HEAD and an even spread making up SAMPLE_ROWS (plus the last one).
SAMPLE_ROWS = 10_000
SAMPLE_HEAD = 1_000
# gzip level of `<table>.jsonl.gz`: 6 is zlib's default, a good size for the time.
GZIP_LEVEL = 6

_DATETIME_TYPES = {
    "timestamp",
    "timestamp_s",
    "timestamp_ms",
    "timestamp_ns",
    "timestamp with time zone",
}
_FLOAT_TYPES = {"float", "double"}


def file_entry(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def dump_json_file(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _describe_relation(
    con: duckdb.DuckDBPyConnection, relation: str, duckdb_path: Path, docs: Any = None
) -> tuple[list[dict], str | None]:
    """Columns (name, DuckDB type, nullability, description) and the table description.

    Descriptions come from the dbt yml (`docs`, a ModelDoc from the manifest) where it has
    them, else from DuckDB comments.
    """
    schema_name, table_name = split_relation(relation)
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
    types = con.sql(f"select * from {quote_ident(schema_name)}.{quote_ident(table_name)}").types
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


# --------------------------------------------------------------------------- SQL projections


# Rounded twice: first to four more decimals, as a DECIMAL, then to the declared ones, half
# away from zero on that decimal. A sum that is exactly on a half (194.25 BMO projects after
# the bridge's quarter weights) comes out 194.24999999999997 or 194.25000000000003 depending
# on the order the engine added in; rounded once as a double it would publish 194.2 or
# 194.3. The first rounding takes such values back to the half (order noise is ~1e-13
# relative, far below 0.5e-4 of a last digit), so the DuckDB and Spark builds, and any two
# builds of the same inputs, publish the same digits. A DECIMAL has no -0.0 either.
TIE_GUARD_DECIMALS = 4


def _children(duckdb_type: Any) -> dict:
    return dict(duckdb_type.children)


def _rounded(ref: str, duckdb_type: Any, field: str, depth: int, undeclared: list[str]) -> str:
    """`ref` with every DOUBLE / FLOAT inside it rounded to its declared decimals.

    Returns `ref` itself when nothing inside needs rounding, so most columns are read as is.
    """
    type_id = duckdb_type.id
    if type_id in _FLOAT_TYPES:
        decimals = decimals_for(field)
        if decimals is None:
            undeclared.append(field)
            return ref
        exact = f"cast({ref} as decimal(38, {decimals + TIE_GUARD_DECIMALS}))"
        return f"cast(round({exact}, {decimals}) as {duckdb_type})"
    if type_id in ("list", "array"):
        var = f"x{depth}"
        child = _children(duckdb_type)["child"]
        inner = _rounded(var, child, f"{field}[]", depth + 1, undeclared)
        if inner == var:
            return ref
        return f"cast(list_transform({ref}, lambda {var}: {inner}) as {duckdb_type})"
    if type_id == "struct":
        fields = []
        changed = False
        for name, child in duckdb_type.children:
            sub = f"{ref}.{quote_ident(name)}"
            expr = _rounded(sub, child, f"{field}.{name}", depth, undeclared)
            changed = changed or expr != sub
            fields.append(f"{quote_ident(name)} := {expr}")
        if not changed:
            return ref
        return f"case when {ref} is null then null else struct_pack({', '.join(fields)}) end"
    return ref


def _json_value(ref: str, duckdb_type: Any, depth: int) -> str:
    """`ref` as DuckDB's JSON writer must see it to write the published JSON value.

    Struct fields take their camelCase names; timestamps are RFC 3339 in UTC with `Z` (the
    connection's time zone is UTC); integral decimals are written as integers and the others
    as numbers, as the Parquet file keeps the exact decimal.
    """
    type_id = duckdb_type.id
    if type_id in _DATETIME_TYPES:
        return (
            f"case when microsecond({ref}) % 1000000 = 0 "
            f"then strftime({ref}, '%Y-%m-%dT%H:%M:%SZ') "
            f"else strftime({ref}, '%Y-%m-%dT%H:%M:%S.%fZ') end"
        )
    if type_id == "decimal":
        return (
            f"case when {ref} = trunc({ref}) then to_json(cast({ref} as hugeint)) "
            f"else to_json(cast({ref} as double)) end"
        )
    if type_id in ("list", "array"):
        var = f"x{depth}"
        inner = _json_value(var, _children(duckdb_type)["child"], depth + 1)
        return ref if inner == var else f"list_transform({ref}, lambda {var}: {inner})"
    if type_id == "struct":
        fields = []
        for name, child in duckdb_type.children:
            expr = _json_value(f"{ref}.{quote_ident(name)}", child, depth)
            fields.append(f"{quote_ident(camel_case(str(name)))} := {expr}")
        return f"case when {ref} is null then null else struct_pack({', '.join(fields)}) end"
    return ref


def _nonfinite(ref: str, duckdb_type: Any, depth: int) -> str | None:
    """A predicate true when a NaN or infinity hides in `ref` (no JSON form), else None."""
    type_id = duckdb_type.id
    if type_id in _FLOAT_TYPES:
        return f"coalesce(not isfinite({ref}), false)"
    if type_id in ("list", "array"):
        var = f"x{depth}"
        inner = _nonfinite(var, _children(duckdb_type)["child"], depth + 1)
        if inner is None:
            return None
        return f"coalesce(list_bool_or(list_transform({ref}, lambda {var}: {inner})), false)"
    if type_id == "struct":
        parts = [
            p
            for name, child in duckdb_type.children
            if (p := _nonfinite(f"{ref}.{quote_ident(name)}", child, depth)) is not None
        ]
        return " or ".join(f"({p})" for p in parts) if parts else None
    return None


def _nested_select(names: list[str], types: list[Any], paths: list[tuple[str, ...]]) -> str:
    """The select list of the JSON record: top-level fields, blocks as struct_pack."""
    tree: dict[str, Any] = {}
    for name, duckdb_type, path in zip(names, types, paths, strict=True):
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _json_value(f"_t.{quote_ident(name)}", duckdb_type, 0)

    def render(node: dict) -> str:
        fields = [
            f"{quote_ident(key)} := {render(value) if isinstance(value, dict) else value}"
            for key, value in node.items()
        ]
        return f"struct_pack({', '.join(fields)})"

    return ", ".join(
        f"{render(value) if isinstance(value, dict) else value} as {quote_ident(key)}"
        for key, value in tree.items()
    )


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path, options: str) -> int:
    path = str(target).replace("'", "''")
    row = con.execute(f"copy ({query}) to '{path}' ({options})").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- one table


def write_table(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    name: str,
    relation: str,
    duckdb_path: Path,
    log: logging.Logger,
    docs: Any = None,
) -> dict:
    """Write the schema, JSON Lines (plain and gzipped) and Parquet; return the manifest entry.

    Rows are ordered by every (rounded) column, NULLs last, so the same content always
    gives the same bytes, in the same order in both files.
    """
    columns, comment = _describe_relation(con, relation, duckdb_path, docs)
    names = [column["name"] for column in columns]
    types = [column["type"] for column in columns]
    paths = json_paths(relation, names)
    undeclared: list[str] = []
    flat = [
        _rounded(quote_ident(n), t, n, 0, undeclared) for n, t in zip(names, types, strict=True)
    ]
    for column in columns:
        column["decimals"] = _declared_decimals(column["name"], column["type"])
    schema = table_schema(name, relation, columns, paths, comment)
    schema_path = out_dir / f"{name}.schema.json"
    dump_json_file(schema_path, schema)
    validate = record_validator(schema)
    if undeclared:
        log.warning(
            "%s: no precision declared in assets/export/precision.py for %s: published unrounded",
            relation,
            ", ".join(undeclared),
        )
    if any(column["type"].id in ("hugeint", "uhugeint") for column in columns):
        log.warning("%s: HUGEINT columns are written to Parquet as DOUBLE; cast in dbt", relation)

    schema_name, table_name = split_relation(relation)
    source = f"{quote_ident(schema_name)}.{quote_ident(table_name)}"
    rounded = ", ".join(f"{expr} as {quote_ident(n)}" for expr, n in zip(flat, names, strict=True))
    rows_query = f"select {rounded} from {source}"
    order = ", ".join(f"_t.{quote_ident(n)} asc nulls last" for n in names)
    _refuse_nonfinite(con, name, relation, names, types, rows_query, order)

    parquet_path = out_dir / f"{name}.parquet"
    rows = _copy(
        con,
        f"select _t.* from ({rows_query}) _t order by {order}",
        parquet_path,
        "format parquet, compression zstd",
    )
    if rows == 0:
        parquet_path.unlink(missing_ok=True)
        raise ExportError(
            f"{name} ({relation}) in {duckdb_path} has 0 rows: an empty diagnostic table is "
            "never published"
        )
    jsonl_path = out_dir / f"{name}.jsonl"
    # On one thread DuckDB's JSON writer streams; on more it holds batches of the ordered
    # output in memory (1.5 GB for local_diagnosis) and is no faster.
    threads = con.execute("select current_setting('threads')").fetchone()[0]
    con.execute("set threads = 1")
    try:
        json_rows = _copy(
            con,
            f"select {_nested_select(names, types, paths)} from ({rows_query}) _t order by {order}",
            jsonl_path,
            "format json",
        )
    finally:
        con.execute(f"set threads = {int(threads)}")
    if json_rows != rows:
        raise ExportError(f"{name} ({relation}): {json_rows} JSON records for {rows} rows")
    gz_path = out_dir / f"{name}.jsonl.gz"
    # zlib lets go of the GIL: the gzip runs on the other core while the sample is checked
    # and the files are hashed.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        packing = pool.submit(gzip_file, jsonl_path, gz_path)
        try:
            _check_sample(
                jsonl_path, rows, validate, name, relation, schema_path.name, paths, names
            )
            files = {
                "parquet": file_entry(parquet_path),
                "jsonl": file_entry(jsonl_path),
                "schema": file_entry(schema_path),
            }
        finally:
            packing.result()
    files["jsonl_gz"] = file_entry(gz_path)

    log.info("export %s: %d rows from %s", name, rows, relation)
    return {
        "relation": relation,
        "rows": rows,
        "files": {kind: files[kind] for kind in ("parquet", "jsonl", "jsonl_gz", "schema")},
    }


def _declared_decimals(field: str, duckdb_type: Any) -> Any:
    """The decimals of a DOUBLE column, or {struct field: ...} for the ones inside it."""
    type_id = duckdb_type.id
    if type_id in _FLOAT_TYPES:
        return decimals_for(field)
    if type_id in ("list", "array"):
        return _declared_decimals(f"{field}[]", _children(duckdb_type)["child"])
    if type_id == "struct":
        found = {
            name: value
            for name, child in duckdb_type.children
            if (value := _declared_decimals(f"{field}.{name}", child)) is not None
        }
        return found or None
    return None


def gzip_file(source: Path, target: Path) -> None:
    """`source` gzipped into `target`, byte-identical for identical input (no name, mtime 0)."""
    with (
        source.open("rb") as raw,
        target.open("wb") as out,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0
        ) as packed,
    ):
        shutil.copyfileobj(raw, packed, 1 << 20)


def _refuse_nonfinite(
    con: duckdb.DuckDBPyConnection,
    name: str,
    relation: str,
    names: list[str],
    types: list[Any],
    rows_query: str,
    order: str,
) -> None:
    """NaN and infinities have no JSON form: name the first row and field holding one."""
    checks = [
        (column, predicate)
        for column, duckdb_type in zip(names, types, strict=True)
        if (predicate := _nonfinite(f"_t.{quote_ident(column)}", duckdb_type, 0)) is not None
    ]
    if not checks:
        return
    any_bad = " or ".join(f"({predicate})" for _, predicate in checks)
    found = con.execute(f"select count(*) from ({rows_query}) _t where {any_bad}").fetchone()[0]
    if not found:
        return
    flags = ", ".join(f"{predicate} as _f{i}" for i, (_, predicate) in enumerate(checks))
    values = ", ".join(f"_t.{quote_ident(column)}" for column, _ in checks)
    flagged = " or ".join(f"_f{i}" for i in range(len(checks)))
    row = con.execute(
        f"select * from (select row_number() over (order by {order}) as _row, {flags}, "
        f"{values} from ({rows_query}) _t) where {flagged} order by _row limit 1"
    ).fetchone()
    position = int(row[0])
    index = next(i for i in range(len(checks)) if row[1 + i])
    value = row[1 + len(checks) + index]
    raise ExportError(
        f"{name} ({relation}): row {position}: field {checks[index][0]}: {value} is not a "
        "JSON number"
    )


def _sample_positions(rows: int) -> set[int]:
    if rows <= SAMPLE_ROWS:
        return set(range(rows))
    stride = max(1, (rows - SAMPLE_HEAD) // (SAMPLE_ROWS - SAMPLE_HEAD))
    return set(range(SAMPLE_HEAD)) | set(range(SAMPLE_HEAD, rows, stride)) | {rows - 1}


def _check_sample(
    jsonl_path: Path,
    rows: int,
    validate: Any,
    name: str,
    relation: str,
    schema_name: str,
    paths: list[tuple[str, ...]],
    names: list[str],
) -> None:
    """Read back a sample of the written records and hold each to the schema."""
    wanted = _sample_positions(rows)
    column_of = {path: column for path, column in zip(paths, names, strict=True)}
    with jsonl_path.open("rb") as handle:
        for position, line in enumerate(handle):
            if position not in wanted:
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ExportError(
                    f"{name} ({relation}): row {position + 1}: not valid JSON: {exc}"
                ) from None
            error = validate(record)
            if error is not None:
                field_path, message = error
                raise ExportError(
                    f"{name} ({relation}): row {position + 1}: field "
                    f"{_field_name(field_path)}{_column_hint(field_path, column_of)}: does not "
                    f"match {schema_name}: {message}"
                )


def _field_name(path: tuple) -> str:
    field = ""
    for part in path:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "(record)"


def _column_hint(path: tuple, column_of: dict[tuple[str, ...], str]) -> str:
    """` (column a__b_c)` for an error on a nested field, so the dbt model can be fixed."""
    for end in range(len(path), 0, -1):
        column = column_of.get(tuple(path[:end]))
        if column is not None:
            return "" if column == _field_name(path) else f" (column {column})"
    return ""
