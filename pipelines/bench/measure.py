"""Measuring a command: wall time, exit code and the resident memory of its process tree.

Shared by the bench's steps (`run.py`) and the engine comparison (`spark_build.py`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT

SAMPLE_EVERY_S = 0.2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            text = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        kids = [int(k) for k in text.split()]
        found += kids
        todo += kids
    return found


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants, now."""
    total = 0
    for p in (pid, *_children(pid)):
        try:
            fields = Path(f"/proc/{p}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * PAGE_SIZE
    return total


@dataclass
class Measured:
    """A finished subprocess: wall time, exit code, RSS samples (epoch s, bytes)."""

    seconds: float
    returncode: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    output: str = ""
    timed_out: bool = False

    @property
    def peak_rss(self) -> int:
        return max((r for _, r in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        inside = [r for t, r in self.samples if start <= t <= end]
        return max(inside, default=0)


def measure(
    command: Sequence[str],
    env: dict,
    log_path: Path,
    memory_cap: int | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run `command`, sampling its process tree's RSS; output goes to `log_path`.

    `memory_cap` (bytes) bounds the child's address space: past it, allocations fail with
    MemoryError in the child instead of the kernel killing whatever process it picks.
    `timeout` (s) ends the command and its whole tree (e.g. a JVM under dbt) past that
    time: the result says it timed out, and what the command logged until then stays."""
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: _cap_memory(memory_cap)) if memory_cap else None,
            start_new_session=timeout is not None,  # its own group, ended as one
        )
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), tree_rss(process.pid)))
                done.wait(SAMPLE_EVERY_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timed_out = False
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
        done.set()
        sampler.join()
    return Measured(
        time.monotonic() - started, returncode, samples, log_path.read_text(), timed_out
    )


def _cap_memory(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def settle() -> float:
    """Wait until the page cache's dirty data is on disk; returns the seconds it took.

    A run writes gigabytes nationally; measured right after, the no-op re-run would wait
    behind that write-back at every SQLite commit of Dagster's event log, which a
    scheduled re-run hours later never does. Each measured command starts settled."""
    started = time.monotonic()
    os.sync()
    return round(time.monotonic() - started, 2)
