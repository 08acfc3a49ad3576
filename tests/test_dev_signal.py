"""`make dev` stops on SIGTERM, UI and daemon included, even when started in the background.

A process started in the background by a non-interactive shell inherits SIGINT as ignored;
`dagster dev` maps SIGTERM onto SIGINT's handler, so it used to ignore SIGTERM too; and on a
loaded machine its own shutdown took over 90 s. The test starts the real `make dev` that way,
waits for the UI to answer, sends SIGTERM to make only, and expects every process of the
session to be gone within the supervisor's grace (pipelines/dev.py) plus a margin.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.dev import GRACE_S

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        # After the command name: state, ppid, pgrp, session, ...; zombies are finished.
        if fields and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_dev_stops_on_sigterm(tmp_path):
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TREMPLIN_WAREHOUSE_DIR": str(tmp_path / "wh")}
    # `-o setup`: the venv and the manifest are there already; don't rebuild them here.
    make = subprocess.Popen(
        ["make", "-s", "-o", "setup", "dev", f"DEV_PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_ignore_sigint,  # as `make dev &` from a script
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert make.poll() is None, "make dev exited before the UI came up"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the Dagster UI did not come up"
                time.sleep(1)
        # make and tremplin dev in make's session; dagster dev, webserver, daemon in another.
        sessions = _sessions_under(make.pid)
        assert len(sessions) == 2
        assert sum(len(_session_pids(sid)) for sid in sessions) >= 5

        make.send_signal(signal.SIGTERM)
        make.wait(timeout=GRACE_S + 40)
        deadline = time.monotonic() + 60
        while _alive(sessions) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _alive(sessions) == [], "processes left running after SIGTERM"
    finally:
        for sid in _sessions_under(make.pid):
            if _session_pids(sid):
                os.killpg(sid, signal.SIGKILL)
        make.wait(timeout=10)


def _sessions_under(sid: int) -> set[int]:
    """The session `sid` and those its processes' children started (one level down)."""
    pids = _session_pids(sid)
    child_sids = {_sid(child) for pid in pids for child in _children(pid)}
    return ({sid} | child_sids) - {None}


def _alive(sessions: set[int]) -> list[int]:
    return [pid for sid in sessions for pid in _session_pids(sid)]


STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A grandchild in the same group, like the code servers of dagster dev.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("ready", flush=True)
time.sleep(600)
"""

SUPERVISOR = """
import sys
import pipelines.dev as dev
dev.GRACE_S = 1.0
sys.exit(dev.supervise([sys.executable, "-c", sys.argv[1]], cwd=".", env=None))
"""


def test_a_child_that_ignores_the_stop_is_killed_after_the_grace(tmp_path):
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, STUBBORN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert supervisor.stdout.readline().strip() == "ready"
        assert len(_session_pids(supervisor.pid)) == 1  # the child has a session of its own
        child_sid = next(
            sid for sid in {_sid(pid) for pid in _children(supervisor.pid)} if sid is not None
        )
        assert len(_session_pids(child_sid)) == 2
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert _session_pids(child_sid) == []
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _sid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def _children(ppid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (_stat(int(entry.name)) or ["", "0"])[1] == str(ppid)
    ]
