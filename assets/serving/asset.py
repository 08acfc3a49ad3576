"""The Dagster asset that publishes `exports/latest` to PostgreSQL after the export.

It exists only when `TREMPLIN_PUBLISH_DSN` is set (pipelines/definitions.py asks
`publish_enabled`), so a run without a database is unchanged. Publishing the vintage
already live is a no-op; a vintage held by the gate never moved `latest`, so the live one
stays.
"""

from __future__ import annotations

PUBLISH_KEY = ("exports", "postgres")
EXPORT_KEY = ("exports", "diagnostic_tables")


def publish_enabled(settings) -> bool:
    return bool(settings.publish_dsn)


def build_postgres_asset():
    import dagster as dg

    from assets.foundation.settings import get_settings

    @dg.asset(
        key=dg.AssetKey(list(PUBLISH_KEY)),
        group_name="exports",
        deps=[dg.AssetKey(list(EXPORT_KEY))],
        kinds={"postgres"},
        description="The latest verified vintage in PostgreSQL (TREMPLIN_PUBLISH_DSN): one "
        "schema per vintage, the `tremplin` views switched in one transaction, the last "
        "TREMPLIN_PUBLISH_KEEP vintages kept (docs/SERVING.md).",
    )
    def postgres_publication(context):
        from assets.serving.postgres import PublishError, publish_vintage

        settings = get_settings()
        try:
            result = publish_vintage(
                settings.publish_dsn,
                settings.exports_dir,
                keep=settings.publish_keep,
                log=context.log,
            )
        except PublishError as exc:
            raise dg.Failure(description=f"PostgreSQL publication refused: {exc}") from None
        return dg.MaterializeResult(
            metadata={
                "vintage": result.vintage,
                "previous": result.previous or "",
                "loaded": result.loaded,
                "switched": result.switched,
                "dropped": dg.MetadataValue.json(list(result.dropped)),
                "rows": dg.MetadataValue.json(result.rows),
                "load_seconds": dg.MetadataValue.json(result.load_seconds),
            }
        )

    return postgres_publication
