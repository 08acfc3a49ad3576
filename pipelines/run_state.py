"""Whether `tremplin run` has anything to do, answered before Dagster starts.

On a mirror that has not moved, every step of a run ends "unchanged": landing finds no new
bytes, the raw parse, dbt and the export skip their work (`assets.foundation.fingerprint`).
Reaching that answer through Dagster still costs about 10 s of imports, run creation and a
thousand events for four runs (docs/BENCHMARK.md, "The no-op"). So, after a whole-graph
mirror-mode run succeeds and publishes, the CLI records what it ran on and what it left:
the state of every mirror file, project file and installed-package directory, the
settings, and the state of every file of the warehouse directory. The next `tremplin run`
compares; when nothing moved it says so, repeats the warnings that run showed, notes the
mirror check in the fetch log (so `tremplin status` still sees the source checked), and
exits without starting Dagster.

The rules that keep this honest:

- a file counts as unchanged only while its size, mtime, ctime and inode all are: a file
  replaced by a copy, even with its mtime kept, is a change;
- the record is written (atomically) only after a run that succeeded, was not held by the
  publication gate, and saw the same inputs at its end as at its start;
- live mode never skips (only the publisher knows what is new), nor do `--source`,
  `--full-refresh` and `--force`; a missing or damaged record means a run.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from assets.foundation.fingerprint import (
    canonical,
    digest,
    read_record,
    remove_record,
    write_record,
)
from assets.foundation.settings import PROJECT_ROOT, Settings
from assets.ingest.status import append_record, now_iso, parse_records

RECORD_KIND = "unchanged_run"
RECORD_NAME = "last_run.json"
# Project files the pipeline's behaviour depends on; dbt's own outputs are not among them.
CODE_PATHS = ("pipelines", "assets", "dbt_project", "deploy", "pyproject.toml", "requirements.lock")
SKIPPED_DIRS = {"__pycache__", "target", "logs", ".pytest_cache"}


@dataclass(frozen=True)
class RunState:
    """Digests of what a run depends on (`inputs`) and of what it leaves (`outputs`)."""

    inputs: dict[str, str]
    outputs: str


def record_path(settings: Settings) -> Path:
    return settings.run_log_dir / RECORD_NAME


def tree_state(root: Path, skip: frozenset[Path] = frozenset(), follow: bool = False) -> list:
    """(relative name, size, mtime, ctime, inode) of every file under `root`, sorted.

    With `follow`, symbolic links are followed (a mirror may link its sources' folders
    from elsewhere: their files are what the run reads); without, a link is recorded by
    its target (`exports/latest`)."""
    root = Path(root)
    if not root.is_dir():
        return [_file_state(root, root.name)]
    entries = []
    for folder, dirs, files in os.walk(root, followlinks=follow):
        here = Path(folder)
        links = [] if follow else [d for d in dirs if (here / d).is_symlink()]
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_DIRS and d not in links and (here / d).resolve() not in skip
        )
        for name in files + links:
            path = here / name
            relative = str(path.relative_to(root))
            if path.is_symlink() and not follow:
                entries.append([relative, "->", os.readlink(path)])
            else:
                entries.append(_file_state(path, relative))
    return sorted(entries, key=lambda entry: entry[0])


def _file_state(path: Path, name: str) -> list:
    try:
        st = path.stat()
    except FileNotFoundError:  # absent, or removed while walking: recorded as such
        return [name, None]
    return [name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _packages_state() -> list:
    """The interpreter and the state of the directories packages are installed in: an
    install or removal changes a directory's mtime."""
    dirs = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    state: list = [sys.version]
    for name in sorted(dirs):
        try:
            st = Path(name).stat()
        except FileNotFoundError:
            continue
        state.append([name, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return state


def _settings_state(settings: Settings) -> dict:
    environment = {k: v for k, v in os.environ.items() if k.startswith("TREMPLIN_")}
    return {"settings": canonical(settings), "environment": environment}


def current_state(settings: Settings, project_root: Path = PROJECT_ROOT) -> RunState:
    mirror = settings.mirror_dir.resolve()
    inputs = {
        "mirror": digest(tree_state(mirror, follow=True)),
        "code": digest([tree_state(project_root / p) for p in CODE_PATHS]),
        "packages": digest(_packages_state()),
        "settings": digest(_settings_state(settings)),
    }
    # The run logs (this record, the fetch log) change on every run; the mirror is an input.
    skip = frozenset({settings.run_log_dir.resolve(), mirror})
    outputs = digest(tree_state(settings.warehouse_dir, skip))
    return RunState(inputs, outputs)


@dataclass(frozen=True)
class Unchanged:
    """What the last recorded run left, when nothing has moved since."""

    run_id: str
    finished_at: str
    warnings: list[str]
    fetches: list[dict]


def unchanged_since_last_run(settings: Settings, state: RunState) -> Unchanged | None:
    record = read_record(record_path(settings), kind=RECORD_KIND)
    if record is None or record.get("inputs") != state.inputs:
        return None
    if record["fingerprint"] != state.outputs:
        return None
    return Unchanged(
        run_id=str(record.get("run_id", "")),
        finished_at=str(record.get("recorded_at", "")),
        warnings=[str(line) for line in record.get("warnings", [])],
        fetches=[f for f in record.get("fetches", []) if isinstance(f, dict)],
    )


def fetch_log_size(settings: Settings) -> int:
    try:
        return settings.fetches_log.stat().st_size
    except FileNotFoundError:
        return 0


def record_run(
    settings: Settings,
    before: RunState,
    *,
    run_id: str,
    warnings: list[str],
    fetch_log_from: int,
    project_root: Path = PROJECT_ROOT,
) -> bool:
    """Record a successful run, unless its inputs moved while it ran. Returns whether it
    recorded. `fetch_log_from` is the fetch log's size when the run started: the fetches
    after it are this run's, repeated by each run that finds nothing new."""
    after = current_state(settings, project_root)
    if after.inputs != before.inputs:
        forget(settings)
        return False
    try:
        with settings.fetches_log.open("rb") as log:
            log.seek(fetch_log_from)
            tail = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        tail = ""
    fetches = [
        {key: entry.get(key) for key in ("slug", "partition", "files")}
        for entry in parse_records(tail)
        if entry.get("mode") == "mirror"
    ]
    write_record(
        record_path(settings),
        kind=RECORD_KIND,
        fingerprint=after.outputs,
        inputs=after.inputs,
        run_id=run_id,
        warnings=warnings,
        fetches=fetches,
    )
    return True


def forget(settings: Settings) -> None:
    """Forget the record before a run that may change what it describes: a run that fails
    half-way must not be skipped over by the next one."""
    remove_record(record_path(settings))


def note_mirror_check(settings: Settings, unchanged: Unchanged) -> int:
    """Append to the fetch log the fetches of the recorded run, as checks that found no new
    file now: the mirror was compared file by file, which is what a mirror fetch does."""
    checked_at = now_iso()
    for fetch in unchanged.fetches:
        append_record(
            settings.fetches_log,
            {
                **fetch,
                "fetched_at": checked_at,
                "mode": "mirror",
                "new_files": [],
                "run_id": None,
                "checked_by": f"tremplin run: nothing new since {unchanged.finished_at}",
            },
        )
    return len(unchanged.fetches)
