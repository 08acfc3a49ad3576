"""The landing area: exact upstream bytes, kept immutable, with their provenance.

Layout::

    <landing_dir>/<slug>/<YYYY-MM-DD>__<sha256[:12]>__<file_name>            the bytes
    <landing_dir>/<slug>/<YYYY-MM-DD>__<sha256[:12]>__<file_name>.meta.json  provenance
    <landing_dir>/<slug>/current.json   the files of the latest fetch (what parsers read)

A landed file is never rewritten: landing the same bytes under the same name again
writes nothing and returns the file landed first, so re-running a fetch on unchanged
inputs changes nothing on disk and parsers downstream can skip work. Every file is
written under a temporary name and renamed into place, and the sidecar only after its
data file, so a crash never leaves a sidecar describing missing or partial bytes; a data
file without its sidecar (a fetch killed between the two renames) is invisible and simply
landed again. Temporaries a killed fetch left behind are swept by a later fetch once they
are an hour old (never sooner: a concurrent fetch may still be writing them).

Parsers do not look at the directory: they call `current_files` (the pointer written at
the end of a successful fetch) and `iter_members`, which sees through a publisher's zip so
a parser works whether the mirror holds the CSVs or the zip that contains them.

Why there is no separate index file. The landing tree holds nothing but immutable data
files, their sidecars and one pointer per source that is only ever replaced by rename:
that is what lets the fault suite copy a warehouse with hard links and prove that nothing
landed was altered, so an index rewritten or appended in place would break the invariant.
Lookups are cheap without one anyway: a data file's name carries its date, the first 12
hex digits of its sha256 and its file name, so one directory listing per fetch tells which
sidecars may describe given bytes, and only those are read (`_SlugIndex`). Sidecars that
are read are memoised per process, keyed by their (size, mtime, ctime, inode), so
`landed_history` costs one `stat` per sidecar after the first call and a sidecar changed
or replaced is always read again: the memo is checked, never trusted.

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
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import requests

from assets.foundation.settings import Settings
from assets.ingest.http import HEAD_BYTES, FetchError, check_content, download, redact
from assets.ingest.spec import Download, SourceSpec

logger = logging.getLogger(__name__)
# Landing more files than this at once logs one summary instead of a line per file.
PER_FILE_LOG_LIMIT = 20

META_SUFFIX = ".meta.json"
POINTER_NAME = "current.json"
KEPT_HEADERS = ("etag", "last-modified", "content-type", "content-length")
MODES = ("live", "mirror")
COPY_CHUNK = 1024 * 1024
PROGRESS_STEP_PCT = 10
PROGRESS_EVERY_S = 5.0
# Threads copying mirror files at once: enough to overlap the fsync latency of the disk.
LANDING_WORKERS = 8
# A mirror file touched less than this before a fetch started is hashed again next time:
# wider than the timestamp granularity of any filesystem a mirror may sit on (FAT: 2 s).
RACY_WINDOW_NS = 3_000_000_000
# Temporaries older than this are leftovers of a killed fetch, not a fetch in progress.
STALE_TEMP_S = 3600.0
# How many slug directories keep their sidecars memoised in this process.
MEMO_SLUG_DIRS = 64

DATA_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})__([0-9a-f]{12})__(.+)\Z")
WILDCARDS = frozenset("*?[")


class LandingWriteError(FetchError):
    """The landing area itself cannot be written (read-only disk, permissions, full disk):
    not a transient network fault, so retrying the fetch cannot help."""


class NotFetchedError(FileNotFoundError):
    """A source was read before anything was landed for it."""


@dataclass(frozen=True)
class LandedFile:
    slug: str
    file_name: str
    path: Path
    sha256: str
    size: int
    url: str
    upstream_url: str | None
    fetched_at: str
    mode: str
    new: bool  # False when identical bytes had already landed


@dataclass(frozen=True)
class FetchReport:
    slug: str
    mode: str
    files: tuple[LandedFile, ...]

    @property
    def new_files(self) -> tuple[LandedFile, ...]:
        return tuple(f for f in self.files if f.new)


# ---------------------------------------------------------------------------- landing


def land_file(
    landing_dir: Path,
    slug: str,
    file_name: str,
    src: Path,
    *,
    url: str,
    upstream_url: str | None,
    mode: str,
    status: int | None = None,
    headers: dict | None = None,
    sha256: str | None = None,
    fetched_at: datetime | None = None,
) -> LandedFile:
    """Copy `src` into the landing area unless the same bytes already landed there.

    `src` is only read, never moved or removed: a mirror file must stay where it is, and
    a temporary download is deleted by whoever created it (`fetch_source` does). When
    `sha256` is given it is checked against the bytes actually copied.
    """
    _check_file_name(slug, file_name)
    if mode not in MODES:
        raise ValueError(f"{slug}: landing mode must be one of {MODES}, got {mode!r}")
    slug_dir = Path(landing_dir) / slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    return _land(
        _SlugIndex(slug_dir, slug),
        file_name,
        Path(src),
        url=url,
        upstream_url=upstream_url,
        mode=mode,
        status=status,
        headers=headers,
        sha256=sha256,
        fetched_at=fetched_at,
    )


def _land(
    index: _SlugIndex,
    file_name: str,
    src: Path,
    *,
    url: str,
    upstream_url: str | None,
    mode: str,
    status: int | None = None,
    headers: dict | None = None,
    sha256: str | None = None,
    fetched_at: datetime | None = None,
    check_head: Callable[[bytes], None] | None = None,
    before_rename: Callable[[], None] | None = None,
) -> LandedFile:
    """`land_file` against an index the caller built once for a whole fetch.

    `check_head` sees the first bytes before anything is written; `before_rename` runs
    once the copy is complete and may still refuse it, so a refused copy never lands.
    """
    slug, slug_dir = index.slug, index.slug_dir
    if sha256 is not None:
        existing = index.find(file_name, sha256)
        if existing is not None:
            return existing
    tmp, actual_sha, size = _copy_hashing(src, slug_dir, check_head)
    try:
        if sha256 is not None and actual_sha != sha256:
            raise FetchError(
                f"{slug}: {src} changed while landing {file_name}: expected sha256 {sha256}, "
                f"copied bytes have {actual_sha}"
            )
        if before_rename is not None:
            before_rename()
        existing = index.find(file_name, actual_sha)
        if existing is not None:
            tmp.unlink()
            return existing
        when = _utc(fetched_at)
        data_path = slug_dir / f"{when:%Y-%m-%d}__{actual_sha[:12]}__{file_name}"
        os.replace(tmp, data_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    landed = LandedFile(
        slug=slug,
        file_name=file_name,
        path=data_path,
        sha256=actual_sha,
        size=size,
        url=redact(url),
        upstream_url=upstream_url,
        fetched_at=_iso(when),
        mode=mode,
        new=True,
    )
    kept = {k.lower(): str(v) for k, v in (headers or {}).items() if k.lower() in KEPT_HEADERS}
    meta = {
        "slug": slug,
        "file_name": file_name,
        "data_file": data_path.name,
        "url": landed.url,
        "upstream_url": upstream_url,
        "mode": mode,
        "status": status,
        "headers": dict(sorted(kept.items())),
        "sha256": actual_sha,
        "size": size,
        "fetched_at": landed.fetched_at,
    }
    _write_atomic(data_path.with_name(data_path.name + META_SUFFIX), _json_bytes(meta))
    index.add(landed)
    return landed


def landed_history(landing_dir: Path, slug: str) -> tuple[LandedFile, ...]:
    """Every file ever landed for `slug` (oldest first), whether current or not."""
    return tuple(landed for landed, _meta in _history(Path(landing_dir) / slug, slug))


def current_files(landing_dir: Path, slug: str) -> tuple[LandedFile, ...]:
    """The files of the latest successful fetch of `slug`, as recorded in its pointer."""
    slug_dir = Path(landing_dir) / slug
    pointer = slug_dir / POINTER_NAME
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFetchedError(
            f"{slug}: nothing has been landed yet ({pointer} does not exist); "
            f"fetch the source first"
        ) from None
    except (OSError, ValueError) as exc:
        raise FetchError(f"{slug}: unreadable landing pointer {pointer}: {exc}") from None
    files = []
    for entry in data.get("files", []):
        path = slug_dir / entry["path"]
        if not path.is_file():
            raise NotFetchedError(
                f"{slug}: {pointer} lists {entry['path']} but {path} is missing; "
                f"fetch the source again"
            )
        files.append(_landed_from_entry(slug, slug_dir, entry))
    return tuple(files)


def _landed_from_entry(slug: str, slug_dir: Path, entry: dict[str, Any]) -> LandedFile:
    return LandedFile(
        slug=slug,
        file_name=entry["file_name"],
        path=slug_dir / entry["path"],
        sha256=entry["sha256"],
        size=entry["size"],
        url=entry["url"],
        upstream_url=entry["upstream_url"],
        fetched_at=entry["fetched_at"],
        mode=entry["mode"],
        new=False,
    )


# ----------------------------------------------------------------------------- fetching


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
        _write_pointer(landing_dir / spec.slug, spec.slug, settings.mode, files, mirror_seen)
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
        _check_file_name(spec.slug, name)

    slug_dir = Path(landing_dir) / spec.slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    index = _SlugIndex(slug_dir, spec.slug, sweep=True)
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
        return _land(
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
    if _stat_key(os.stat(path)) != _stat_key(before):
        raise FetchError(
            f"{slug}: mirror file {path} changed while it was being landed; nothing of it "
            f"was kept, fetch again once the mirror is no longer being written"
        )


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _mirror_record(st: os.stat_result, landed: LandedFile) -> dict[str, Any]:
    return {"stat": _stat_key(st), "sha256": landed.sha256, "path": landed.path.name}


@dataclass(frozen=True)
class _MirrorRecords:
    """The mirror stats recorded by the previous fetch, checked before any is believed."""

    slug: str
    slug_dir: Path
    index: _SlugIndex
    records: dict[str, dict[str, Any]]
    current: dict[str, dict[str, Any]]  # pointer entries by data file name

    @classmethod
    def load(cls, slug_dir: Path, slug: str, source_dir: Path, index: _SlugIndex) -> _MirrorRecords:
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
        if record is None or record["stat"] != _stat_key(st):
            return None
        data_name = record["path"]
        if not self.index.has(data_name):
            return None
        try:
            entry = self.current.get(data_name)
            if entry is not None:
                landed = _landed_from_entry(self.slug, self.slug_dir, entry)
            else:
                landed, _meta = _read_sidecar(self.slug_dir, self.slug, data_name + META_SUFFIX)
        except (FetchError, KeyError, TypeError):
            return None
        if landed.file_name != name or landed.sha256 != record["sha256"]:
            return None
        return landed if _has_bytes(landed) else None


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
    index = _SlugIndex(slug_dir, spec.slug, sweep=True)
    history = _history(slug_dir, spec.slug)
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
                _check_file_name(spec.slug, d.file_name)
                try:
                    landed = _land(
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


# ------------------------------------------------------------------------------ members


def iter_members(
    files: Iterable[LandedFile], pattern: str
) -> Iterator[tuple[str, Callable[[], BinaryIO], LandedFile]]:
    """Yield (name, opener, landed file) for each landed file or zip entry matching `pattern`.

    Zip entries are matched and named by their basename, so a parser asking for
    `unix_referentiel_code_rome_v*_utf8.csv` gets the same name whether the CSV landed
    alone or inside the publisher's zip. A zip holding an absolute or `..` entry is refused
    as a whole before anything is yielded from it.
    """
    for landed in files:
        if fnmatch.fnmatch(landed.file_name, pattern):
            yield landed.file_name, _file_opener(landed.path), landed
        if landed.file_name.lower().endswith(".zip"):
            for entry, basename in _zip_entries(landed):
                if fnmatch.fnmatch(basename, pattern):
                    yield basename, _zip_opener(landed, entry), landed


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return path.open("rb")

    return opener


def _zip_entries(landed: LandedFile) -> list[tuple[str, str]]:
    try:
        with zipfile.ZipFile(landed.path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FetchError(
            f"{landed.slug}: {landed.file_name} ({landed.path}) is not a readable zip: {exc}"
        ) from None
    entries = []
    for info in infos:
        name = info.filename
        normalised = name.replace("\\", "/")
        parts = PurePosixPath(normalised).parts
        if normalised.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise FetchError(
                f"{landed.slug}: zip {landed.file_name} ({landed.path}) holds an unsafe entry "
                f"{name!r} (absolute path or '..'); refusing the archive"
            )
        if info.is_dir():
            continue
        entries.append((name, normalised.rsplit("/", 1)[-1]))
    return entries


def _zip_opener(landed: LandedFile, entry: str) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        try:
            zf = zipfile.ZipFile(landed.path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FetchError(
                f"{landed.slug}: {landed.file_name} ({landed.path}) is not a readable zip: {exc}"
            ) from None
        try:
            # The entry stream keeps the archive file open until the stream is closed.
            return zf.open(entry)  # type: ignore[return-value]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FetchError(
                f"{landed.slug}: cannot read entry {entry!r} of zip {landed.file_name} "
                f"({landed.path}): {exc}"
            ) from None
        finally:
            zf.close()

    return opener


# ------------------------------------------------------------------------------ helpers


def _check_file_name(slug: str, file_name: str) -> None:
    if (
        not file_name
        or file_name in (".", "..")
        or "/" in file_name
        or "\\" in file_name
        or file_name.endswith(META_SUFFIX)
        or file_name.startswith(".")
    ):
        raise ValueError(f"{slug}: {file_name!r} is not a plain file name that can be landed")


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _open_source(path: Path) -> BinaryIO:
    """The one place the bytes of a file to land are opened (tests count the calls)."""
    return path.open("rb")


def _copy_hashing(
    src: Path, slug_dir: Path, check_head: Callable[[bytes], None] | None = None
) -> tuple[Path, str, int]:
    """Stream `src` to a temp file of `slug_dir`, hashing it; returns (temp, sha256, size).

    `check_head` sees the first bytes before the temporary is even created, so a refused
    file costs no write at all.
    """
    digest = hashlib.sha256()
    buffer = bytearray(COPY_CHUNK)
    view = memoryview(buffer)
    with _open_source(src) as fh:
        n = fh.readinto(buffer)
        if check_head is not None:
            head = bytes(view[:n])
            while len(head) < HEAD_BYTES and n:  # a short read is not the end of a pipe
                n = fh.readinto(buffer)
                head += view[:n]
            check_head(head[:HEAD_BYTES])
            first = head
        else:
            first = bytes(view[:n])
        fd, name = tempfile.mkstemp(prefix=".landing-", suffix=".part", dir=slug_dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest.update(first)
                out.write(first)
                size = len(first)
                while n := fh.readinto(buffer):
                    chunk = view[:n]
                    digest.update(chunk)
                    out.write(chunk)
                    size += n
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp, digest.hexdigest(), size


def _has_bytes(landed: LandedFile) -> bool:
    try:
        st = os.stat(landed.path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == landed.size


# Sidecars read in this process, per slug directory: {sidecar name: (stat, landed, meta)}.
_SIDECARS: OrderedDict[tuple[str, str], dict[str, tuple[list[int], LandedFile, dict]]] = (
    OrderedDict()
)
_SIDECARS_LOCK = threading.Lock()


def _sidecar_memo(slug_dir: Path, slug: str) -> dict[str, tuple[list[int], LandedFile, dict]]:
    key = (str(slug_dir), slug)
    with _SIDECARS_LOCK:
        memo = _SIDECARS.get(key)
        if memo is None:
            memo = _SIDECARS[key] = {}
            while len(_SIDECARS) > MEMO_SLUG_DIRS:
                _SIDECARS.popitem(last=False)
        else:
            _SIDECARS.move_to_end(key)
        return memo


def _read_sidecar(
    slug_dir: Path,
    slug: str,
    meta_name: str,
    st: os.stat_result | None = None,
    memo: dict[str, tuple[list[int], LandedFile, dict]] | None = None,
) -> tuple[LandedFile, dict[str, Any]]:
    """A sidecar as (landed file, meta); read again whenever its stat has changed."""
    if memo is None:
        memo = _sidecar_memo(slug_dir, slug)
    try:
        key = _stat_key(st if st is not None else os.stat(os.path.join(slug_dir, meta_name)))
        cached = memo.get(meta_name)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        meta_path = slug_dir / meta_name
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        landed = LandedFile(
            slug=slug,
            file_name=meta["file_name"],
            path=meta_path.with_name(meta_name[: -len(META_SUFFIX)]),
            sha256=meta["sha256"],
            size=meta["size"],
            url=meta["url"],
            upstream_url=meta.get("upstream_url"),
            fetched_at=meta["fetched_at"],
            mode=meta["mode"],
            new=False,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FetchError(
            f"{slug}: unreadable landing sidecar {slug_dir / meta_name}: {exc}"
        ) from None
    memo[meta_name] = (key, landed, meta)
    return landed, meta


def _history(slug_dir: Path, slug: str) -> list[tuple[LandedFile, dict[str, Any]]]:
    """Landed files with their sidecars, oldest first (by fetched_at, then name)."""
    try:
        entries = os.scandir(slug_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    names = set()
    memo = _sidecar_memo(slug_dir, slug)
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(META_SUFFIX) or name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError as exc:
                raise FetchError(
                    f"{slug}: unreadable landing sidecar {entry.path}: {exc}"
                ) from None
            found.append(_read_sidecar(slug_dir, slug, name, st, memo))
            names.add(name)
    for gone in memo.keys() - names:
        memo.pop(gone, None)
    found.sort(key=lambda item: (item[0].fetched_at, item[0].path.name))
    return found


class _SlugIndex:
    """Which bytes already landed for one source, from a single directory listing.

    Built once per fetch, so looking a file up costs a dict lookup and the read of the
    (usually zero or one) sidecar whose name carries the same sha256 prefix and file name.
    The lookup table is only built at the first lookup: a fetch of unchanged mirror files
    never needs it.
    """

    def __init__(self, slug_dir: Path, slug: str, *, sweep: bool = False) -> None:
        self.slug_dir, self.slug = slug_dir, slug
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._by_key: dict[tuple[str, str], list[str]] | None = None
        now = time.time()
        try:
            entries = os.scandir(slug_dir)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if not entry.name.startswith("."):
                    self._names.add(entry.name)
                elif sweep:
                    _sweep_stale(entry, now)

    def has(self, data_name: str) -> bool:
        """Both the data file and its sidecar were there when listed (or landed since)."""
        with self._lock:
            return data_name in self._names and data_name + META_SUFFIX in self._names

    def find(self, file_name: str, sha256: str) -> LandedFile | None:
        """The first landing of these bytes under this name, if its bytes are still there."""
        with self._lock:
            if self._by_key is None:
                self._by_key = self._build()
            names = list(self._by_key.get((sha256[:12], file_name), ()))
        found = [_read_sidecar(self.slug_dir, self.slug, name)[0] for name in names]
        matching = [
            landed
            for landed in found
            if landed.file_name == file_name and landed.sha256 == sha256 and _has_bytes(landed)
        ]
        return min(matching, key=lambda f: (f.fetched_at, f.path.name), default=None)

    def add(self, landed: LandedFile) -> None:
        meta_name = landed.path.name + META_SUFFIX
        with self._lock:
            self._names.update((landed.path.name, meta_name))
            if self._by_key is not None:
                names = self._by_key.setdefault((landed.sha256[:12], landed.file_name), [])
                if meta_name not in names:
                    names.append(meta_name)

    def _build(self) -> dict[tuple[str, str], list[str]]:
        by_key: dict[tuple[str, str], list[str]] = {}
        for name in sorted(self._names):
            if not name.endswith(META_SUFFIX):
                continue
            match = DATA_NAME.match(name[: -len(META_SUFFIX)])
            if match:
                key = (match[2], match[3])
            else:  # a sidecar not named by this module: ask the sidecar itself
                landed, _meta = _read_sidecar(self.slug_dir, self.slug, name)
                key = (landed.sha256[:12], landed.file_name)
            by_key.setdefault(key, []).append(name)
        return by_key


def _sweep_stale(entry: os.DirEntry, now: float) -> None:
    """Remove a temporary of this module that a killed fetch left behind."""
    name = entry.name
    ours = (
        (name.startswith(".landing-") and name.endswith(".part"))
        or (name.endswith(".tmp") and (f"{META_SUFFIX}." in name or f".{POINTER_NAME}." in name))
        or name.startswith(".fetch-")
    )
    if not ours:
        return
    try:
        if now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_S:
            return
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    except OSError:
        pass  # best effort: a read-only landing area is reported by the write that needs it


def write_current_pointer(
    landing_dir: Path, slug: str, mode: str, files: Iterable[LandedFile]
) -> None:
    """Point `current.json` of `slug` at `files` once a custom fetch has landed them all.

    For modules with their own `fetch` (API clients) that land responses with `land_file`:
    the same pointer `fetch_source` writes, so parsers read them through `current_files`.
    """
    if mode not in MODES:
        raise ValueError(f"{slug}: landing mode must be one of {MODES}, got {mode!r}")
    _write_pointer(Path(landing_dir) / slug, slug, mode, list(files))


def _write_pointer(
    slug_dir: Path,
    slug: str,
    mode: str,
    files: list[LandedFile],
    mirror: dict[str, Any] | None = None,
) -> None:
    """Point `current.json` at `files`; deterministic, and untouched when unchanged.

    `mirror` (mirror fetches) holds the stats of the mirror files next to the landed bytes
    they matched, which lets the next fetch skip the files that have not changed.
    """
    slug_dir.mkdir(parents=True, exist_ok=True)
    pointer: dict[str, Any] = {
        "slug": slug,
        "mode": mode,
        "files": [
            {
                "file_name": f.file_name,
                "path": f.path.name,
                "sha256": f.sha256,
                "size": f.size,
                "url": f.url,
                "upstream_url": f.upstream_url,
                "fetched_at": f.fetched_at,
                "mode": f.mode,
            }
            for f in files
        ],
    }
    if mirror is not None:
        pointer["mirror"] = mirror
    path = slug_dir / POINTER_NAME
    try:
        # Compared parsed: decoding is C speed, pretty-printing thousands of entries is not.
        if json.loads(path.read_bytes()) == pointer:
            return
    except (FileNotFoundError, ValueError):
        pass
    _write_atomic(path, _pointer_bytes(pointer))


def _pointer_bytes(pointer: dict[str, Any]) -> bytes:
    """The pointer, its file list indented for people, its mirror records on one line.

    The records are for the next fetch, not for reading, and one per mirror file of
    every partition: pretty-printing them costs far more (Python's encoder) than the
    compact C encoder, and a periodic source rewrites its pointer at each period.
    """
    mirror = pointer.get("mirror")
    if mirror is None:
        return _json_bytes(pointer)
    rest = {k: v for k, v in pointer.items() if k != "mirror"}
    text = json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False)
    records = json.dumps(mirror, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert text.endswith("\n}")
    return f'{text[:-2]},\n  "mirror": {records}\n}}\n'.encode()


__all__ = [
    "FetchReport",
    "LandedFile",
    "LandingWriteError",
    "NotFetchedError",
    "current_files",
    "fetch_source",
    "iter_members",
    "land_file",
    "landed_history",
    "write_current_pointer",
]
