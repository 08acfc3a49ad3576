"""`tremplin dev`: `dagster dev` (UI and daemon) under a supervisor that always stops it.

`dagster dev` stops its webserver and daemon one after the other, waiting up to 60 s for
each, and its code servers after that. On a loaded machine (a test run beside it, a
code location still loading) that took more than 90 s, so a SIGTERM from a supervisor or
`make` did not stop the UI in any time a user would wait. Here `dagster dev` runs in its
own process group: a SIGTERM or SIGINT to this process is passed on as the SIGINT
`dagster dev` expects (its graceful stop), and whatever of the group is still alive
`GRACE_S` seconds later is killed. Started in the background, this process inherits
SIGINT as ignored; installing its own handlers undoes that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

# How long `dagster dev` gets to stop its services cleanly before its group is killed.
GRACE_S = 20.0


def _kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def supervise(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None) -> int:
    """Run `command` in a new session until it exits or this process is asked to stop."""
    child = subprocess.Popen(list(command), cwd=cwd, env=env, start_new_session=True)
    stop_asked: list[float] = []

    def _on_stop(signum: int, _frame: object) -> None:
        if not stop_asked:
            stop_asked.append(time.monotonic())
            _kill_group(child.pid, signal.SIGINT)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_stop)
    try:
        while True:
            try:
                returncode = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stop_asked and time.monotonic() - stop_asked[0] > GRACE_S:
                    _kill_group(child.pid, signal.SIGKILL)
    finally:
        # Code servers started by the webserver or daemon share the group: none outlives us.
        _kill_group(child.pid, signal.SIGKILL)
        if child.poll() is None:
            child.wait()
    return 0 if stop_asked else returncode
