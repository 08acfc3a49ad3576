"""Declarative description of a published dataset.

A spec says where a publication lives and what its files look like, so the shared fetch
path can land it in either mode without source-specific code:

* live mode downloads every `Download.url` (a publisher may ship several files, or one
  zip holding them);
* mirror mode copies the files of `<mirror>/<slug>/` whose names match `mirror_patterns`
  (globs, so a newer vintage with another file name is picked up unchanged).

It also says when to look for a new release and how stale the source may get, so
schedules, release sensors, partitions and `tremplin status` follow each publisher's
rhythm from data alone (see `pipelines/schedules.py`, `pipelines/sensors.py`). Every
scheduling field has a default: a new source gets a weekly check without declaring any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlparse

# Publishers publish on French office hours; every cron of tremplin is read in this zone.
TIMEZONE = "Europe/Paris"
# Mondays 06:00: a weekly look for a new release, for sources that declare nothing else.
DEFAULT_SCHEDULE = "0 6 * * 1"
PERIODS = ("daily", "quarterly", "yearly")
RELEASE_PROBES = ("head", "get", "none")


@dataclass(frozen=True)
class Download:
    """One file the publisher serves."""

    url: str
    file_name: str  # name the bytes are landed under (the published file name)
    format: str  # "csv" | "json" | "zip" | "xlsx" | "xls"


@dataclass(frozen=True)
class Partitioning:
    """A periodic publication: one partition per period, so history accumulates.

    `file_period` reads the period from a published file name with named groups `year`
    and optionally `quarter`, `month`, `day` (or one `date` group, `2024-01-31` or
    `20240131`), e.g. `sl_etc_(?P<year>\\d{4})T(?P<quarter>[1-4])`. With it the mirror sensor
    knows which partition a new file belongs to, and a partition's parse reads only that
    period's files. Download URLs and file names may hold `{year}`, `{quarter}`,
    `{month}`, `{day}` and `{key}`, filled in for the partition being fetched.
    """

    period: str  # "daily" | "quarterly" | "yearly"
    start: str  # first period as an ISO date, e.g. "2018-01-01"
    file_period: str | None = None
    # Partitions after the last complete period to allow, e.g. 1 for a snapshot of today
    # or a yearly survey published during its own year (BMO <year> in April <year>).
    end_offset: int = 0

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"partitioning period must be one of {PERIODS}, got {self.period!r}")
        date.fromisoformat(self.start)
        if self.file_period is not None:
            re.compile(self.file_period)

    def key_for(self, day: date) -> str:
        """The partition key of the period holding `day`."""
        if self.period == "yearly":
            return f"{day.year:04d}"
        if self.period == "quarterly":
            return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1).isoformat()
        return day.isoformat()

    def key_for_file(self, file_name: str) -> str | None:
        """The partition a published file belongs to, or None when its name says nothing."""
        if self.file_period is None:
            return None
        match = re.search(self.file_period, file_name)
        if match is None:
            return None
        groups = {k: v for k, v in match.groupdict().items() if v}
        if "date" in groups:
            digits = re.sub(r"\D", "", groups["date"])
            return self.key_for(date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])))
        year = int(groups["year"])
        if len(groups["year"]) == 2:  # older names carry a two-digit year (`_23.xlsx`)
            year += 2000
        if "quarter" in groups:
            month = 3 * int(groups["quarter"]) - 2
        else:
            month = int(groups.get("month", 1))
        return self.key_for(date(year, month, int(groups.get("day", 1))))

    def fields_for(self, key: str) -> dict[str, str]:
        """Placeholders a download URL or file name may use for partition `key`."""
        day = date(int(key), 1, 1) if self.period == "yearly" else date.fromisoformat(key)
        return {
            "key": key,
            "year": f"{day.year:04d}",
            "quarter": str((day.month - 1) // 3 + 1),
            "month": f"{day.month:02d}",
            "day": f"{day.day:02d}",
        }


@dataclass(frozen=True)
class SourceSpec:
    slug: str
    publisher: str
    title: str
    landing_page: str
    licence: str
    cadence: str  # human-readable publication rhythm, e.g. "twice a year"
    downloads: tuple[Download, ...]
    mirror_patterns: tuple[str, ...]
    notes: str = ""
    # True when the mirror holds generated files (API shapes with no reachable real bulk
    # response); every row derived from them is flagged synthetic up to the export.
    synthetic: bool = False
    extra_hosts: tuple[str, ...] = field(default=())
    # Environment variables a live fetch needs (API credentials). Without them a live run
    # skips this source's fetch with a warning and keeps its last landed files.
    requires_env: tuple[str, ...] = field(default=())

    # --- scheduled operation
    # When to look for a new release (cron, Europe/Paris), following the publisher's
    # calendar; the next tick is what `tremplin status` shows as the next expected release.
    # None: no schedule (release sensor and manual runs only).
    schedule: str | None = DEFAULT_SCHEDULE
    # How long after its last successful fetch the source counts as stale (UI freshness
    # policy and `tremplin status`). None: twice the longest gap between schedule ticks.
    max_age: timedelta | None = None
    # How a live sensor detects a release without downloading it: "head" (HEAD, compare
    # ETag / Last-Modified / Content-Length), "get" (a small page such as a portal's
    # metadata, compared by its validators or its bytes), "none" (e.g. credentialed APIs).
    release_probe: str = "head"
    # URLs to probe instead of the download URLs (e.g. a portal's dataset metadata).
    release_urls: tuple[str, ...] = field(default=())
    # Regex whose first group is the vintage in a published file name (`_v(\d+)_utf8`).
    vintage_pattern: str | None = None
    # Periodic publications only; snapshots of a referential stay unpartitioned.
    partitioning: Partitioning | None = None

    def __post_init__(self) -> None:
        if self.release_probe not in RELEASE_PROBES:
            raise ValueError(
                f"{self.slug}: release_probe must be one of {RELEASE_PROBES}, "
                f"got {self.release_probe!r}"
            )
        if self.vintage_pattern is not None:
            re.compile(self.vintage_pattern)

    @property
    def probe_urls(self) -> tuple[str, ...]:
        """What a live release sensor asks the publisher about."""
        if self.release_probe == "none":
            return ()
        if self.requires_env and not self.release_urls:
            return ()  # API endpoints answer nothing useful without credentials
        return self.release_urls or tuple(d.url for d in self.downloads)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts a live fetch of this source may contact (redirects included)."""
        hosts = {urlparse(d.url).hostname for d in self.downloads}
        return frozenset(h for h in hosts | set(self.extra_hosts) if h)
