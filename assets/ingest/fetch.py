"""Fetching a source: land every file of its spec (mirror or live), then move its pointer.

Why a mirror file whose stat is unchanged is not read again. A mirror fetch records, in
the pointer's `mirror` section, each mirror file's (path, size, mtime_ns, ctime_ns, inode)
next to the landed file its bytes matched. The next fetch takes a file with the same
record as unchanged: it neither hashes nor copies it, and the pointer keeps naming the
bytes already landed. This is the rule `git status` and `make` rely on, made stricter by
the ctime, which no file tool can set: `cp -p`, `rsync -t` or `tar` may restore an old
mtime on new content, but writing the content moves the ctime (and a replace-by-rename the
inode). Records are per mirror directory: pointing the warehouse at another mirror
re-hashes everything once (and lands nothing it already holds).
Two more conditions close the remaining gaps. A file changed within the clock tick of the
stat that was recorded would keep the same timestamps, so a stat is only recorded when
the file's mtime and ctime are `RACY_WINDOW_NS` older than the start of the fetch (a fresh
file is simply hashed again next time, as git does with "racily clean" entries). And a
record only counts while the landed file it names is still there, with its sidecar and its
size. A changed size or timestamp re-hashes the file; identical bytes re-saved are then
found already landed (nothing copied), and new bytes land as a new version. A mirror file
that changes while it is being copied fails the fetch rather than land a torn copy.
Touching the mirror files forces them to be read and checked again.
Live fetches do not use this: they keep asking the publisher with the validators (ETag,
Last-Modified) of the last live landing and re-land only what a 200 answer brings.

First landings copy several files at once (`LANDING_WORKERS` threads): hashing releases
the GIL and the per-file `fsync`s that make a landed file durable before its sidecar
overlap instead of queueing, which brings landing close to the speed of a plain copy.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from assets.foundation.settings import Settings
from assets.ingest.http import FetchError, check_content, download, redact
from assets.ingest.landing import (
    META_SUFFIX,
    POINTER_NAME,
    WILDCARDS,
    LandedFile,
    LandingWriteError,
    SlugIndex,
    check_file_name,
    has_bytes,
    land,
    landed_from_entry,
    logger,
    read_sidecar,
    sidecar_history,
    stat_key,
    write_pointer,
)
from assets.ingest.spec import Download, SourceSpec

# Landing more files than this at once logs one summary instead of a line per file.
PER_FILE_LOG_LIMIT = 20
PROGRESS_STEP_PCT = 10
PROGRESS_EVERY_S = 5.0
# Threads copying mirror files at once: enough to overlap the fsync latency of the disk.
LANDING_WORKERS = 8
# A mirror file touched less than this before a fetch started is hashed again next time:
# wider than the timestamp granularity of any filesystem a mirror may sit on (FAT: 2 s).
RACY_WINDOW_NS = 3_000_000_000


@dataclass(frozen=True)
class FetchReport:
    slug: str
    mode: str
    files: tuple[LandedFile, ...]

    @property
    def new_files(self) -> tuple[LandedFile, ...]:
        return tuple(f for f in self.files if f.new)


def fetch_source(
    spec: SourceSpec,
    settings: Settings,
    *,
    log: logging.Logger | None = None,
    session: requests.Session | None = None,
) -> FetchReport:
    """Land every file of `spec` in `settings.mode`, then point `current.json` at them.

    The pointer only moves once every file of the source has landed, so a failed fetch
    leaves parsers reading the previous complete set.
    """
    log = log or logger
    landing_dir = settings.landing_dir
    fetched_at = datetime.now(UTC)
    mirror_seen = None
    try:
        if settings.mode == "mirror":
            files, mirror_seen = _fetch_mirror(
                spec, settings.mirror_dir, landing_dir, fetched_at, log
            )
        elif settings.mode == "live":
            files = _fetch_live(spec, settings, fetched_at, log, session)
        else:
            raise ValueError(f"{spec.slug}: unknown fetch mode {settings.mode!r}")
        write_pointer(landing_dir / spec.slug, spec.slug, settings.mode, files, mirror_seen)
    except OSError as exc:
        where = exc.filename or landing_dir / spec.slug
        names = ", ".join(d.file_name for d in spec.downloads) or ", ".join(spec.mirror_patterns)
        raise LandingWriteError(
            f"{spec.slug}: cannot write to the landing area ({where}: "
            f"{exc.strerror or exc}) while landing {names}; nothing was replaced"
        ) from exc
    return FetchReport(slug=spec.slug, mode=settings.mode, files=tuple(files))


def _fetch_mirror(
    spec: SourceSpec,
    mirror_dir: Path,
    landing_dir: Path,
    fetched_at: datetime,
    log: logging.Logger,
) -> tuple[list[LandedFile], dict[str, Any]]:
    """Land the mirror's files; returns them and the stat records the pointer keeps."""
    started_ns = time.time_ns()
    source_dir = Path(mirror_dir) / spec.slug
    if not spec.mirror_patterns:
        raise FetchError(f"{spec.slug}: the source spec has no mirror_patterns")
    if not source_dir.is_dir():
        raise FetchError(
            f"{spec.slug}: mirror directory {source_dir} does not exist "
            f"(expected files matching {list(spec.mirror_patterns)})"
        )
    with os.scandir(source_dir) as entries:
        listing = {e.name: e for e in entries if not e.name.startswith(".") and e.is_file()}
    candidates = sorted(listing)
    chosen: set[str] = set()
    for pattern in spec.mirror_patterns:
        # A partition's spec names its files literally: a set lookup, not a scan per name.
        if WILDCARDS.isdisjoint(pattern):
            matches = [pattern] if pattern in listing else []
        else:
            matches = [name for name in candidates if fnmatch.fnmatch(name, pattern)]
        if not matches:
            raise FetchError(
                f"{spec.slug}: no file in mirror directory {source_dir} matches {pattern!r} "
                f"(present: {candidates or 'nothing'})"
            )
        chosen.update(matches)
    for name in chosen:
        check_file_name(spec.slug, name)

    slug_dir = Path(landing_dir) / spec.slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    index = SlugIndex(slug_dir, spec.slug, sweep=True)
    previous = _MirrorRecords.load(slug_dir, spec.slug, source_dir, index)
    by_name = {d.file_name: d for d in spec.downloads}
    landed_by_name: dict[str, LandedFile] = {}
    seen: dict[str, dict[str, Any]] = {}
    to_land: list[tuple[str, Path, os.stat_result]] = []
    for name in sorted(chosen):
        entry = listing[name]
        st = entry.stat()
        kept = previous.unchanged(name, st)
        if kept is not None:
            landed_by_name[name] = kept
            seen[name] = previous.records[name]
        else:
            to_land.append((name, Path(entry.path), st))

    def land_one(name: str, path: Path, st: os.stat_result) -> LandedFile:
        download_spec = by_name.get(name)
        if download_spec is not None:
            upstream = download_spec.url
        else:
            upstream = spec.downloads[0].url if spec.downloads else None
        return land(
            index,
            name,
            path,
            url=path.resolve().as_uri(),
            upstream_url=upstream,
            mode="mirror",
            fetched_at=fetched_at,
            check_head=_mirror_check(spec.slug, path, download_spec),
            before_rename=lambda: _check_unchanged(spec.slug, path, st),
        )

    # Each Dagster log line is a row in the run's event log: thousands of files (the
    # national offers snapshots) would spend more time logging than landing. Past a
    # handful, the lines per file go to the process log and Dagster gets the summary.
    file_log = log if len(to_land) <= PER_FILE_LOG_LIMIT else logger
    for (name, _path, st), landed in zip(to_land, _in_parallel(land_one, to_land), strict=True):
        landed_by_name[name] = landed
        if max(st.st_mtime_ns, st.st_ctime_ns) <= started_ns - RACY_WINDOW_NS:
            seen[name] = _mirror_record(st, landed)
        file_log.log(
            logging.INFO if landed.new else logging.DEBUG,
            "%s: %s %s (%d bytes, sha256 %s) from the mirror",
            spec.slug,
            "landed" if landed.new else "unchanged",
            name,
            landed.size,
            landed.sha256[:12],
        )
    # Files of other partitions keep their records: fetching them again stays free.
    for name, record in previous.records.items():
        if name not in chosen and name in listing:
            seen[name] = record
    files = [landed_by_name[name] for name in sorted(chosen)]
    new = sum(f.new for f in files)
    log.info(
        "%s: %d mirror file(s): %d landed, %d already landed (%d unchanged since last "
        "landed, not read again)",
        spec.slug,
        len(files),
        new,
        len(files) - new,
        len(files) - len(to_land),
    )
    return files, {"dir": str(source_dir), "files": seen}


def _in_parallel(
    work: Callable[[str, Path, os.stat_result], LandedFile],
    items: list[tuple[str, Path, os.stat_result]],
) -> Iterator[LandedFile]:
    """`work` on every item, several at once, yielding results in item order as they come
    (so progress is logged during a long first landing). The first failure, in item order,
    is raised once every started item has finished: no temporary is left half-written."""
    if len(items) <= 1:
        yield from (work(*item) for item in items)
        return
    workers = min(LANDING_WORKERS, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landing") as pool:
        futures: list[Future[LandedFile]] = [pool.submit(work, *item) for item in items]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _mirror_check(slug: str, path: Path, download_spec: Download | None) -> Callable[[bytes], None]:
    """Give a mirror file the same sanity check as a download (no HTML page, magic)."""
    fmt = download_spec.format if download_spec is not None else path.suffix.lstrip(".")

    def check(head: bytes) -> None:
        try:
            check_content(head, fmt.lower())
        except ValueError as exc:
            raise FetchError(f"{slug}: mirror file {path}: {exc}") from None

    return check


def _check_unchanged(slug: str, path: Path, before: os.stat_result) -> None:
    """Refuse a copy of a mirror file that was being rewritten while it was read."""
    if stat_key(os.stat(path)) != stat_key(before):
        raise FetchError(
            f"{slug}: mirror file {path} changed while it was being landed; nothing of it "
            f"was kept, fetch again once the mirror is no longer being written"
        )


def _mirror_record(st: os.stat_result, landed: LandedFile) -> dict[str, Any]:
    return {"stat": stat_key(st), "sha256": landed.sha256, "path": landed.path.name}


@dataclass(frozen=True)
class _MirrorRecords:
    """The mirror stats recorded by the previous fetch, checked before any is believed."""

    slug: str
    slug_dir: Path
    index: SlugIndex
    records: dict[str, dict[str, Any]]
    current: dict[str, dict[str, Any]]  # pointer entries by data file name

    @classmethod
    def load(cls, slug_dir: Path, slug: str, source_dir: Path, index: SlugIndex) -> _MirrorRecords:
        records: dict[str, dict[str, Any]] = {}
        current: dict[str, dict[str, Any]] = {}
        try:
            pointer = json.loads((slug_dir / POINTER_NAME).read_bytes())
            mirror = pointer.get("mirror") or {}
            if mirror.get("dir") == str(source_dir):
                records = {
                    name: record
                    for name, record in mirror["files"].items()
                    if _valid_record(record)
                }
            current = {
                e["path"]: e
                for e in pointer.get("files", [])
                if isinstance(e, dict) and "path" in e
            }
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            pass  # no usable records: every file is hashed, and found already landed
        return cls(slug, slug_dir, index, records, current)

    def unchanged(self, name: str, st: os.stat_result) -> LandedFile | None:
        """The landed file `name` still matches, when its stat is the one recorded."""
        record = self.records.get(name)
        if record is None or record["stat"] != stat_key(st):
            return None
        data_name = record["path"]
        if not self.index.has(data_name):
            return None
        try:
            entry = self.current.get(data_name)
            if entry is not None:
                landed = landed_from_entry(self.slug, self.slug_dir, entry)
            else:
                landed, _meta = read_sidecar(self.slug_dir, self.slug, data_name + META_SUFFIX)
        except (FetchError, KeyError, TypeError):
            return None
        if landed.file_name != name or landed.sha256 != record["sha256"]:
            return None
        return landed if has_bytes(landed) else None


def _valid_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("stat"), list)
        and len(record["stat"]) == 4
        and all(isinstance(v, int) for v in record["stat"])
        and isinstance(record.get("sha256"), str)
        and isinstance(record.get("path"), str)
        and "/" not in record["path"]
    )


def _fetch_live(
    spec: SourceSpec,
    settings: Settings,
    fetched_at: datetime,
    log: logging.Logger,
    session: requests.Session | None,
) -> list[LandedFile]:
    if not spec.downloads:
        raise FetchError(f"{spec.slug}: the source spec has no downloads to fetch live")
    slug_dir = settings.landing_dir / spec.slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    index = SlugIndex(slug_dir, spec.slug, sweep=True)
    history = sidecar_history(slug_dir, spec.slug)
    files = []
    # The temporary directory lives inside the landing area so landing is a same-disk copy.
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=slug_dir) as tmp:
        for d in spec.downloads:
            previous = _latest_live(history, d)
            prev_headers = previous[1].get("headers", {}) if previous else {}
            result = download(
                d.url,
                Path(tmp),
                slug=spec.slug,
                expected_format=d.format,
                allowed_hosts=spec.allowed_hosts,
                etag=prev_headers.get("etag"),
                last_modified=prev_headers.get("last-modified"),
                connect_timeout=min(10.0, settings.http_timeout_s),
                read_timeout=settings.http_timeout_s,
                max_bytes=settings.max_download_bytes,
                retries=settings.http_retries,
                backoff_s=settings.http_backoff_s,
                session=session,
                progress=_ProgressLog(log, spec.slug, d.file_name),
            )
            if result.not_modified:
                assert previous is not None  # a 304 only answers a conditional request
                landed = previous[0]
                log.info(
                    "%s: %s not modified upstream (HTTP 304); keeping %s",
                    spec.slug,
                    d.file_name,
                    landed.path.name,
                )
            else:
                assert result.body_path is not None
                check_file_name(spec.slug, d.file_name)
                try:
                    landed = land(
                        index,
                        d.file_name,
                        result.body_path,
                        url=result.final_url,
                        upstream_url=d.url,
                        mode="live",
                        status=result.status,
                        headers=result.headers,
                        sha256=result.sha256,
                        fetched_at=fetched_at,
                    )
                finally:
                    result.body_path.unlink(missing_ok=True)
                log.info(
                    "%s: %s %s (%d bytes, sha256 %s) from %s",
                    spec.slug,
                    "landed" if landed.new else "unchanged",
                    d.file_name,
                    landed.size,
                    landed.sha256[:12],
                    redact(result.final_url),
                )
            files.append(landed)
    return files


def _latest_live(
    history: list[tuple[LandedFile, dict[str, Any]]], d: Download
) -> tuple[LandedFile, dict[str, Any]] | None:
    """The newest live landing of this download, whose validators a conditional GET reuses."""
    matching = [
        (landed, meta)
        for landed, meta in history
        if landed.mode == "live"
        and landed.file_name == d.file_name
        and landed.upstream_url == d.url
        and landed.path.is_file()
    ]
    return matching[-1] if matching else None


class _ProgressLog:
    """Logs a download's progress every ~10 % of its size, or every 5 s when unknown."""

    def __init__(self, log: logging.Logger, slug: str, file_name: str) -> None:
        self.log, self.slug, self.file_name = log, slug, file_name
        self.last_time = time.monotonic()
        self.last_pct = 0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        pct = done * 100 // total if total else None
        due = now - self.last_time >= PROGRESS_EVERY_S
        if pct is not None and pct >= self.last_pct + PROGRESS_STEP_PCT:
            due = True
        if not due:
            return
        self.last_time = now
        if pct is not None:
            self.last_pct = pct - pct % PROGRESS_STEP_PCT
            self.log.info(
                "%s: %s %d%% (%d / %d bytes)", self.slug, self.file_name, pct, done, total
            )
        else:
            self.log.info("%s: %s %d bytes so far", self.slug, self.file_name, done)
