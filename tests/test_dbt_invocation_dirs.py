"""dbt's per-invocation folders under dbt_project/target do not pile up run after run."""

import os
from pathlib import Path

from pipelines.dbt import prune_invocation_dirs


def _invocation(target: Path, name: str, mtime: int) -> Path:
    path = target / name
    (path / "compiled").mkdir(parents=True)
    (path / "run_results.json").write_text("{}")
    os.utime(path, ns=(mtime, mtime))
    return path


def test_only_the_newest_invocations_are_kept(tmp_path):
    target = tmp_path / "target"
    old = [_invocation(target, f"tremplin_dbt-old{i}-x", 1_000 + i) for i in range(6)]
    current = _invocation(target, "tremplin_dbt-now-y", 500)  # the running one, whatever its age
    other = _invocation(target, "docs-z", 1)  # not a build folder
    (target / "manifest.json").write_text("{}")

    removed = prune_invocation_dirs(current, keep=3)

    kept = sorted(p.name for p in target.iterdir())
    assert kept == [
        "docs-z",
        "manifest.json",
        "tremplin_dbt-now-y",
        "tremplin_dbt-old4-x",
        "tremplin_dbt-old5-x",
    ]
    assert sorted(removed) == sorted(old[:4])
    assert current.exists() and other.exists()
