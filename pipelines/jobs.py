"""Jobs: the whole graph, and its three stages for partial reruns."""

from __future__ import annotations

import dagster as dg

SOURCE_TAG = "source"


def build_jobs(source_slugs: list[str]) -> list[dg.UnresolvedAssetJobDefinition]:
    sources = dg.AssetSelection.groups(*source_slugs)
    exports = dg.AssetSelection.groups("exports")
    models = dg.AssetSelection.all() - sources - exports
    return [
        dg.define_asset_job(
            "refresh_all",
            selection=dg.AssetSelection.all(),
            description="Fetch every source, validate, build the warehouse with dbt, export.",
        ),
        dg.define_asset_job(
            "ingest_sources", selection=sources, description="Fetch, parse and validate."
        ),
        dg.define_asset_job(
            "build_warehouse", selection=models, description="dbt build on the current raw data."
        ),
        dg.define_asset_job(
            "publish_exports", selection=exports, description="Export the diagnostic tables."
        ),
    ]
