"""Schedules, jobs, partitions and retries: each tick asks for the right job and period.

Evaluated with `build_schedule_context` (no daemon), and a backfill of three quarters of
a test-only periodic source runs end to end in process on an ephemeral instance.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import periodic_source as ps
import pytest

from assets.foundation.settings import get_settings, load_automation
from pipelines.definitions import build_definitions
from pipelines.jobs import backfill, partition_keys_between
from pipelines.sources import source_modules

PARIS = ZoneInfo("Europe/Paris")
SOURCES = ("francetravail_rome", "etalab_decoupage_administratif")


def schedule_named(defs: dg.Definitions, name: str) -> dg.ScheduleDefinition:
    return {s.name: s for s in defs.schedules}[name]


def job_assets(defs: dg.Definitions, job_name: str) -> set[str]:
    job = defs.get_repository_def().get_job(job_name)
    return {k.to_user_string() for k in job.asset_layer.executable_asset_keys}


@pytest.mark.parametrize("slug", SOURCES)
def test_each_source_schedule_refreshes_the_source_and_its_downstream_only(defs, slug):
    schedule = schedule_named(defs, f"{slug}_schedule")
    assert schedule.execution_timezone == "Europe/Paris"
    assert schedule.job_name == f"refresh_{slug}"
    tick = datetime(2026, 3, 2, 6, 0, tzinfo=PARIS)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags["source"] == slug and request.partition_key is None

    assets = job_assets(defs, schedule.job_name)
    assert f"{slug}/landing" in assets and "exports/diagnostic_tables" in assets
    others = [s for s in SOURCES if s != slug]
    assert not [a for a in assets if a.split("/")[0] in others]
    graph = defs.resolve_asset_graph()
    own = dg.AssetSelection.groups(slug).downstream().resolve(graph)
    assert assets == {k.to_user_string() for k in own}


def test_current_referentials_are_not_partitioned(defs):
    graph = defs.resolve_asset_graph()
    for slug in SOURCES:
        assert graph.get(dg.AssetKey([slug, "landing"])).partitions_def is None


def test_only_fetch_steps_retry_and_landing_assets_declare_freshness(defs):
    for assets_def in defs.resolve_asset_graph().assets_defs:
        keys = {k.to_user_string() for k in assets_def.keys}
        policy = assets_def.op.retry_policy if assets_def.is_executable else None
        is_landing = all(k.endswith("/landing") for k in keys)
        assert (policy is not None) == is_landing, f"retry policy on {sorted(keys)[:3]}"
    for slug in SOURCES:
        spec = defs.resolve_asset_graph().get(dg.AssetKey([slug, "landing"]))
        assert spec.freshness_policy is not None
    for job in defs.resolve_all_job_defs():
        assert job.op_retry_policy is None, job.name


def test_automation_file_retunes_schedules_without_code(env, monkeypatch):
    path = env / "automation.yaml"
    path.write_text(
        "sources:\n"
        "  francetravail_rome: {schedule: '30 5 1 * *', enabled: false, max_age_hours: 24}\n"
        "  etalab_decoupage_administratif: {schedule: 'off'}\n"
    )
    monkeypatch.setenv("TREMPLIN_AUTOMATION", str(path))
    defs = build_definitions()
    names = {s.name for s in defs.schedules}
    assert "etalab_decoupage_administratif_schedule" not in names
    rome = schedule_named(defs, "francetravail_rome_schedule")
    assert rome.cron_schedule == "30 5 1 * *"
    assert rome.default_status == dg.DefaultScheduleStatus.STOPPED
    landing = defs.resolve_asset_graph().get(dg.AssetKey(["francetravail_rome", "landing"]))
    assert landing.freshness_policy.fail_window.to_timedelta() == timedelta(hours=24)

    path.write_text("sources:\n  francetravail_rome: {cron: '0 6 * * *'}\n")
    with pytest.raises(ValueError, match="francetravail_rome: unknown keys \\['cron'\\]"):
        load_automation(get_settings())


def test_periodic_schedule_asks_for_the_last_complete_quarter(env):
    defs = ps.build_test_definitions()
    schedule = schedule_named(defs, f"{ps.SLUG}_schedule")
    tick = datetime(2025, 6, 15, 7, 0, tzinfo=PARIS)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2025-01-01"
    assert schedule.job_name == f"refresh_{ps.SLUG}"
    assert job_assets(defs, schedule.job_name) == {
        f"{ps.SLUG}/landing",
        f"{ps.SLUG}/counts",
        "test_total",
    }
    # Whole-graph jobs run without a partition key: periodic sources stay out of them.
    assert job_assets(defs, "refresh_all") == {"test_total"}


def test_backfill_of_three_quarters_end_to_end(env):
    for quarter in (1, 2, 3):
        ps.write_quarter(env / "mirror", 2024, quarter, quarter * 10)
    keys = partition_keys_between(ps.SPEC, "2024-01-01", "2024-07-01")
    assert keys == ["2024-01-01", "2024-04-01", "2024-07-01"]
    defs = ps.build_test_definitions()
    instance = dg.DagsterInstance.ephemeral()
    results = backfill(defs, ps.SLUG, keys, instance=instance, then=("build_warehouse",))
    assert [r.success for r in results] == [True] * 4

    raw = env / "warehouse" / "raw" / ps.SLUG / "counts"
    assert sorted(p.stem for p in raw.glob("*.parquet")) == keys
    q2 = pd.read_parquet(raw / "2024-04-01.parquet")
    assert list(q2["value"]) == ["20", "21"] and set(q2["_source_file"]) == {"fake_2024T2.csv"}
    assert (raw.parent / "total.txt").read_text() == str(21 + 41 + 61)
    materialized = instance.get_materialized_partitions(dg.AssetKey([ps.SLUG, "counts"]))
    assert materialized == set(keys)


def test_backfill_of_a_period_missing_from_the_mirror_fails_naming_it(env):
    ps.write_quarter(env / "mirror", 2024, 1, 1)
    defs = ps.build_test_definitions()
    instance = dg.DagsterInstance.ephemeral()
    [result] = backfill(defs, ps.SLUG, ["2024-04-01"], instance=instance, then=("build_warehouse",))
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no file for partition 2024-04-01" in failure.step_failure_data.error.message


def test_registry_sources_all_get_a_schedule_and_a_sensor(defs):
    slugs = [m.SPEC.slug for m in source_modules()]
    assert {s.name for s in defs.schedules} >= {f"{s}_schedule" for s in slugs}
    assert {s.name for s in defs.sensors} >= {f"{s}_new_release" for s in slugs} | {
        "run_failure_alert"
    }
