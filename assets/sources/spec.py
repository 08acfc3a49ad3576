"""Declarative description of a published dataset.

A spec says where a publication lives and what its files look like, so the shared fetch
path can land it in either mode without source-specific code:

* live mode downloads every `Download.url` (a publisher may ship several files, or one
  zip holding them);
* mirror mode copies the files of `<mirror>/<slug>/` whose names match `mirror_patterns`
  (globs, so a newer vintage with another file name is picked up unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse


@dataclass(frozen=True)
class Download:
    """One file the publisher serves."""

    url: str
    file_name: str  # name the bytes are landed under (the published file name)
    format: str  # "csv" | "json" | "zip" | "xlsx" | "xls"


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

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Hosts a live fetch of this source may contact (redirects included)."""
        hosts = {urlparse(d.url).hostname for d in self.downloads}
        return frozenset(h for h in hosts | set(self.extra_hosts) if h)
