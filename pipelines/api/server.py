"""`tremplin serve`: the API on uvicorn, over the export files or PostgreSQL."""

from __future__ import annotations

import logging

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def build_store(settings, backend: str | None = None):
    """The files store (default) or the PostgreSQL one (`TREMPLIN_API_DSN`, or forced)."""
    from assets.serving.files_store import FilesStore

    backend = backend or ("postgres" if settings.api_dsn else "files")
    if backend == "postgres":
        dsn = settings.api_dsn or settings.publish_dsn
        if not dsn:
            raise SystemExit(
                "tremplin serve --backend postgres: set TREMPLIN_API_DSN (or TREMPLIN_PUBLISH_DSN)"
            )
        from assets.serving.pg_store import PostgresStore

        return PostgresStore(dsn)
    return FilesStore(settings.exports_dir)


def build_app(settings, backend: str | None = None):
    from pipelines.api.app import create_app

    return create_app(build_store(settings, backend), cache_max_age=settings.api_cache_max_age)


def serve(
    settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    backend: str | None = None,
    access_log: bool = False,
) -> int:
    import uvicorn

    logging.getLogger("assets.serving").setLevel(logging.INFO)
    app = build_app(settings, backend)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        server_header=False,
        # Requests over this are refused by h11/httptools before reaching the app.
        h11_max_incomplete_event_size=16 * 1024,
    )
    uvicorn.Server(config).run()
    return 0
