"""JSON Schema for the exported records, from the DuckDB column types, and the compiled
validator (jsonschema-rs) that holds the written JSON Lines records to it.

A number the export rounds carries `x-decimals` (an annotation keyword: validators ignore
it), the decimals declared for that field in precision.py.
"""

from __future__ import annotations

from typing import Any

import duckdb

from assets.export.errors import ExportError
from assets.export.json_shape import camel_case

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

INTEGER_TYPES = {
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
    elif type_id in INTEGER_TYPES:
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


def _annotate_decimals(schema: dict, decimals: Any) -> None:
    """`x-decimals: n` on every number the export rounds (see precision.py); a list's items
    and a struct's fields carry their own."""
    if decimals is None:
        return
    if isinstance(decimals, int):
        schema["x-decimals"] = decimals
    elif "items" in schema:
        _annotate_decimals(schema["items"], decimals)
    elif "properties" in schema:
        for name, value in decimals.items():
            _annotate_decimals(schema["properties"][camel_case(name)], value)


def table_schema(
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
        _annotate_decimals(prop, column.get("decimals"))
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


def record_validator(schema: dict):
    """(record) -> (field path, message) or None, with the compiled jsonschema-rs validator.

    When a record breaks the schema in several places, the error reported is the first one
    in the record's own field order, so the message does not depend on the validator's.
    """
    import jsonschema_rs

    try:
        jsonschema_rs.meta.validate(schema)
        validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        title = schema.get("title")
        raise ExportError(f"the JSON Schema of {title!r} is not valid: {exc}") from None

    def validate(record: dict) -> tuple[tuple, str] | None:
        errors = list(validator.iter_errors(record))
        if not errors:
            return None
        first = min(errors, key=lambda error: _position(record, error.instance_path))
        return tuple(first.instance_path), first.message

    return validate


def _position(record: Any, path: Any) -> tuple:
    """Where a path lies in the record, in document order (deeper errors after their parent)."""
    position = []
    value = record
    for part in path:
        if isinstance(value, dict):
            keys = list(value)
            position.append(keys.index(part) if part in value else len(keys))
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            position.append(part)
            value = value[part]
        else:
            break
    return tuple(position)
