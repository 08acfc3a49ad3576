"""Fingerprints of a step's inputs, so that a re-run on unchanged inputs skips the work.

Each skippable step (raw parse + validation of a source, `dbt build`, the export) hashes
everything its output depends on into one fingerprint, and records it in a small JSON file
only *after* its work succeeded and was published. The next run recomputes the fingerprint
and skips the work when it equals the recorded one and the published output is still the
one recorded (same size and mtime). The rules that keep skipping honest:

- a record is written with write-temp + `os.replace` (never in place: the fault suite
  hard-links warehouse copies), after the output it describes is in place;
- a record that cannot be read, is not of this format, or whose checksum does not match
  its content counts as absent: the work runs;
- anything a step does not know how to fingerprint is not skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from assets.foundation.files import fsync_dir, write_atomically
from assets.foundation.settings import PROJECT_ROOT

RECORD_FORMAT = 1

log = logging.getLogger(__name__)


def digest(payload: Any) -> str:
    """sha256 of a JSON-able payload, written canonically (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(value: Any) -> Any:
    """A JSON-able form of plain data (dataclasses, mappings, sequences, sets) that does not
    depend on the process: sets are sorted, so hash randomisation cannot change a digest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__class__": type(value).__qualname__,
            **{f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def stat_of(path: Path) -> dict[str, int] | None:
    """Size and mtime (ns) of a file, or None when it is not a regular file."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def files_digest(root: Path, paths: Iterable[Path]) -> str:
    """sha256 over the relative names and contents of `paths` (under `root`)."""
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(str(path.relative_to(root)).encode("utf-8") + b"\0")
        sha.update(file_sha256(path).encode("ascii") + b"\n")
    return sha.hexdigest()


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of `names` (and Python's), as this process found them first."""
    return dict(_package_versions(tuple(names)))


@functools.cache
def _package_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    versions = [("python", f"{sys.version_info.major}.{sys.version_info.minor}")]
    for name in names:
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((name, "absent"))
    return tuple(versions)


def code_digest(*modules: ModuleType) -> str:
    """sha256 of the source files of `modules` and of every project module they use.

    Follows the module objects, functions and classes found in each module's globals,
    transitively, as long as they come from files of this project (not the virtualenv):
    a change to a source module, to a helper it imports (raw.py, validation.py, ...) or
    to the factory changes the digest.
    """
    root = PROJECT_ROOT.resolve()
    venv_markers = ("site-packages", ".venv")
    seen: dict[str, Path] = {}
    skipped: set[str] = set()
    queue = list(modules)
    while queue:
        module = queue.pop()
        name = getattr(module, "__name__", None)
        file = getattr(module, "__file__", None)
        if not name or not file or name in seen or name in skipped:
            continue
        path = Path(file).resolve()
        if not path.is_relative_to(root) or any(m in path.parts for m in venv_markers):
            skipped.add(name)
            continue
        seen[name] = path
        for value in list(vars(module).values()):
            if isinstance(value, ModuleType):
                queue.append(value)
            else:
                owner = getattr(value, "__module__", None)
                if (
                    isinstance(owner, str)
                    and owner not in seen
                    and owner not in skipped
                    and owner in sys.modules
                ):
                    queue.append(sys.modules[owner])
    return files_digest(root, seen.values())


def utc_now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ records


def read_record(path: Path, *, kind: str) -> dict | None:
    """The record at `path`, or None when it is missing, unreadable, of another kind, or
    does not match its own checksum (a damaged record never lets work be skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable fingerprint record %s: %s", path, exc)
        return None
    try:
        record = json.loads(text)
    except ValueError as exc:
        log.warning("ignoring damaged fingerprint record %s: %s", path, exc)
        return None
    if (
        not isinstance(record, dict)
        or record.get("format") != RECORD_FORMAT
        or record.get("kind") != kind
        or not isinstance(record.get("fingerprint"), str)
        or record.get("checksum") != _checksum(record)
    ):
        log.warning("ignoring damaged fingerprint record %s (format or checksum)", path)
        return None
    return record


def write_record(path: Path, *, kind: str, fingerprint: str, **content: Any) -> dict:
    """Write a record atomically (temporary file, fsync, rename, fsync of the directory)."""
    path = Path(path)
    record = {
        "format": RECORD_FORMAT,
        "kind": kind,
        "fingerprint": fingerprint,
        "recorded_at": utc_now_text(),
        **content,
    }
    record["checksum"] = _checksum(record)
    text = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomically(path, text.encode("utf-8"))
    return record


def remove_record(path: Path) -> None:
    """Forget a record before work that would make it untrue starts.

    Belt and braces: a record only matches inputs equal to its own and outputs still as it
    recorded them, so one left behind by a failed removal cannot let changed work be
    skipped; the failure is logged, not raised.
    """
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("could not remove fingerprint record %s: %s", path, exc)
        return
    fsync_dir(Path(path).parent)


def _checksum(record: Mapping[str, Any]) -> str:
    return digest({k: v for k, v in record.items() if k != "checksum"})
