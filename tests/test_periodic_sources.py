"""The real periodic sources: daily offers snapshots, yearly BMO surveys, quarterly INSEE
releases. Their partitions follow the published file names, their schedules ask for the
right period, a new file in the mirror requests exactly its period, `tremplin run` ingests
the due periods and a backfill of several snapshots lands one raw partition each.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.francetravail_api import FranceTravailApiError
from assets.ingest.raw import raw_path
from assets.sources import francetravail_bmo, francetravail_offres, insee_chomage_localise
from pipelines.jobs import mirror_periods, periods_to_ingest

PARIS = ZoneInfo("Europe/Paris")
MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
OFFRES = francetravail_offres.SLUG
INSEE = insee_chomage_localise.SLUG
BMO = francetravail_bmo.SLUG


def copy_offers_snapshot(mirror, day: str, like: str = "2025-11-13") -> None:
    """The embedded snapshot's pages under another snapshot date (a second snapshot)."""
    target = mirror / OFFRES
    target.mkdir(parents=True, exist_ok=True)
    for page in sorted((MIRROR / OFFRES).glob(f"*{like}*")):
        shutil.copy2(page, target / page.name.replace(like, day))


@pytest.mark.parametrize(
    ("module", "file_name", "key"),
    [
        (francetravail_offres, "synthetic__offres__2025-11-13__p00003.json.gz", "2025-11-13"),
        (francetravail_bmo, "Base_open_data_BMO_2024.xlsx", "2024"),
        (francetravail_bmo, "Base_open_data_23.xlsx", "2023"),
        (insee_chomage_localise, "sl_etc_2021T4.xls", "2021-10-01"),
        (insee_chomage_localise, "sl_etc_2026T2.xlsx", "2026-04-01"),
    ],
)
def test_published_file_names_give_the_partition(module, file_name, key):
    assert module.SPEC.partitioning.key_for_file(file_name) == key


@pytest.mark.parametrize(
    ("slug", "tick", "key"),
    [
        # The snapshot of the day the schedule ticks (Paris time, end_offset=1).
        (OFFRES, datetime(2026, 11, 25, 5, 0, tzinfo=PARIS), "2026-11-25"),
        # BMO N is published in April of N: the partition of the current year.
        (BMO, datetime(2026, 4, 6, 6, 0, tzinfo=PARIS), "2026"),
        # Mid-December: the third quarter is out.
        (INSEE, datetime(2026, 12, 20, 7, 0, tzinfo=PARIS), "2026-07-01"),
    ],
)
def test_schedules_ask_for_the_period_just_published(defs, slug, tick, key):
    schedule = {s.name: s for s in defs.schedules}[f"{slug}_schedule"]
    assert schedule.execution_timezone == "Europe/Paris"
    assert schedule.job_name == f"refresh_{slug}"
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == key
    assert request.tags["source"] == slug


def test_whole_graph_jobs_leave_periodic_sources_to_their_own_runs(defs):
    repo = defs.get_repository_def()
    refresh_all = {
        k.to_user_string() for k in repo.get_job("refresh_all").asset_layer.executable_asset_keys
    }
    for slug in (OFFRES, BMO, INSEE):
        assert not [a for a in refresh_all if a.startswith(f"{slug}/")]
        ingest = repo.get_job(f"ingest_{slug}")
        assert {k.to_user_string() for k in ingest.asset_layer.executable_asset_keys} == {
            f"{slug}/landing",
            *(
                f"{slug}/{t}"
                for t in ({OFFRES: ("offers",), BMO: ("projects",), INSEE: ("rates",)}[slug])
            ),
        }
    assert "exports/diagnostic_tables" in refresh_all


def test_a_new_insee_release_in_the_mirror_requests_its_quarter_only(env, defs):
    mirror = env / "mirror" / INSEE
    mirror.mkdir(parents=True)
    shutil.copy2(MIRROR / INSEE / "sl_etc_2021T4.xls", mirror)
    sensor = {s.name: s for s in defs.sensors}[f"{INSEE}_new_release"]

    def tick(cursor):
        context = dg.build_sensor_context(cursor=cursor, repository_def=defs.get_repository_def())
        data = sensor.evaluate_tick(context)
        return data.run_requests, data.cursor

    requests, cursor = tick(None)
    assert [r.partition_key for r in requests] == ["2021-10-01"]
    shutil.copy2(MIRROR / INSEE / "sl_etc_2021T4.xls", mirror / "sl_etc_2022T1.xls")
    requests, cursor = tick(cursor)
    assert [r.partition_key for r in requests] == ["2022-01-01"]
    assert sensor.job_name == f"refresh_{INSEE}"
    requests, _ = tick(cursor)
    assert requests == [], "the same release triggers once"


def test_run_ingests_new_periods_and_the_newest_one(env):
    copy_offers_snapshot(env / "mirror", "2025-11-12")
    copy_offers_snapshot(env / "mirror", "2025-11-13")
    settings = get_settings()
    assert mirror_periods(francetravail_offres.SPEC, settings) == ["2025-11-12", "2025-11-13"]
    assert periods_to_ingest(francetravail_offres, settings) == ["2025-11-12", "2025-11-13"]
    for key in ("2025-11-12", "2025-11-13"):
        target = raw_path(settings.raw_dir, OFFRES, "offers", key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"published")
    # Published periods are not re-read, except the newest (a re-issued snapshot).
    assert periods_to_ingest(francetravail_offres, settings) == ["2025-11-13"]
    assert periods_to_ingest(francetravail_bmo, settings) == []  # no file in this mirror


def test_live_mode_asks_for_the_period_that_exists_now(env, monkeypatch):
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    settings = get_settings()
    when = datetime(2026, 11, 25, 9, 0, tzinfo=PARIS)
    assert periods_to_ingest(francetravail_offres, settings, when) == ["2026-11-25"]
    assert periods_to_ingest(insee_chomage_localise, settings, when) == ["2026-07-01"]
    assert periods_to_ingest(francetravail_bmo, settings, when) == ["2026"]


def test_live_offers_refuse_a_past_snapshot(env, monkeypatch):
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    with pytest.raises(FranceTravailApiError, match="only take today's snapshot"):
        francetravail_offres.fetch(
            francetravail_offres.SPEC, get_settings(), partition_key="2020-01-01"
        )


def test_a_workbook_filed_under_another_survey_year_is_refused(env, defs):
    mirror = env / "mirror" / BMO
    mirror.mkdir(parents=True)
    # Last year's survey still served under this year's name: not the 2025 survey.
    shutil.copy2(
        MIRROR / BMO / "Base_open_data_BMO_2024.xlsx", mirror / "Base_open_data_BMO_2025.xlsx"
    )
    job = defs.resolve_job_def(f"ingest_{BMO}")
    result = job.execute_in_process(partition_key="2025", raise_on_error=False)
    assert not result.success
    errors = [e.step_failure_data.error for e in result.all_events if e.is_step_failure]
    text = " ".join(e.message + (e.cause.message if e.cause else "") for e in errors)
    assert "partition '2024'" in text and "'2025'" in text
    assert not raw_path(get_settings().raw_dir, BMO, "projects", "2025").exists()


def test_backfill_of_two_snapshots_lands_one_partition_each(env, capsys):
    from pipelines.cli import main

    copy_offers_snapshot(env / "mirror", "2025-11-10")
    copy_offers_snapshot(env / "mirror", "2025-11-12")
    code = main(["backfill", OFFRES, "2025-11-09", "2025-11-12", "--no-build"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "2 period(s) without a mirror file" in out.out
    raw = get_settings().raw_dir / OFFRES / "offers"
    assert sorted(p.name for p in raw.glob("*.parquet")) == [
        "2025-11-10.parquet",
        "2025-11-12.parquet",
    ]
    for day in ("2025-11-10", "2025-11-12"):
        frame = pd.read_parquet(raw / f"{day}.parquet", columns=["snapshot_date"])
        assert set(frame["snapshot_date"]) == {day} and len(frame) > 1000


def test_live_sensor_finds_the_next_insee_file_by_its_name(env):
    """The publisher's next `sl_etc_<YYYY>T<Q>.xls` is probed: 404 until it is published,
    then a run for that quarter. Served on 127.0.0.1 under the published file names."""
    import dataclasses
    import logging

    from loopback import Reply, serve

    from assets.ingest.spec import Download
    from pipelines.sensors import live_tick

    settings = get_settings()
    body = (MIRROR / INSEE / "sl_etc_2021T4.xls").read_bytes()
    with serve() as server:
        spec = dataclasses.replace(
            insee_chomage_localise.SPEC,
            downloads=(
                Download(
                    url=server.url("/sl_etc_{year}T{quarter}.xls"),
                    file_name="sl_etc_{year}T{quarter}.xls",
                    format="xls",
                ),
            ),
        )
        log = logging.getLogger("test")
        before = datetime(2026, 12, 18, 9, 0, tzinfo=PARIS)
        requests, cursor, reason = live_tick(spec, settings, {}, log, now=before)
        assert requests == [] and "no new release" in reason
        assert [r.path for r in server.requests] == ["/sl_etc_2026T3.xls"]
        server.route("/sl_etc_2026T3.xls", Reply(body=body, headers={"ETag": '"2026T3"'}))
        later = datetime(2026, 12, 20, 9, 0, tzinfo=PARIS)
        [request], cursor, _ = live_tick(spec, settings, cursor, log, now=later)
        assert request.partition_key == "2026-07-01"
        assert request.tags["files"] == "sl_etc_2026T3.xls"


@pytest.mark.parametrize("job", ["build_warehouse", "refresh_all"])
def test_full_refresh_is_an_option_of_the_jobs_holding_dbt(defs, job):
    from pipelines.jobs import build_run_config

    config = build_run_config({}, full_refresh=True)
    assert dg.validate_run_config(defs.resolve_job_def(job), config)
