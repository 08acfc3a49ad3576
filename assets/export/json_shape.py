"""The JSON shape of an exported record: camelCase field names, `a__b` columns nested as
blocks, and DuckDB values turned into what `json.dumps` writes faithfully.

Shared by the writer (field names of the SQL it writes records with), the schemas (field
names), the diff (values shown) and the docs page (field paths); it knows nothing of files
or vintages.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import uuid
from typing import Any

from assets.export.errors import ExportError


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


def json_paths(relation: str, names: list[str]) -> list[tuple[str, ...]]:
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


def json_value(value: Any) -> Any:
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
        return {_struct_key(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    raise ValueError(f"unsupported value of type {type(value).__name__}")


@functools.cache
def _struct_key(name: str) -> str:
    return camel_case(str(name))
