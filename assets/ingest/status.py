"""Freshness of each source, from files only: `tremplin status` needs no Dagster instance.

Three records answer "is this source current?":
* the landing area (`landed_history`): when bytes last changed, and which vintage is current;
* `warehouse/runs/fetches.jsonl`: one line per successful fetch, since a fetch that finds
  the same bytes again lands nothing and would otherwise leave no trace;
* `warehouse/runs/failures.jsonl`: one line per failed run (`pipelines/alerts.py`).

A source is *failing* when its last recorded failure is newer than its last successful
fetch, *stale* when its last fetch is older than its max age (the same rule as the
freshness policy the UI shows on its landing asset), *ok* otherwise.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assets.foundation.settings import Settings, SourceAutomation, load_automation
from assets.ingest.landing import LandedFile, NotFetchedError, current_files, landed_history
from assets.ingest.spec import TIMEZONE, SourceSpec

OK, STALE, FAILING = "ok", "stale", "failing"
# Without a schedule and without a declared max age, a source may go this long unchecked.
UNSCHEDULED_MAX_AGE = timedelta(days=400)


# --------------------------------------------------------------------- the calendar


def cron_ticks(cron: str, after: datetime) -> Iterator[datetime]:
    """Ticks of `cron` in Europe/Paris strictly after `after`."""
    # Dagster's own cron reader, so schedules and status agree on every tick.
    from dagster._utils.schedules import cron_string_iterator

    for tick in cron_string_iterator(after.timestamp(), cron, TIMEZONE):
        if tick > after:
            yield tick


def longest_gap(cron: str, around: datetime, ticks: int = 60) -> timedelta:
    """The longest interval between two ticks over the next `ticks` ticks (a yearly cycle
    for monthly or quarterly calendars)."""
    iterator = cron_ticks(cron, around)
    previous = next(iterator)
    gap = timedelta(0)
    for _ in range(ticks):
        tick = next(iterator)
        gap = max(gap, tick - previous)
        previous = tick
    return gap


def effective_spec(spec: SourceSpec, overrides: dict[str, SourceAutomation]) -> SourceSpec:
    """The spec with the operator's schedule / max-age overrides applied."""
    override = overrides.get(spec.slug)
    if override is None:
        return spec
    changes: dict[str, Any] = {}
    if override.schedule is not None:
        changes["schedule"] = None if str(override.schedule).lower() == "off" else override.schedule
    if override.max_age is not None:
        changes["max_age"] = override.max_age
    return replace(spec, **changes) if changes else spec


def max_age(spec: SourceSpec, now: datetime | None = None) -> timedelta:
    """How long after its last fetch the source is stale (declared, else derived)."""
    if spec.max_age is not None:
        return spec.max_age
    if spec.schedule is None:
        return UNSCHEDULED_MAX_AGE
    return 2 * longest_gap(spec.schedule, now or datetime.now(UTC))


def next_release(spec: SourceSpec, now: datetime) -> datetime | None:
    """The next tick of the publisher's calendar (the source's schedule)."""
    if spec.schedule is None:
        return None
    return next(cron_ticks(spec.schedule, now))


# ------------------------------------------------------------------------ run records


class _Locked:
    """An exclusive lock on `<log>.lock`, so lines from concurrent runs never interleave."""

    def __init__(self, log: Path) -> None:
        self.path = log.with_name(log.name + ".lock")

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a")
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


def append_record(log: Path, record: dict) -> None:
    """Append one JSON line; a reader never sees half a line from two writers."""
    with _Locked(log), log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")


def read_records(log: Path) -> list[dict]:
    """Every readable line of a JSON Lines log (a torn last line is skipped)."""
    try:
        text = log.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_records(text)


def parse_records(text: str) -> list[dict]:
    """The readable JSON lines of `text`."""
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def now_iso(now: datetime | None = None) -> str:
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def record_fetch(
    settings: Settings,
    slug: str,
    *,
    mode: str,
    files: Sequence[LandedFile],
    new_files: Sequence[LandedFile],
    partition: str | None = None,
    run_id: str | None = None,
) -> None:
    """Note a successful fetch (called by the landing asset), new bytes or not."""
    append_record(
        settings.fetches_log,
        {
            "slug": slug,
            "fetched_at": now_iso(),
            "mode": mode,
            "partition": partition,
            "files": sorted(f.file_name for f in files),
            "new_files": sorted(f.file_name for f in new_files),
            "run_id": run_id,
        },
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------- status


@dataclass(frozen=True)
class SourceStatus:
    slug: str
    state: str
    last_fetch: datetime | None
    last_change: datetime | None
    vintage: str
    next_release: datetime | None
    max_age: timedelta
    detail: str  # why the state is what it is

    def as_json(self) -> dict:
        def iso(value: datetime | None) -> str | None:
            return now_iso(value) if value else None

        return {
            "slug": self.slug,
            "state": self.state,
            "last_fetch": iso(self.last_fetch),
            "last_change": iso(self.last_change),
            "vintage": self.vintage,
            "next_release": iso(self.next_release),
            "max_age_hours": self.max_age.total_seconds() / 3600,
            "detail": self.detail,
        }


def _vintage(spec: SourceSpec, settings: Settings, history: Sequence[LandedFile]) -> str:
    """What the current files say about the published version."""
    try:
        files: Sequence[LandedFile] = current_files(settings.landing_dir, spec.slug)
    except (NotFetchedError, OSError, ValueError, RuntimeError):
        files = history
    if not files:
        return "-"
    names = (
        [f.file_name for f in files] if not spec.partitioning else [h.file_name for h in history]
    )
    if spec.partitioning is not None:
        keys = [k for k in (spec.partitioning.key_for_file(n) for n in names) if k]
        if keys:
            return f"partition {max(keys)}"
    if spec.vintage_pattern:
        found = sorted({m.group(1) for n in names if (m := re.search(spec.vintage_pattern, n))})
        if found:
            return ", ".join(found)
    newest = max(_parse_time(f.fetched_at) for f in files)
    return f"as landed {newest.astimezone(UTC):%Y-%m-%d}"


def source_status(
    spec: SourceSpec,
    settings: Settings,
    fetches: Iterable[dict],
    failures: Iterable[dict],
    now: datetime,
) -> SourceStatus:
    history = landed_history(settings.landing_dir, spec.slug)
    last_change = max((_parse_time(f.fetched_at) for f in history), default=None)
    fetch_times = [_parse_time(r.get("fetched_at")) for r in fetches if r.get("slug") == spec.slug]
    last_fetch = max((t for t in fetch_times if t), default=last_change)
    failure_times = [
        (_parse_time(r.get("failed_at")), r)
        for r in failures
        if spec.slug in (r.get("sources") or [])
    ]
    last_failure = max(((t, r) for t, r in failure_times if t), default=None, key=lambda x: x[0])
    age_limit = max_age(spec, now)

    if last_failure and (last_fetch is None or last_failure[0] >= last_fetch):
        state = FAILING
        steps = last_failure[1].get("steps") or [{}]
        detail = (
            f"run {last_failure[1].get('run_id', '?')[:8]} failed: "
            + (steps[0].get("error") or "see the run log").splitlines()[0][:160]
        )
    elif last_fetch is None:
        state, detail = STALE, "never fetched"
    elif now - last_fetch > age_limit:
        state = STALE
        detail = f"last fetch {_human(now - last_fetch)} ago, max age {_human(age_limit)}"
    else:
        state, detail = OK, ""
    return SourceStatus(
        slug=spec.slug,
        state=state,
        last_fetch=last_fetch,
        last_change=last_change,
        vintage=_vintage(spec, settings, history),
        next_release=next_release(spec, now),
        max_age=age_limit,
        detail=detail,
    )


def collect_status(
    specs: Sequence[SourceSpec], settings: Settings, now: datetime | None = None
) -> list[SourceStatus]:
    now = now or datetime.now(UTC)
    overrides = load_automation(settings)
    fetches = read_records(settings.fetches_log)
    failures = read_records(settings.failures_log)
    return [
        source_status(effective_spec(spec, overrides), settings, fetches, failures, now)
        for spec in specs
    ]


def _human(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} d"


def _local(value: datetime | None) -> str:
    if value is None:
        return "never"
    from zoneinfo import ZoneInfo

    return f"{value.astimezone(ZoneInfo(TIMEZONE)):%Y-%m-%d %H:%M}"


def format_status(rows: Sequence[SourceStatus]) -> str:
    """A table for a terminal; times in Europe/Paris like the schedules."""
    header = ("source", "state", "last fetch", "last change", "vintage", "next release", "max age")
    lines = [
        (
            r.slug,
            r.state,
            _local(r.last_fetch),
            _local(r.last_change),
            r.vintage,
            _local(r.next_release) if r.next_release else "-",
            _human(r.max_age),
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row, status in zip(lines, rows, strict=True):
        out.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if status.detail:
            out.append(f"    {status.detail}")
    out.append(f"(times in {TIMEZONE})")
    return "\n".join(out)
