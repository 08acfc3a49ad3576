"""The OpenAPI 3.1 document of the API, generated from the served vintage's JSON Schemas.

The record schemas are the export's own `<table>.schema.json` files (JSON Schema 2020-12,
which OpenAPI 3.1 uses as is): nothing about a record is written a second time here. The
parameters come from assets/serving/tables.py, the same definitions the API validates
with.
"""

from __future__ import annotations

from assets.serving.tables import MAX_LIMIT, MAX_OFFSET, SERVED_TABLES, ServedTable

VINTAGE_HEADER = "X-Tremplin-Vintage"
MAX_PARAM_LENGTH = 64

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "parameter": {"type": "string"},
    },
}
_HEADERS = {
    VINTAGE_HEADER: {"description": "The vintage answering", "schema": {"type": "string"}},
    "ETag": {"description": "Weak ETag of the vintage", "schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(ref: str, description: str) -> dict:
    return {
        "description": description,
        "headers": _HEADERS,
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }


def _string_param(name: str, where: str, pattern: str, description: str) -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": "string", "pattern": f"^{pattern}$", "maxLength": MAX_PARAM_LENGTH},
    }


def _list_params(spec: ServedTable) -> list[dict]:
    params = []
    for f in spec.filters:
        if f.integer:
            params.append(
                {
                    "name": f.param,
                    "in": "query",
                    "required": False,
                    "description": f"Only records whose `{f.param}` equals this value",
                    "schema": {"type": "integer", "minimum": 1000, "maximum": 9999},
                }
            )
        else:
            params.append(
                _string_param(
                    f.param, "query", f.pattern, f"Only records whose `{f.param}` is this value"
                )
            )
    params.append(
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Records per page",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
        }
    )
    params.append(
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "description": "Records to skip (key order)",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
    )
    return params


def _page_schema(table: str) -> dict:
    return {
        "type": "object",
        "required": ["vintage", "table", "limit", "offset", "next", "items"],
        "properties": {
            "vintage": {"type": "string"},
            "table": {"type": "string", "const": table},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "next": {
                "type": ["integer", "null"],
                "description": "Offset of the next page, null on the last one",
            },
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{table}"}},
        },
    }


def openapi_document(schemas: dict[str, dict], vintage: str, version: str) -> dict:
    """The document for a vintage whose record schemas are `schemas` (table -> schema)."""
    components: dict[str, dict] = {"Error": _ERROR}
    paths: dict[str, dict] = {}
    common_errors = {
        "304": {"description": "Not modified (If-None-Match matched the vintage's ETag)"},
        "404": _error("No such record, or the table is not in this vintage"),
        "414": _error("Path or query string too long"),
        "422": _error("A malformed parameter (named in `parameter`)"),
        "503": _error("No vintage can be served"),
    }
    for spec in SERVED_TABLES:
        schema = schemas.get(spec.table)
        if schema is None:
            continue
        components[spec.table] = {k: v for k, v in schema.items() if k != "$schema"}
        components[f"{spec.table}_page"] = _page_schema(spec.table)
        paths[f"/v1/{spec.path}"] = {
            "get": {
                "operationId": f"list_{spec.table}",
                "summary": f"{spec.summary}: a page of records, filtered",
                "parameters": _list_params(spec),
                "responses": {
                    "200": _json(f"#/components/schemas/{spec.table}_page", "A page of records"),
                    **common_errors,
                },
            }
        }
        if spec.key_field is not None:
            paths[f"/v1/{spec.path}/{{key}}"] = {
                "get": {
                    "operationId": f"get_{spec.table}",
                    "summary": f"{spec.summary}: one record by `{spec.key_field}`",
                    "parameters": [
                        _string_param("key", "path", spec.key_pattern, f"`{spec.key_field}`")
                    ],
                    "responses": {
                        "200": _json(f"#/components/schemas/{spec.table}", "The record"),
                        **common_errors,
                    },
                }
            }
    paths["/v1/manifest"] = {
        "get": {
            "operationId": "get_manifest",
            "summary": "The served vintage's manifest (tables, rows, sha256, sources)",
            "responses": {
                "200": {
                    "description": "manifest.json",
                    "headers": _HEADERS,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "304": common_errors["304"],
                "414": common_errors["414"],
                "422": common_errors["422"],
                "503": common_errors["503"],
            },
        }
    }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Vintage served, its age, and the freshness of its sources",
            "responses": {
                "200": {
                    "description": "Serving",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "414": common_errors["414"],
                "503": common_errors["503"],
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tremplin diagnostic tables",
            "version": version,
            "description": "Read-only API over the published export vintage "
            f"(generated for vintage {vintage}). Records are the exported JSON records.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
