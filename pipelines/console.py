"""What `tremplin run` shows while it works, and where the rest of the stream goes.

By default the console gets one line per source and stage (what it did, rows, seconds), a
live progress line on a terminal for the step under way (with the dbt models and tests
counted as they finish), the warnings that need a human, and the closing summary. The full
stream (Dagster's event log lines, dbt's output, library messages) goes to a log file under
`warehouse/runs/logs/`, whose path is printed first. `-v` leaves the full stream on the
console instead.

The redirection is done on the file descriptors, so child processes (dbt) and libraries
that kept a handle on stderr land in the log file too.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

KEPT_LOGS = 20
DBT_STEP = "tremplin_dbt"
# Our packages: their warnings are the ones a human may have to act on.
OWN_LOGGERS = ("assets", "pipelines")


def new_log_path(run_log_dir: Path, command: str) -> Path:
    """A fresh log file under `<runs>/logs/`, keeping the newest `KEPT_LOGS`."""
    folder = run_log_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("*.log"))[: -(KEPT_LOGS - 1) or None]:
        old.unlink(missing_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Two runs started in the same second (a schedule and a user) get a file each.
    for attempt in range(1000):
        path = folder / (
            f"{stamp}-{command}.log" if not attempt else f"{stamp}-{command}-{attempt}.log"
        )
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free log file name in {folder} for {stamp}-{command}")


def _terminal_stream(stream: TextIO, fd: int) -> TextIO:
    """A stream that still reaches the terminal once `fd` is pointed at the log file."""
    try:
        if stream.fileno() == fd:
            return open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    except (AttributeError, io.UnsupportedOperation, ValueError):
        pass
    return stream  # already replaced (pytest's capture, a pipe wrapper): keep writing there


class Console:
    """Permanent lines, warnings and one transient progress line (terminals only)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.warnings: list[str] = []  # as shown, for a run that finds nothing new to repeat
        self._progress = ""
        self._lock = threading.RLock()

    def _clear(self) -> None:
        if self.tty and self._progress:
            self.out.write("\r\x1b[K")
            self._progress = ""

    def line(self, text: str = "") -> None:
        with self._lock:
            self._clear()
            self.out.write(text + "\n")
            self.out.flush()

    def warn(self, text: str) -> None:
        with self._lock:
            self.warnings.append(text)
            self._clear()
            self.out.flush()
            self.err.write(text + "\n")
            self.err.flush()

    def progress(self, text: str) -> None:
        if not self.tty:
            return
        with self._lock:
            self.out.write("\r\x1b[K" + text[:119])
            self.out.flush()
            self._progress = text

    def done(self) -> None:
        with self._lock:
            self._clear()
            self.out.flush()


class _ConsoleWarnings(logging.Handler):
    """Warnings of our own code (and errors of anyone) shown on the console as they come."""

    def __init__(self, console: Console):
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        own = record.name.split(".")[0] in OWN_LOGGERS
        if not own and record.levelno < logging.ERROR:
            return
        try:
            message = record.getMessage().strip().splitlines()[0]
        except Exception:  # noqa: BLE001 - a broken log call must not break the run
            return
        self.console.warn(f"  {record.levelname.lower()}: {message}")


class _RunLog(io.TextIOWrapper):
    """The run's log file, written on a best-effort basis: when the disk is full, a line
    that cannot be written is dropped (and `lost` says why) instead of turning every
    `print` of the run into an exception that hides the run's own error."""

    lost: OSError | None = None

    def __init__(self, path: Path):
        super().__init__(path.open("ab"), encoding="utf-8", errors="replace", line_buffering=True)

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as exc:
            self.lost = self.lost or exc
            return len(text)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            self.lost = self.lost or exc

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            self.lost = self.lost or exc
            self.buffer.raw.close()


@contextmanager
def quiet_run(log_path: Path | None) -> Iterator[Console]:
    """Point stdout and stderr (descriptors and Python streams) at `log_path` for the block.

    Yields the console, which still writes to the terminal (or to whatever stdout and stderr
    were, e.g. a test's capture). With `log_path=None` (`-v`), nothing is redirected.
    """
    if log_path is None:
        yield Console()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    console = Console(_terminal_stream(sys.stdout, 1), _terminal_stream(sys.stderr, 2))
    saved_fds = (os.dup(1), os.dup(2))
    saved_streams = (sys.stdout, sys.stderr)
    root = logging.getLogger()
    handler = _ConsoleWarnings(console)
    with _RunLog(log_path) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        # Handlers created before (logging.basicConfig) hold the old stderr object.
        moved = []
        for existing in root.handlers:
            if isinstance(existing, logging.StreamHandler) and existing.stream in saved_streams:
                moved.append((existing, existing.stream))
                existing.setStream(log)
        root.addHandler(handler)
        try:
            yield console
        finally:
            console.done()
            root.removeHandler(handler)
            for existing, stream in moved:
                existing.setStream(stream)
            sys.stdout, sys.stderr = saved_streams
            log.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            for stream in (console.out, console.err):
                if stream not in saved_streams:
                    stream.close()


# ------------------------------------------------------------------ run progress


@dataclass
class _Step:
    started: float
    rows: int = 0
    tables: int = 0
    unchanged: int = 0
    published: int = 0
    new_files: int | None = None
    files: int | None = None
    models: int = 0
    models_unchanged: int = 0
    tests: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    observations: int = 0
    metadata: dict = field(default_factory=dict)


def _value(metadata: Any, name: str) -> Any:
    entry = metadata.get(name) if metadata else None
    return getattr(entry, "value", entry)


def _seconds(seconds: float) -> str:
    return f"{seconds:5.1f} s" if seconds < 100 else f"{seconds:5.0f} s"


class RunProgress:
    """Turns the Dagster events of a run into the console's lines and progress.

    One line per source (landing and raw steps together), one for the dbt build, one per
    other step; failed steps are named as they fail (the closing report gives the error).
    """

    def __init__(self, console: Console, label: str = "", source_lines: bool = True):
        self.console = console
        self.label = label  # e.g. a partition key, shown after the source's name
        self.source_lines = source_lines  # False: the caller sums the periods up
        self.steps: dict[str, _Step] = {}
        self.sources: dict[str, _Step] = {}
        self.current: str | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # the ticker keeps the progress line's clock moving during long silent steps
    def __enter__(self) -> RunProgress:
        if self.console.tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        self.console.done()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._show()

    def _show(self) -> None:
        key = self.current
        step = self.steps.get(key) if key else None
        if step is None:
            return
        elapsed = time.monotonic() - step.started
        if key == DBT_STEP:
            what = f"dbt build: {step.models} models, {step.tests} tests"
        else:
            what = f"{key.replace('__', ' ')} {self.label}".strip()
        self.console.progress(f"  … {what} ({elapsed:.0f} s)")

    def __call__(self, event: Any) -> None:
        kind = event.event_type_value
        key = event.step_key
        if kind == "STEP_START" and key:
            self.steps[key] = _Step(started=time.monotonic())
            self.current = key
            source = self._source_of(key)
            if source and source not in self.sources:
                self.sources[source] = _Step(started=time.monotonic())
            self._show()
            return
        step = self.steps.get(key) if key else None
        if step is None:
            return
        if kind == "ASSET_MATERIALIZATION":
            self._materialized(key, step, event.event_specific_data.materialization)
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            step.tests += 1
            if not evaluation.passed:
                if evaluation.severity.value == "ERROR":
                    step.tests_failed += 1
                else:
                    step.tests_warned += 1
        elif kind == "ASSET_OBSERVATION":
            step.observations += 1
        elif kind == "STEP_SUCCESS":
            self._finished(key, step, failed=False)
        elif kind == "STEP_FAILURE":
            self._finished(key, step, failed=True)
        elif kind == "STEP_SKIPPED":
            self.console.line(f"  skipped  {key} (an upstream step failed)")
        if key == self.current:
            self._show()

    @staticmethod
    def _source_of(key: str) -> str | None:
        slug, _, stage = key.rpartition("__")
        return slug if stage in ("landing", "raw") and slug else None

    def _materialized(self, key: str, step: _Step, materialization: Any) -> None:
        metadata = materialization.metadata
        source = self._source_of(key)
        if source:
            total = self.sources[source]
            if key.endswith("__landing"):
                total.files = _value(metadata, "files")
                total.new_files = _value(metadata, "new_files")
            else:
                total.tables += 1
                total.rows += _value(metadata, "rows") or 0
                total.unchanged += bool(_value(metadata, "unchanged"))
                total.published += bool(_value(metadata, "published"))
            return
        if key == DBT_STEP and len(materialization.asset_key.path) == 1:
            step.models += 1
            step.models_unchanged += _value(metadata, "unchanged") is True
            return
        step.metadata = {name: _value(metadata, name) for name in metadata}

    def _finished(self, key: str, step: _Step, failed: bool) -> None:
        if self.current == key:
            self.current = None
        elapsed = time.monotonic() - step.started
        source = self._source_of(key)
        if failed:
            name = f"{source} {self.label}".strip() if source else key
            self.console.line(f"  FAILED   {name:<40} ({key}; see the report below)")
            return
        if source and key.endswith("__raw"):
            if self.source_lines:
                self.console.line(self._source_line(source, self.sources[source]))
        elif key == DBT_STEP:
            self.console.line(self._dbt_line(step, elapsed))
        elif not source:
            self.console.line(self._other_line(key, step, elapsed))

    def _source_line(self, source: str, total: _Step) -> str:
        if total.unchanged and total.unchanged == total.tables:
            what = "unchanged"
        elif total.new_files:
            what = f"{total.new_files} new file{'s' * (total.new_files > 1)}, parsed"
        else:
            what = "parsed"
        name = f"{source} {self.label}".strip()
        seconds = time.monotonic() - total.started
        return (
            f"  ingest   {name:<40} {what:<20} {total.tables:>3} tables "
            f"{total.rows:>11,} rows {_seconds(seconds)}"
        )

    @staticmethod
    def _dbt_line(step: _Step, elapsed: float) -> str:
        if step.models and step.models_unchanged == step.models:
            what = f"skipped, inputs unchanged ({step.models} models, {step.tests} tests kept)"
        else:
            what = f"{step.models} models built, {step.tests} tests passed"
            if step.tests_warned:
                what += f" ({step.tests_warned} warned)"
            if step.observations:
                what += f", {step.observations} source tests"
        return f"  build    dbt: {what} {_seconds(elapsed)}"

    @staticmethod
    def _other_line(key: str, step: _Step, elapsed: float) -> str:
        meta = step.metadata
        stage, _, name = key.partition("__")
        if "vintage" in meta:
            if meta.get("unchanged"):
                what = f"vintage {meta['vintage']}: inputs unchanged"
            elif meta.get("published") is False:
                what = f"vintage {meta['vintage']}: HELD by the publication gate"
            elif meta.get("changed") is False:
                what = f"vintage {meta['vintage']}: same data as latest"
            else:
                what = f"vintage {meta['vintage']} published"
        else:
            what = name.replace("_", " ") or "done"
        return f"  {stage:<8} {what} {_seconds(elapsed)}"


def periods_line(slug: str, keys: list[str], progresses: list[RunProgress], seconds: float) -> str:
    """One line for every period of a periodic source ingested in a row."""
    totals = [p.sources[slug] for p in progresses if slug in p.sources]
    rows = sum(t.rows for t in totals)
    tables = max((t.tables for t in totals), default=0)
    unchanged = all(t.unchanged and t.unchanged == t.tables for t in totals)
    new_files = sum(t.new_files or 0 for t in totals)
    what = f"{len(keys)} periods {keys[0]}..{keys[-1]}" if len(keys) > 1 else f"period {keys[0]}"
    done = "unchanged" if totals and unchanged else f"{new_files} new files, parsed"
    return (
        f"  ingest   {slug:<40} {what}: {done}, {tables} tables {rows:,} rows {_seconds(seconds)}"
    )
