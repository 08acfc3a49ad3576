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
the end of a successful fetch).

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

Fetching a source into this area is `assets.ingest.fetch`; reading zip members,
`assets.ingest.members`.
"""

from __future__ import annotations

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
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from assets.foundation.files import write_atomically
from assets.ingest.http import HEAD_BYTES, FetchError, redact

logger = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
POINTER_NAME = "current.json"
KEPT_HEADERS = ("etag", "last-modified", "content-type", "content-length")
COPY_CHUNK = 1024 * 1024
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
    check_file_name(slug, file_name)
    if mode not in MODES:
        raise ValueError(f"{slug}: landing mode must be one of {MODES}, got {mode!r}")
    slug_dir = Path(landing_dir) / slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    return land(
        SlugIndex(slug_dir, slug),
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


def land(
    index: SlugIndex,
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
    write_atomically(data_path.with_name(data_path.name + META_SUFFIX), _json_bytes(meta))
    index.add(landed)
    return landed


def landed_history(landing_dir: Path, slug: str) -> tuple[LandedFile, ...]:
    """Every file ever landed for `slug` (oldest first), whether current or not."""
    return tuple(landed for landed, _meta in sidecar_history(Path(landing_dir) / slug, slug))


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
        files.append(landed_from_entry(slug, slug_dir, entry))
    return tuple(files)


def landed_from_entry(slug: str, slug_dir: Path, entry: dict[str, Any]) -> LandedFile:
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


def check_file_name(slug: str, file_name: str) -> None:
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


def has_bytes(landed: LandedFile) -> bool:
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


def read_sidecar(
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
        key = stat_key(st if st is not None else os.stat(os.path.join(slug_dir, meta_name)))
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


def sidecar_history(slug_dir: Path, slug: str) -> list[tuple[LandedFile, dict[str, Any]]]:
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
            found.append(read_sidecar(slug_dir, slug, name, st, memo))
            names.add(name)
    for gone in memo.keys() - names:
        memo.pop(gone, None)
    found.sort(key=lambda item: (item[0].fetched_at, item[0].path.name))
    return found


class SlugIndex:
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
        found = [read_sidecar(self.slug_dir, self.slug, name)[0] for name in names]
        matching = [
            landed
            for landed in found
            if landed.file_name == file_name and landed.sha256 == sha256 and has_bytes(landed)
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
                landed, _meta = read_sidecar(self.slug_dir, self.slug, name)
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
    write_pointer(Path(landing_dir) / slug, slug, mode, list(files))


def write_pointer(
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
    write_atomically(path, _pointer_bytes(pointer))


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


MODES = ("live", "mirror")


def stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
