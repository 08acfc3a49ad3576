"""The one Definitions object of the tremplin code location.

Built lazily by `@dg.definitions`, so importing this module does no work; loading the
definitions reads the dbt manifest that `tremplin manifest` (dbt parse) prepared.
"""

from __future__ import annotations

import dagster as dg

from assets.exports import build_export_asset
from assets.sources.factory import build_source_assets
from pipelines.dbt import build_dbt_assets, dbt_resource
from pipelines.jobs import build_jobs
from pipelines.sources import source_modules


def build_definitions() -> dg.Definitions:
    source_assets = [a for m in source_modules() for a in build_source_assets(m)]
    dbt_assets = build_dbt_assets()
    export_asset = build_export_asset(source_modules())
    return dg.Definitions(
        assets=[*source_assets, dbt_assets, export_asset],
        jobs=build_jobs([m.SPEC.slug for m in source_modules()]),
        resources={"dbt": dbt_resource()},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
