"""JSON Schema for the exported records, from the DuckDB column types, and the fast record
checker that holds every JSON Lines record to it before anything is published.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
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
    """A fast checker for the schemas `table_schema` writes; returns (path, message) or None.

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


def record_validator(schema: dict):
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
