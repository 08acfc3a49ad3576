"""The landing area: exact upstream bytes, kept immutable, with their provenance.

Layout::

    <landing_dir>/<slug>/<YYYY-MM-DD>__<sha256[:12]>__<file_name>            the bytes
    <landing_dir>/<slug>/<YYYY-MM-DD>__<sha256[:12]>__<file_name>.meta.json  provenance
    <landing_dir>/<slug>/current.json   the files of the latest fetch (what parsers read)

A landed file is never rewritten: landing the same bytes under the same name again
writes nothing and returns the file landed first, so re-running a fetch on unchanged
inputs changes nothing on disk and parsers downstream can skip work. Every file is
written under a temporary name and renamed into place, and the sidecar only after its
data file, so a crash never leaves a sidecar describing missing or partial bytes.

Parsers do not look at the directory: they call `current_files` (the pointer written at
the end of a successful fetch) and `iter_members`, which sees through a publisher's zip so
a parser works whether the mirror holds the CSVs or the zip that contains them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import requests

from assets.sources.http import HEAD_BYTES, FetchError, check_content, download, redact
from assets.sources.spec import Download, SourceSpec
from pipelines.settings import Settings

logger = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
POINTER_NAME = "current.json"
KEPT_HEADERS = ("etag", "last-modified", "content-type", "content-length")
MODES = ("live", "mirror")
COPY_CHUNK = 1024 * 1024
PROGRESS_STEP_PCT = 10
PROGRESS_EVERY_S = 5.0


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
    src = Path(src)

    if sha256 is not None:
        existing = _find_existing(slug_dir, slug, file_name, sha256)
        if existing is not None:
            return existing
    tmp, actual_sha, size = _copy_hashing(src, slug_dir)
    try:
        if sha256 is not None and actual_sha != sha256:
            raise FetchError(
                f"{slug}: {src} changed while landing {file_name}: expected sha256 {sha256}, "
                f"copied bytes have {actual_sha}"
            )
        existing = _find_existing(slug_dir, slug, file_name, actual_sha)
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
        files.append(
            LandedFile(
                slug=slug,
                file_name=entry["file_name"],
                path=path,
                sha256=entry["sha256"],
                size=entry["size"],
                url=entry["url"],
                upstream_url=entry["upstream_url"],
                fetched_at=entry["fetched_at"],
                mode=entry["mode"],
                new=False,
            )
        )
    return tuple(files)


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
    try:
        if settings.mode == "mirror":
            files = _fetch_mirror(spec, settings.mirror_dir, landing_dir, fetched_at, log)
        elif settings.mode == "live":
            files = _fetch_live(spec, settings, fetched_at, log, session)
        else:
            raise ValueError(f"{spec.slug}: unknown fetch mode {settings.mode!r}")
        _write_pointer(landing_dir / spec.slug, spec.slug, settings.mode, files)
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
) -> list[LandedFile]:
    source_dir = Path(mirror_dir) / spec.slug
    if not spec.mirror_patterns:
        raise FetchError(f"{spec.slug}: the source spec has no mirror_patterns")
    if not source_dir.is_dir():
        raise FetchError(
            f"{spec.slug}: mirror directory {source_dir} does not exist "
            f"(expected files matching {list(spec.mirror_patterns)})"
        )
    candidates = sorted(
        p for p in source_dir.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    chosen: dict[str, Path] = {}
    for pattern in spec.mirror_patterns:
        matches = [p for p in candidates if fnmatch.fnmatch(p.name, pattern)]
        if not matches:
            raise FetchError(
                f"{spec.slug}: no file in mirror directory {source_dir} matches {pattern!r} "
                f"(present: {[p.name for p in candidates] or 'nothing'})"
            )
        chosen.update((p.name, p) for p in matches)

    by_name = {d.file_name: d for d in spec.downloads}
    files = []
    for name in sorted(chosen):
        path = chosen[name]
        download_spec = by_name.get(name)
        _check_mirror_file(spec.slug, path, download_spec)
        if download_spec is not None:
            upstream = download_spec.url
        else:
            upstream = spec.downloads[0].url if spec.downloads else None
        landed = land_file(
            landing_dir,
            spec.slug,
            name,
            path,
            url=path.resolve().as_uri(),
            upstream_url=upstream,
            mode="mirror",
            fetched_at=fetched_at,
        )
        log.info(
            "%s: %s %s (%d bytes, sha256 %s) from the mirror",
            spec.slug,
            "landed" if landed.new else "unchanged",
            name,
            landed.size,
            landed.sha256[:12],
        )
        files.append(landed)
    return files


def _check_mirror_file(slug: str, path: Path, download_spec: Download | None) -> None:
    """Give a mirror file the same sanity check as a download (no HTML page, magic)."""
    fmt = download_spec.format if download_spec is not None else path.suffix.lstrip(".")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    try:
        check_content(head, fmt.lower())
    except ValueError as exc:
        raise FetchError(f"{slug}: mirror file {path}: {exc}") from None


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
                try:
                    landed = land_file(
                        settings.landing_dir,
                        spec.slug,
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


def _copy_hashing(src: Path, slug_dir: Path) -> tuple[Path, str, int]:
    """Stream `src` to a temp file of `slug_dir`, hashing it; returns (temp, sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix=".landing-", suffix=".part", dir=slug_dir)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as fh:
            while chunk := fh.read(COPY_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def _history(slug_dir: Path, slug: str) -> list[tuple[LandedFile, dict[str, Any]]]:
    """Landed files with their sidecars, oldest first (by fetched_at, then name)."""
    if not slug_dir.is_dir():
        return []
    found = []
    for meta_path in slug_dir.iterdir():
        if not meta_path.name.endswith(META_SUFFIX) or meta_path.name.startswith("."):
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FetchError(f"{slug}: unreadable landing sidecar {meta_path}: {exc}") from None
        data_path = meta_path.with_name(meta_path.name[: -len(META_SUFFIX)])
        landed = LandedFile(
            slug=slug,
            file_name=meta["file_name"],
            path=data_path,
            sha256=meta["sha256"],
            size=meta["size"],
            url=meta["url"],
            upstream_url=meta.get("upstream_url"),
            fetched_at=meta["fetched_at"],
            mode=meta["mode"],
            new=False,
        )
        found.append((landed, meta))
    found.sort(key=lambda item: (item[0].fetched_at, item[0].path.name))
    return found


def _find_existing(slug_dir: Path, slug: str, file_name: str, sha256: str) -> LandedFile | None:
    for landed, _meta in _history(slug_dir, slug):
        if (
            landed.file_name == file_name
            and landed.sha256 == sha256
            and landed.path.is_file()
            and landed.path.stat().st_size == landed.size
        ):
            return landed
    return None


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


def _write_pointer(slug_dir: Path, slug: str, mode: str, files: list[LandedFile]) -> None:
    """Point `current.json` at `files`; deterministic, and untouched when unchanged."""
    slug_dir.mkdir(parents=True, exist_ok=True)
    pointer = {
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
    data = _json_bytes(pointer)
    path = slug_dir / POINTER_NAME
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    _write_atomic(path, data)


__all__ = [
    "FetchReport",
    "LandedFile",
    "NotFetchedError",
    "current_files",
    "fetch_source",
    "iter_members",
    "land_file",
    "landed_history",
    "write_current_pointer",
]
