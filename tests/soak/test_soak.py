"""The short chaos soak that `make test` (CI) runs: two refreshes with faults, then the check
that a clean run publishes what a fault-free build of the final mirror publishes.

The seed is fixed so that CI always meets the same two faults, each drawn by the soak's own
random sequence: `http_error_then_ok` on the first refresh (the geography fetched live from
the loopback server, which answers 503 twice before the file: the client's retries must carry
a build from an empty warehouse), then `kill9` 20 s into a refresh of a revised mirror
(SIGKILL of the run's process group in the middle of the work). The long soak is
`make soak N=200` (docs/RELIABILITY.md, Chaos soak).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.soak, pytest.mark.slow]

SOAK = Path(__file__).resolve().parent / "soak.py"
SEED = 312  # draws http_error_then_ok, then kill9 after 20 s on a revised mirror


def test_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--runs", "2", "--seed", str(SEED)]
        + ["--workdir", str(tmp_path / "soak")],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    report = done.stdout + done.stderr
    # The faults the seed promises were drawn and met (else the soak tested less than it says).
    assert re.search(r"run +1: fault http_error_then_ok +exit \[0\]", report), report
    assert re.search(r"run +2: fault kill9 +exit \[-9\]", report), report
    assert "violations: 0" in report, report
    assert done.returncode == 0, report
    final = next(line for line in report.splitlines() if line.startswith("final export content"))
    assert "None" not in final, final
