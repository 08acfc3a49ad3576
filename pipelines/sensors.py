"""Sensors: a new upstream release triggers its source; a failed run raises an alert.

`<slug>_new_release` (one per source) runs `refresh_<slug>`, i.e. that source's landing
and raw assets and everything downstream, and nothing else:
* in mirror mode it watches `<mirror>/<slug>/`: a file matching the spec's patterns that
  is new or whose bytes changed (cursor: size + mtime, sha256 when those moved) and that
  was not landed already is a release. For a periodic source each new file asks for its
  own partition (the period read from its name);
* in live mode it asks the publisher cheaply: a HEAD (or a streamed GET whose body is not
  read, for servers refusing HEAD) on the spec's probe URLs, and compares ETag /
  Last-Modified / Content-Length with what it saw last, or with what the last live fetch
  landed. Probes are spaced out (hourly by default) to stay polite.

The run key carries the digest of what changed, so a release triggers one run even when
a cursor is lost. `run_failure_alert` records each failed run and notifies the webhook
(`pipelines/alerts.py`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import dagster as dg
import requests

from assets.foundation.settings import Settings, SourceAutomation, get_settings, load_automation
from assets.ingest.factory import latest_partition, partitions_def_for
from assets.ingest.http import USER_AGENT, FetchError, redact
from assets.ingest.landing import landed_history
from assets.ingest.spec import SourceSpec
from pipelines.alerts import failure_record, record_and_notify
from pipelines.jobs import SOURCE_TAG, refresh_job_name
from pipelines.schedules import TRIGGER_TAG

MIRROR_INTERVAL_S = 60
DEFAULT_PROBE_EVERY = timedelta(hours=1)
PROBE_BODY_CAP = 1024 * 1024  # "get" probes hash small metadata pages only
MAX_PROBE_REDIRECTS = 5
HASH_CHUNK = 1024 * 1024


def sensor_name(slug: str) -> str:
    return f"{slug}_new_release"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:16]


def _tags(slug: str, files: Sequence[str]) -> dict[str, str]:
    return {SOURCE_TAG: slug, TRIGGER_TAG: "new_release", "files": ", ".join(files)[:200]}


# ------------------------------------------------------------------------ mirror mode


def mirror_tick(
    spec: SourceSpec, settings: Settings, cursor: dict, log
) -> tuple[list[dg.RunRequest], dict]:
    """Run requests for new or changed mirror files, and the next cursor."""
    source_dir = settings.mirror_dir / spec.slug
    seen: dict[str, list] = cursor.get("mirror", {}) if cursor.get("dir") == str(source_dir) else {}
    files = sorted(
        p
        for p in (source_dir.iterdir() if source_dir.is_dir() else ())
        if p.is_file()
        and not p.name.startswith(".")
        and any(fnmatch.fnmatch(p.name, pattern) for pattern in spec.mirror_patterns)
    )
    landed = {f.sha256 for f in landed_history(settings.landing_dir, spec.slug)}
    now_seen: dict[str, list] = {}
    changed: list[tuple[str, str]] = []
    for path in files:
        stat = path.stat()
        before = seen.get(path.name)
        if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
            now_seen[path.name] = before
            continue
        sha = _sha256(path)
        now_seen[path.name] = [stat.st_size, stat.st_mtime_ns, sha]
        # First sight of a file already landed (e.g. a fresh cursor on a running warehouse)
        # is not a release; a known file whose bytes changed always is.
        if before is None and sha in landed:
            continue
        if before is not None and before[2] == sha:
            continue
        changed.append((path.name, sha))
    next_cursor = {"dir": str(source_dir), "mirror": now_seen}
    if not changed:
        return [], next_cursor
    log.info("%s: new release in the mirror: %s", spec.slug, [name for name, _ in changed])
    partitions = partitions_def_for(spec)
    if partitions is None:
        names = [name for name, _ in changed]
        run_key = f"{spec.slug}:{_digest([sha for _, sha in changed])}"
        return [dg.RunRequest(run_key=run_key, tags=_tags(spec.slug, names))], next_cursor
    assert spec.partitioning is not None
    by_key: dict[str, list[tuple[str, str]]] = {}
    valid = set(partitions.get_partition_keys())
    for name, sha in changed:
        key = spec.partitioning.key_for_file(name)
        if key is None or key not in valid:
            log.warning(
                "%s: mirror file %s does not name a known period (read with %r); not triggered",
                spec.slug,
                name,
                spec.partitioning.file_period,
            )
            continue
        by_key.setdefault(key, []).append((name, sha))
    requests_ = [
        dg.RunRequest(
            run_key=f"{spec.slug}:{key}:{_digest([sha for _, sha in items])}",
            partition_key=key,
            tags=_tags(spec.slug, [name for name, _ in items]),
        )
        for key, items in sorted(by_key.items())
    ]
    return requests_, next_cursor


# -------------------------------------------------------------------------- live mode


def _signature(headers: dict[str, str], body_sha: str | None = None) -> str | None:
    """The strongest validator the publisher gave: ETag, Last-Modified, size, or bytes."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name in ("etag", "last-modified"):
        if lower.get(name):
            return f"{name}={lower[name]}"
    if body_sha:
        return f"sha256={body_sha}"
    if lower.get("content-length"):
        return f"content-length={lower['content-length']}"
    return None


def probe(
    url: str,
    spec: SourceSpec,
    *,
    timeout_s: float = 30.0,
    session: requests.Session | None = None,
) -> str | None:
    """What the publisher says about `url` now, without downloading it.

    Returns a signature, or None when the URL does not exist (yet): a 404 on the next
    period's file is "not published", not an error. Redirects are followed only to the
    source's allowed hosts, as downloads are.
    """
    client = session or requests.Session()
    allowed = spec.allowed_hosts | {urlsplit(u).hostname for u in spec.probe_urls}
    current = url
    try:
        for _ in range(MAX_PROBE_REDIRECTS + 1):
            if urlsplit(current).hostname not in allowed:
                raise FetchError(
                    f"{spec.slug}: release probe refuses host {urlsplit(current).hostname!r} "
                    f"for {redact(current)} (allowed: {sorted(h for h in allowed if h)})"
                )
            kwargs = {
                "headers": {"User-Agent": USER_AGENT},
                "timeout": (min(10.0, timeout_s), timeout_s),
                "allow_redirects": False,
            }
            use_get = spec.release_probe == "get"
            response = (client.get if use_get else client.head)(current, stream=True, **kwargs)
            if not use_get and response.status_code in (403, 405, 501):
                response.close()  # some servers refuse HEAD: ask with a GET, read no body
                use_get = True
                response = client.get(current, stream=True, **kwargs)
            with response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                    current = urljoin(current, response.headers["Location"])
                    continue
                if status in (404, 410):
                    return None
                if status >= 400:
                    raise FetchError(f"{spec.slug}: release probe {redact(current)}: HTTP {status}")
                body_sha = None
                if spec.release_probe == "get":
                    digest, size = hashlib.sha256(), 0
                    for chunk in response.iter_content(64 * 1024):
                        size += len(chunk)
                        if size > PROBE_BODY_CAP:
                            raise FetchError(
                                f"{spec.slug}: release probe {redact(current)}: body over "
                                f"{PROBE_BODY_CAP} bytes; use release_probe='head'"
                            )
                        digest.update(chunk)
                    body_sha = digest.hexdigest()
                return _signature(dict(response.headers), body_sha)
        raise FetchError(f"{spec.slug}: release probe {redact(url)}: too many redirects")
    finally:
        if session is None:
            client.close()


def _landed_signature(spec: SourceSpec, settings: Settings, url: str) -> str | None:
    """The validators recorded when this URL's bytes were last fetched live."""
    sidecars = sorted(
        (settings.landing_dir / spec.slug).glob("*.meta.json"),
        key=lambda p: p.name,
    )
    newest: tuple[str, str | None] | None = None
    for sidecar in sidecars:
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("mode") == "live" and meta.get("upstream_url") == url:
            candidate = (meta.get("fetched_at", ""), _signature(meta.get("headers") or {}))
            if newest is None or candidate[0] >= newest[0]:
                newest = candidate
    return newest[1] if newest else None


def live_tick(
    spec: SourceSpec,
    settings: Settings,
    cursor: dict,
    log,
    *,
    now: datetime,
    probe_every: timedelta = DEFAULT_PROBE_EVERY,
    session: requests.Session | None = None,
) -> tuple[list[dg.RunRequest], dict, str]:
    """Run requests for URLs whose validators changed; the next cursor; why nothing ran."""
    urls = spec.probe_urls
    if not urls:
        return [], cursor, f"{spec.slug}: no cheap release probe (release_probe / credentials)"
    last = cursor.get("probed_at")
    if last and now - datetime.fromisoformat(last) < probe_every:
        return [], cursor, f"{spec.slug}: probed at {last}, next probe after {probe_every}"
    partitions = partitions_def_for(spec)
    key = None
    if partitions is not None and spec.partitioning is not None:
        key = latest_partition(partitions, now)
        if key is None:
            return [], cursor, f"{spec.slug}: no period has started yet"
        urls = tuple(u.format(**spec.partitioning.fields_for(key)) for u in urls)
    known: dict[str, str | None] = dict(cursor.get("live", {}))
    changed = []
    for url in urls:
        try:
            signature = probe(url, spec, timeout_s=settings.http_timeout_s, session=session)
        except (FetchError, requests.RequestException) as exc:
            log.warning("%s: release probe failed, will try again: %s", spec.slug, redact(str(exc)))
            continue
        if signature is None:
            continue  # not published (yet)
        before = known[url] if url in known else _landed_signature(spec, settings, url)
        known[url] = signature
        if signature != before:
            changed.append((url, signature))
    next_cursor = {**cursor, "live": known, "probed_at": now.isoformat()}
    if not changed:
        return [], next_cursor, f"{spec.slug}: no new release upstream"
    log.info("%s: new release upstream: %s", spec.slug, [redact(u) for u, _ in changed])
    run_key = f"{spec.slug}:{key or ''}:{_digest([s for _, s in changed])}"
    names = [urlsplit(u).path.rsplit("/", 1)[-1] for u, _ in changed]
    request = dg.RunRequest(run_key=run_key, partition_key=key, tags=_tags(spec.slug, names))
    return [request], next_cursor, ""


# ---------------------------------------------------------------------- definitions


def build_release_sensor(
    spec: SourceSpec, enabled: bool = True, probe_every: timedelta = DEFAULT_PROBE_EVERY
) -> dg.SensorDefinition:
    slug = spec.slug

    @dg.sensor(
        name=sensor_name(slug),
        job_name=refresh_job_name(slug),
        minimum_interval_seconds=MIRROR_INTERVAL_S,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Runs {refresh_job_name(slug)} when {spec.title} publishes a new "
        "release (mirror directory in mirror mode, HEAD / validators in live mode).",
    )
    def release_sensor(context: dg.SensorEvaluationContext):
        settings = get_settings()
        cursor = json.loads(context.cursor) if context.cursor else {}
        if settings.mode == "mirror":
            requests_, next_cursor = mirror_tick(spec, settings, cursor, context.log)
            reason = f"{slug}: no new file in {settings.mirror_dir / slug}"
        else:
            requests_, next_cursor, reason = live_tick(
                spec, settings, cursor, context.log, now=datetime.now(UTC), probe_every=probe_every
            )
        return dg.SensorResult(
            run_requests=requests_,
            cursor=json.dumps(next_cursor, sort_keys=True),
            skip_reason=None if requests_ else reason,
        )

    return release_sensor


def build_failure_sensor(source_slugs: Sequence[str]) -> dg.SensorDefinition:
    slugs = tuple(source_slugs)

    @dg.run_failure_sensor(
        name="run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records every failed run in warehouse/runs/failures.jsonl and POSTs it "
        "to TREMPLIN_ALERT_WEBHOOK when set.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        events = [
            entry.dagster_event
            for entry in context.instance.all_logs(run.run_id)
            if entry.dagster_event is not None
        ]
        record = failure_record(
            run_id=run.run_id,
            job_name=run.job_name,
            events=events,
            source_slugs=slugs,
            partition=run.tags.get("dagster/partition"),
            message=context.failure_event.message,
        )
        record_and_notify(get_settings(), record, log=context.log)

    return run_failure_alert


def build_history_sensor() -> dg.SensorDefinition:
    """The daemon's runs are pruned like `tremplin run`'s (`pipelines.run_history`)."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="prune_unchanged_runs",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
        description="After each successful run, deletes the older runs that changed nothing, "
        "keeping the newest TREMPLIN_KEEP_UNCHANGED_RUNS (default 20) of them.",
    )
    def prune_unchanged(context: dg.RunStatusSensorContext):
        from pipelines.run_history import prune_unchanged_runs

        pruned = prune_unchanged_runs(context.instance, get_settings().keep_unchanged_runs)
        if pruned.deleted:
            context.log.info("%d older unchanged runs deleted", pruned.deleted)

    return prune_unchanged


def build_sensors(
    specs: Sequence[SourceSpec], settings: Settings | None = None
) -> list[dg.SensorDefinition]:
    overrides = load_automation(settings or get_settings())
    sensors: list[dg.SensorDefinition] = []
    for spec in specs:
        override = overrides.get(spec.slug, SourceAutomation())
        every = (
            timedelta(minutes=float(override.probe_every_minutes))
            if override.probe_every_minutes
            else DEFAULT_PROBE_EVERY
        )
        sensors.append(build_release_sensor(spec, override.enabled, every))
    sensors.append(build_failure_sensor([s.slug for s in specs]))
    sensors.append(build_history_sensor())
    return sensors
