"""`make dev` stops on SIGTERM, UI and daemon included, even when started in the background.

A process started in the background by a non-interactive shell inherits SIGINT as ignored;
`dagster dev` maps SIGTERM onto SIGINT's handler, so it used to ignore SIGTERM too. The test
starts the real `make dev` that way, waits for the UI to answer, sends SIGTERM to make only,
and expects every process of the session to be gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, session, ...; zombies are finished.
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.xfail(
    reason="open bug (session of 2026-12-03): on a fresh clone under load, dagster dev was still "
    "running 90 s after SIGTERM; passes alone, not yet diagnosed",
    strict=False,
)
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
        assert len(_session_pids(make.pid)) >= 3  # make, dagster dev, webserver, daemon...

        make.send_signal(signal.SIGTERM)
        make.wait(timeout=90)
        deadline = time.monotonic() + 60
        while _session_pids(make.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _session_pids(make.pid) == [], "processes left running after SIGTERM"
    finally:
        if _session_pids(make.pid):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait(timeout=10)
