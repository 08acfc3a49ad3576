"""Writing files so that a crash or a full disk never leaves a half-written one in place.

Every published file of tremplin (landed bytes and their sidecars, raw Parquet, fingerprint
records, export vintages) is written under a temporary name in its final directory, flushed,
then renamed over the target: a reader sees the old file or the new one, never a mix. The
directory is flushed after the rename so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def fsync_dir(directory: Path, *, strict: bool = False) -> None:
    """Flush a directory's entries (a rename into it) to disk.

    Not every filesystem lets a directory be opened or flushed; `strict=False` treats that
    as done, since the data files themselves were flushed already.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """Flush every file of a directory, then the directory (before it is renamed into view)."""
    for path in directory.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(directory, strict=True)


def write_atomically(path: Path, data: bytes | Callable[[Path], None]) -> Path:
    """Write `data` (bytes, or a function writing the temporary path) as `path`, atomically.

    The temporary file lives in the target's directory (a rename never crosses filesystems)
    and is removed whatever happens; the target is replaced only once the new content is
    complete and flushed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_file` (created if missing) for the block: one
    process at a time across the machine; released if the holder dies."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
