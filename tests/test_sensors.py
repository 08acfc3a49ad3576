"""Release sensors and the failure alert, evaluated tick by tick with no daemon.

Mirror mode: a mirror directory that gains a new vintage triggers exactly that source's
job (its assets and their downstream), once. Live mode: validators served by a real HTTP
server on 127.0.0.1. Failure: a failed run is recorded and POSTed to a receiver on
127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import periodic_source as ps
import pytest
from loopback import Reply, serve

from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.fetch import fetch_source
from assets.ingest.spec import Download, SourceSpec
from pipelines.definitions import build_definitions
from pipelines.sensors import live_tick

ETALAB = "etalab_decoupage_administratif"
ROME = "francetravail_rome"
log = logging.getLogger("test")


@pytest.fixture
def env(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    for slug in (ETALAB, ROME):
        shutil.copytree(PROJECT_ROOT / "warehouse" / "mirror" / slug, mirror / slug)
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.setenv("TREMPLIN_MIRROR", str(mirror))
    monkeypatch.setenv("TREMPLIN_AUTOMATION", "")
    monkeypatch.delenv("TREMPLIN_MODE", raising=False)
    monkeypatch.delenv("TREMPLIN_ALERT_WEBHOOK", raising=False)
    return tmp_path


def tick(defs: dg.Definitions, name: str, cursor: str | None):
    sensor = {s.name: s for s in defs.sensors}[name]
    context = dg.build_sensor_context(cursor=cursor, repository_def=defs.get_repository_def())
    data = sensor.evaluate_tick(context)
    return sensor, data.run_requests, data.cursor


def test_a_new_vintage_in_the_mirror_triggers_exactly_its_source(env):
    from assets.sources import etalab_decoupage_administratif, francetravail_rome

    settings = get_settings()
    for module in (etalab_decoupage_administratif, francetravail_rome):
        fetch_source(module.SPEC, settings, log=log)  # the warehouse is up to date
    defs = build_definitions()
    cursors = {}
    for slug in (ETALAB, ROME):
        _, requests, cursors[slug] = tick(defs, f"{slug}_new_release", None)
        assert requests == [], f"{slug}: files already landed are not a release"

    departements = env / "mirror" / ETALAB / "departements.json"
    records = json.loads(departements.read_text(encoding="utf-8"))
    records[0]["nom"] += " (2027)"
    departements.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")

    sensor, requests, cursors[ETALAB] = tick(defs, f"{ETALAB}_new_release", cursors[ETALAB])
    [request] = requests
    assert sensor.job_name == f"refresh_{ETALAB}"
    assert request.tags["source"] == ETALAB and "departements.json" in request.tags["files"]
    job = defs.get_repository_def().get_job(sensor.job_name)
    assets = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {f"{ETALAB}/landing", f"{ETALAB}/departements", "dim_departement"} <= assets
    assert "exports/diagnostic_tables" in assets
    # ROME's own assets are not refreshed; the facts that combine both sources are.
    assert not [a for a in assets if a.startswith(ROME)]
    assert "dim_job_group" not in assets and "dim_job_title" not in assets

    _, rome_requests, _ = tick(defs, f"{ROME}_new_release", cursors[ROME])
    assert rome_requests == []
    _, again, _ = tick(defs, f"{ETALAB}_new_release", cursors[ETALAB])
    assert again == [], "the same release triggers once"


def test_first_tick_on_an_empty_warehouse_triggers_the_source(env):
    defs = build_definitions()
    _, requests, cursor = tick(defs, f"{ETALAB}_new_release", None)
    [request] = requests
    assert request.run_key.startswith(f"{ETALAB}:")
    assert json.loads(cursor)["mirror"].keys() == {"departements.json", "regions.json"}


def test_a_new_quarter_file_requests_its_partition(env):
    ps.write_quarter(env / "mirror", 2024, 1, 1)
    defs = ps.build_test_definitions()
    name = f"{ps.SLUG}_new_release"
    _, requests, cursor = tick(defs, name, None)
    assert [r.partition_key for r in requests] == ["2024-01-01"]
    ps.write_quarter(env / "mirror", 2024, 2, 5)
    ps.write_quarter(env / "mirror", 2024, 3, 7)
    sensor, requests, cursor = tick(defs, name, cursor)
    assert [r.partition_key for r in requests] == ["2024-04-01", "2024-07-01"]
    assert sensor.job_name == f"refresh_{ps.SLUG}"
    assert len({r.run_key for r in requests}) == 2


def live_spec(url: str) -> SourceSpec:
    return SourceSpec(
        slug="test_live",
        publisher="tests",
        title="live test",
        landing_page=url,
        licence="none",
        cadence="daily",
        downloads=(Download(url=url, file_name="data.csv", format="csv"),),
        mirror_patterns=("data.csv",),
    )


def test_live_probe_follows_the_publishers_validators(env):
    settings = get_settings()
    etag = {"value": '"v1"'}
    body = b"a,b\n1,2\n"
    with serve() as server:
        server.route("/data.csv", lambda r: Reply(body=body, headers={"ETag": etag["value"]}))
        server.route("/missing.csv", Reply(status=404))
        spec = live_spec(server.url("/data.csv"))
        now = datetime(2026, 1, 5, 8, tzinfo=UTC)
        every = timedelta(minutes=30)

        requests, cursor, _ = live_tick(spec, settings, {}, log, now=now, probe_every=every)
        assert len(requests) == 1, "nothing landed live yet: a release"
        requests, cursor, reason = live_tick(
            spec, settings, cursor, log, now=now + timedelta(minutes=5), probe_every=every
        )
        assert requests == [] and "next probe" in reason, "probes are spaced out"
        requests, cursor, reason = live_tick(
            spec, settings, cursor, log, now=now + timedelta(hours=1), probe_every=every
        )
        assert requests == [] and "no new release" in reason
        etag["value"] = '"v2"'
        requests, cursor, _ = live_tick(
            spec, settings, cursor, log, now=now + timedelta(hours=2), probe_every=every
        )
        assert len(requests) == 1 and requests[0].tags["source"] == "test_live"
        # Probes never download: HEAD (refused by this server) then a GET whose body is
        # not read.
        methods = {r.method for r in server.requests_to("/data.csv")}
        assert methods == {"GET"}

        unpublished = live_spec(server.url("/missing.csv"))
        requests, _, _ = live_tick(unpublished, settings, {}, log, now=now)
        assert requests == []


def test_live_probe_matches_what_the_last_live_fetch_landed(env, monkeypatch):
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    settings = get_settings()
    with serve() as server:
        server.route("/data.csv", Reply(body=b"a,b\n1,2\n", headers={"ETag": '"same"'}))
        spec = live_spec(server.url("/data.csv"))
        fetch_source(spec, settings, log=log)
        requests, _, _ = live_tick(spec, settings, {}, log, now=datetime.now(UTC))
    assert requests == []


class Receiver:
    """Records JSON POSTs on 127.0.0.1 (an alert webhook stand-in)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


def test_failed_run_is_recorded_and_posted_to_the_webhook(env, monkeypatch):
    ps.write_quarter(env / "mirror", 2024, 1, 1)
    defs = ps.build_test_definitions()
    instance = dg.DagsterInstance.ephemeral()
    monkeypatch.setitem(ps.BROKEN, "parse", True)
    result = defs.resolve_job_def(f"refresh_{ps.SLUG}").execute_in_process(
        instance=instance, partition_key="2024-01-01", raise_on_error=False
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [failure_event] = [
        e.dagster_event
        for e in instance.all_logs(result.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
    ]
    sensor = {s.name: s for s in defs.sensors}["run_failure_alert"]
    with Receiver() as receiver:
        monkeypatch.setenv("TREMPLIN_ALERT_WEBHOOK", receiver.url)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failure_event,
            dagster_instance=instance,
            dagster_run=run,
        ).for_run_failure()
        sensor(context)
    [post] = receiver.posts
    assert post["sources"] == [ps.SLUG] and post["partition"] == "2024-01-01"
    [step] = post["steps"]
    assert step["step"] == f"{ps.SLUG}__raw"
    assert f"{ps.SLUG}/counts" in step["assets"]
    assert "expected one quarterly file" in step["error"]
    assert ps.SLUG in post["text"] and "failed" in post["text"]
    lines = (env / "warehouse" / "runs" / "failures.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["run_id"] == result.run_id
