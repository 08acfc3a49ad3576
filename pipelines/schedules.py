"""One schedule per source, on the publisher's calendar, in Europe/Paris time.

Each schedule runs `refresh_<slug>` (the source and everything downstream). The cron
comes from the source spec (`SourceSpec.schedule`) and can be replaced, or the schedule
stopped, in the automation YAML (`TREMPLIN_AUTOMATION`, default
`deploy/automation.yaml`) without touching code. A periodic source's tick asks for the
latest period that exists at the tick time; older periods are backfills.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.foundation.settings import Settings, SourceAutomation, get_settings, load_automation
from assets.ingest.factory import latest_partition, partitions_def_for
from assets.ingest.spec import TIMEZONE, SourceSpec
from assets.ingest.status import effective_spec
from pipelines.jobs import SOURCE_TAG, refresh_job_name

TRIGGER_TAG = "trigger"


def schedule_name(slug: str) -> str:
    return f"{slug}_schedule"


def _status(enabled: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED


def build_source_schedule(spec: SourceSpec, enabled: bool = True) -> dg.ScheduleDefinition:
    """The schedule of one source (its spec must have a cron)."""
    assert spec.schedule is not None, f"{spec.slug}: no schedule declared"
    slug = spec.slug
    partitions = partitions_def_for(spec)

    @dg.schedule(
        name=schedule_name(slug),
        cron_schedule=spec.schedule,
        execution_timezone=TIMEZONE,
        job_name=refresh_job_name(slug),
        default_status=_status(enabled),
        description=f"Look for a new release of {spec.title} ({spec.cadence}).",
        tags={SOURCE_TAG: slug, TRIGGER_TAG: "schedule"},
    )
    def source_schedule(context: dg.ScheduleEvaluationContext):
        tags = {SOURCE_TAG: slug, TRIGGER_TAG: "schedule"}
        if partitions is None:
            return dg.RunRequest(tags=tags)
        key = latest_partition(partitions, context.scheduled_execution_time)
        if key is None:
            return dg.SkipReason(f"{slug}: no period has started yet")
        return dg.RunRequest(partition_key=key, tags=tags)

    return source_schedule


def build_schedules(
    specs: Sequence[SourceSpec], settings: Settings | None = None
) -> list[dg.ScheduleDefinition]:
    overrides = load_automation(settings or get_settings())
    schedules = []
    for spec in specs:
        effective = effective_spec(spec, overrides)
        if effective.schedule is None:
            continue
        enabled = overrides.get(spec.slug, SourceAutomation()).enabled
        schedules.append(build_source_schedule(effective, enabled))
    return schedules
