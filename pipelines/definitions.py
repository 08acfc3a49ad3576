"""The one Definitions object of the tremplin code location.

Built lazily by `@dg.definitions`, so importing this module does no work; loading the
definitions reads the dbt manifest that `tremplin manifest` (dbt parse) prepared, and the
operator's automation overrides (`TREMPLIN_AUTOMATION`).
"""

from __future__ import annotations

import dagster as dg

from assets.export.asset import build_export_asset
from assets.foundation.settings import get_settings, load_automation
from assets.ingest.factory import build_source_assets
from assets.ingest.status import effective_spec
from assets.report.asset import build_report_asset
from assets.serving.asset import build_postgres_asset, publish_enabled
from pipelines.dbt import build_dbt_assets, dbt_resource
from pipelines.jobs import build_jobs
from pipelines.schedules import build_schedules
from pipelines.sensors import build_sensors
from pipelines.sources import source_modules


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    overrides = load_automation(settings)
    modules = source_modules()
    specs = [effective_spec(m.SPEC, overrides) for m in modules]
    source_assets = [
        a for m, spec in zip(modules, specs, strict=True) for a in build_source_assets(m, spec)
    ]
    dbt_assets = build_dbt_assets()
    export_asset = build_export_asset(modules)
    publication = [build_postgres_asset()] if publish_enabled(settings) else []
    return dg.Definitions(
        assets=[*source_assets, dbt_assets, export_asset, build_report_asset(), *publication],
        jobs=build_jobs(specs),
        schedules=build_schedules([m.SPEC for m in modules], settings),
        sensors=build_sensors(specs, settings),
        resources={"dbt": dbt_resource()},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
