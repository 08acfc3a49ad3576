"""The import contracts of pyproject.toml hold, and they would catch an upward import.

Running the real `lint-imports` keeps the rule in one place (pyproject.toml); the planted
violation proves the contracts are not vacuous (a misspelled layer would pass silently).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd), "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_project(tmp_path: Path) -> Path:
    for name in ("pipelines", "assets"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_layers(tmp_path):
    project = _copy_project(tmp_path)
    settings = project / "assets" / "foundation" / "settings.py"
    settings.write_text(settings.read_text() + "\nfrom pipelines import cli  # noqa\n")
    result = _lint(project)
    assert result.returncode != 0
    assert "pipelines -> assets -> foundation, never upward BROKEN" in result.stdout


def test_a_cycle_between_siblings_is_caught(tmp_path):
    project = _copy_project(tmp_path)
    http = project / "assets" / "ingest" / "http.py"
    http.write_text(http.read_text() + "\nfrom assets.ingest import landing  # noqa\n")
    result = _lint(project)
    assert result.returncode != 0
    assert "No cycles are allowed in assets.ingest" in result.stdout
