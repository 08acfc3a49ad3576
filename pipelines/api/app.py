"""The read-only HTTP API over the published vintage (FastAPI on uvicorn).

Records are returned as the exported bytes (the files store) or as PostgreSQL's `jsonb`
text of the same record (the PostgreSQL store): never rebuilt from columns. Every
response of a vintage carries its weak ETag, `Cache-Control` and the vintage's name;
`If-None-Match` is answered 304 before any lookup. Parameters are validated against the
same patterns the OpenAPI document publishes; anything else is a 4xx JSON error naming
what was wrong, never a 500.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from assets.serving.files_store import StoreUnavailableError
from assets.serving.tables import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, SERVED_TABLES, ServedTable
from pipelines.api.openapi import VINTAGE_HEADER, openapi_document

log_ = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")
MAX_QUERY_BYTES = 1024
MAX_PATH_BYTES = 512
JSON = "application/json"


class _Invalid(Exception):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail)
        self.parameter, self.detail = parameter, detail


def _error(status: int, error: str, detail: str, parameter: str | None = None, headers=None):
    body = {"error": error, "detail": detail}
    if parameter is not None:
        body["parameter"] = parameter
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


class GuardMiddleware:
    """Refuses, before routing, what a read-only API never accepts: other methods than
    GET/HEAD (405), oversized paths or query strings (414)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        response = None
        if scope["method"] not in ALLOWED_METHODS:
            response = _error(
                405,
                "method_not_allowed",
                f"{scope['method'][:16]} is not allowed: this API is read-only (GET, HEAD)",
                headers={"Allow": ", ".join(ALLOWED_METHODS)},
            )
        elif len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            response = _error(414, "uri_too_long", f"query string over {MAX_QUERY_BYTES} bytes")
        elif len(scope.get("raw_path") or scope["path"].encode()) > MAX_PATH_BYTES:
            response = _error(414, "uri_too_long", f"path over {MAX_PATH_BYTES} bytes")
        if response is not None:
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _single(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters, each given once and known."""
    values: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            shown = name[:40]
            raise _Invalid(shown, f"unknown query parameter {shown!r} (allowed: {sorted(allowed)})")
        if name in values:
            raise _Invalid(name, f"query parameter {name!r} given more than once")
        values[name] = value
    return values


def _int_param(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = values.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not low <= int(text) <= high:
        raise _Invalid(name, f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _matches(etag: str, header: str | None) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def create_app(store, *, cache_max_age: int = 300, version: str = "1") -> FastAPI:
    """The API over `store` (a FilesStore or a PostgresStore)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if hasattr(store, "open"):
            await store.open()
        else:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(store.start)
        yield
        await store.close()

    app = FastAPI(
        title="tremplin",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(GuardMiddleware)
    cache_control = f"public, max-age={cache_max_age}"

    def headers_for(meta) -> dict[str, str]:
        return {"ETag": meta.etag, "Cache-Control": cache_control, VINTAGE_HEADER: meta.vintage}

    async def current(request: Request):
        """(meta, a 304 response or None)."""
        meta = await store.current()
        if _matches(meta.etag, request.headers.get("if-none-match")):
            return meta, Response(status_code=304, headers=headers_for(meta))
        return meta, None

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(request: Request, exc: StoreUnavailableError):
        log_.error("no vintage to serve: %s", exc)
        return _error(503, "unavailable", "no vintage can be served right now")

    @app.exception_handler(_Invalid)
    async def invalid(request: Request, exc: _Invalid):
        return _error(422, "invalid_parameter", exc.detail, exc.parameter)

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return _error(404, "not_found", "no such endpoint (see /openapi.json)")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc):
        return _error(405, "method_not_allowed", "this API is read-only (GET, HEAD)")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # pragma: no cover - last resort
        log_.exception("unexpected error on %s", request.url.path)
        return _error(500, "internal_error", "unexpected error (logged)")

    def add_routes(spec: ServedTable) -> None:
        allowed = {f.param for f in spec.filters} | {"limit", "offset"}
        filters = {f.param: f for f in spec.filters}

        async def get_one(request: Request, key: str):
            _single(request, set())
            if spec.key_value(key) is None:
                raise _Invalid("key", f"{spec.key_field} must match {spec.key_pattern}")
            meta, not_modified = await current(request)
            if not_modified:
                return not_modified
            meta, record, present = await store.record(spec.table, key)
            if record is None:
                detail = (
                    f"no {spec.table} record {key!r} in vintage {meta.vintage}"
                    if present
                    else f"table {spec.table} is not in vintage {meta.vintage}"
                )
                return _error(404, "not_found", detail, headers={VINTAGE_HEADER: meta.vintage})
            return Response(record, media_type=JSON, headers=headers_for(meta))

        async def get_page(request: Request):
            values = _single(request, allowed)
            chosen = {}
            for param, text in values.items():
                if param in filters:
                    value = filters[param].parse(text)
                    if value is None:
                        raise _Invalid(param, f"{param} must match {filters[param].pattern}")
                    chosen[param] = value
            limit = _int_param(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            offset = _int_param(values, "offset", 0, 0, MAX_OFFSET)
            meta, not_modified = await current(request)
            if not_modified:
                return not_modified
            meta, items, more = await store.page(spec.table, chosen, limit, offset)
            if items is None:
                detail = f"table {spec.table} is not in vintage {meta.vintage}"
                return _error(404, "not_found", detail, headers={VINTAGE_HEADER: meta.vintage})
            head = orjson.dumps(
                {
                    "vintage": meta.vintage,
                    "table": spec.table,
                    "limit": limit,
                    "offset": offset,
                    "next": offset + limit if more else None,
                }
            )
            body = head[:-1] + b',"items":[' + b",".join(items) + b"]}"
            return Response(body, media_type=JSON, headers=headers_for(meta))

        app.add_api_route(
            f"/v1/{spec.path}", get_page, methods=["GET", "HEAD"], include_in_schema=False
        )
        if spec.key_field is not None:
            app.add_api_route(
                f"/v1/{spec.path}/{{key}}",
                get_one,
                methods=["GET", "HEAD"],
                include_in_schema=False,
            )

    for spec in SERVED_TABLES:
        add_routes(spec)

    async def manifest(request: Request):
        _single(request, set())
        meta, not_modified = await current(request)
        if not_modified:
            return not_modified
        return Response(meta.manifest_bytes, media_type=JSON, headers=headers_for(meta))

    async def health(request: Request):
        meta = await store.current()
        now = dt.datetime.now(dt.UTC)
        created = _parse_time(meta.manifest.get("created_at"))
        sources = []
        for source in meta.manifest.get("sources", []):
            fetched = [_parse_time(f.get("fetched_at")) for f in source.get("files", [])]
            fetched = [f for f in fetched if f is not None]
            last = max(fetched) if fetched else None
            sources.append(
                {
                    "slug": source.get("slug"),
                    "synthetic": source.get("synthetic"),
                    "mode": source.get("mode"),
                    "lastFetchedAt": _text(last),
                    "ageSeconds": None if last is None else int((now - last).total_seconds()),
                }
            )
        body = {
            "status": "ok",
            "backend": store.backend,
            "vintage": meta.vintage,
            "createdAt": meta.manifest.get("created_at"),
            "ageSeconds": None if created is None else int((now - created).total_seconds()),
            "servedSince": _text(meta.loaded_at),
            "synthetic": meta.manifest.get("synthetic"),
            "rows": {k: v.get("rows") for k, v in meta.manifest.get("tables", {}).items()},
            "sources": sources,
        }
        return Response(
            orjson.dumps(body),
            media_type=JSON,
            headers={"Cache-Control": "no-store", VINTAGE_HEADER: meta.vintage},
        )

    async def ping(request: Request):
        """The floor of the benchmark: the same framework, no lookup."""
        return Response(b'{"ok":true}', media_type=JSON)

    openapi_cache: dict[str, bytes] = {}

    async def openapi(request: Request):
        meta = await store.current()
        body = openapi_cache.get(meta.vintage)
        if body is None:
            openapi_cache.clear()
            body = orjson.dumps(openapi_document(meta.schemas, meta.vintage, version))
            openapi_cache[meta.vintage] = body
        return Response(body, media_type=JSON, headers=headers_for(meta))

    for path, endpoint in (
        ("/v1/manifest", manifest),
        ("/health", health),
        ("/ping", ping),
        ("/openapi.json", openapi),
    ):
        app.add_api_route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
    return app


def _parse_time(text) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _text(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
