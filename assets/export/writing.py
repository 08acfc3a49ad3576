"""One diagnostic table -> `<name>.schema.json`, `<name>.jsonl` and `<name>.parquet` in a
directory, with the manifest entry (rows, sha256 and size of each file).

It reads an open read-only connection and writes files; where they go, and when they
become visible, is vintages.py's and publish.py's business.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import duckdb

from assets.export.errors import ExportError
from assets.export.json_shape import json_paths, json_value, nester
from assets.export.schemas import INTEGER_TYPES, record_validator, table_schema
from assets.export.sql import quote_ident, split_relation

# Rows fetched per round trip when streaming JSON Lines: bounded memory on big tables.
FETCH_BATCH_ROWS = 10_000


def _converter(duckdb_type: Any):
    """The cheapest faithful `json_value` for a column type (None: the value as is)."""
    # NaN and infinities in FLOAT / DOUBLE columns are refused by json.dumps(allow_nan=False)
    # at write time (see `write_table`), cheaper than testing every value here.
    if duckdb_type.id in ("varchar", "boolean", "float", "double"):
        return None
    if duckdb_type.id in INTEGER_TYPES:
        return None
    return json_value


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


def write_table(
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
    paths = json_paths(relation, names)
    schema = table_schema(name, relation, columns, paths, comment)
    validate = record_validator(schema)
    column_of = {".".join(path): column for path, column in zip(paths, names, strict=True)}
    nest = nester(paths)
    converters = [(i, conv) for i, c in enumerate(columns) if (conv := _converter(c["type"]))]
    schema_path = out_dir / f"{name}.schema.json"
    dump_json_file(schema_path, schema)
    if any(column["type"].id in ("hugeint", "uhugeint") for column in columns):
        log.warning("%s: HUGEINT columns are written to Parquet as DOUBLE; cast in dbt", relation)

    schema_name, table_name = split_relation(relation)
    order = ", ".join(f"{quote_ident(column)} asc nulls last" for column in names)
    query = f"select * from {quote_ident(schema_name)}.{quote_ident(table_name)} order by {order}"

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
            "parquet": file_entry(parquet_path),
            "jsonl": file_entry(jsonl_path),
            "schema": file_entry(schema_path),
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
