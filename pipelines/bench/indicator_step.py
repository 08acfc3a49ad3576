"""The indicator step alone (issue 19, item 4b): tremplin's dbt models of the baselines'
headline indicators, against the baselines' computing time.

The end-to-end comparison pits the whole of tremplin (landing, parsing, contracts, the
whole warehouse, exports) against three scripts. This one isolates the computation:

* tremplin: `dbt build` of the models each headline indicator is built by, and everything
  they read (`+model`: models and seeds, no tests), into a new DuckDB file, from the raw
  Parquet of the bench's own run (its warehouse directory). Two figures: the wall time
  of the dbt command (dbt's start-up and project parsing included) and the models' own
  time (the sum of their execution times in `run_results.json`);
* each baseline: the time its script spends computing the indicators from the frames it
  read, its file reading excluded (`compute_seconds` in its `summary.json`).

Targets: the models' own time at least 10 times below pandas' computing, and no more than
polars'. `python -m pipelines.bench.indicator_step WAREHOUSE_DIR` times the dbt side on an
existing warehouse directory (one whose `raw/` exists).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
# Baseline indicator -> the mart tremplin computes it in.
HEADLINE_MODELS = {
    "offers_per_jobseeker": "fct_market_tension",  # offers per 10 job seekers
    "bmo_shares": "fct_hiring_needs",  # BMO difficult and seasonal shares
    "offers_trend": "fct_offers_trend",  # open offers per month
}
TARGETS = {
    "pandas": "indicator step >= 10 x faster than pandas' compute",
    "polars": "indicator step at least as fast as polars' compute",
}
# What the step must be faster than, by how much.
FACTORS = {"pandas": 10.0, "polars": 1.0}


def dbt_command(work: Path) -> list[str]:
    """`dbt build` of the headline models and their parents (models and seeds, no tests);
    compiled SQL, logs and
    run_results go under `work`, never into the project's own target/."""
    return [
        str(Path(sys.executable).with_name("dbt")),
        "build",
        "--select",
        *(f"+{model}" for model in HEADLINE_MODELS.values()),
        "--resource-type",
        "model",
        "--resource-type",
        "seed",
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]


def dbt_env(warehouse_dir: Path, duckdb_path: Path) -> dict[str, str]:
    """The variables of `pipelines.dbt.dbt_env`: a new warehouse file, the raw Parquet
    of `warehouse_dir` (the sources name it relative to TREMPLIN_DUCKDB_DIR)."""
    env = {**os.environ}
    env.update(
        TREMPLIN_DUCKDB_PATH=str(duckdb_path),
        TREMPLIN_DUCKDB_DIR=str(warehouse_dir),
        TREMPLIN_RAW_DIR="raw",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def time_dbt_indicators(warehouse_dir: Path, work: Path) -> dict:
    """Build the headline models from `warehouse_dir`'s raw layer into a new file."""
    work.mkdir(parents=True, exist_ok=True)
    duckdb_path = work / "indicators.duckdb"
    duckdb_path.unlink(missing_ok=True)
    started, cpu = time.monotonic(), os.times()
    done = subprocess.run(
        dbt_command(work),
        env=dbt_env(Path(warehouse_dir).resolve(), duckdb_path),
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds, after = time.monotonic() - started, os.times()
    result: dict = {
        "seconds": round(seconds, 2),
        "cpu_s": round(
            after.children_user + after.children_system - cpu.children_user - cpu.children_system,
            2,
        ),
        "ok": done.returncode == 0,
        "command": " ".join(["dbt", *dbt_command(work)[1:12]]),
    }
    run_results = work / "target" / "run_results.json"
    if run_results.exists():
        nodes = json.loads(run_results.read_text())["results"]
        result["models"] = len(nodes)
        result["models_s"] = round(sum(n["execution_time"] for n in nodes), 2)
        result["slowest"] = sorted(
            ({"model": n["unique_id"].split(".")[-1], "s": round(n["execution_time"], 2)}
             for n in nodes),
            key=lambda n: -n["s"],
        )[:5]  # fmt: skip
    if not result["ok"]:
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        result["error"] = "; ".join(lines[-3:]) or f"dbt exit code {done.returncode}"
    return result


def compute_seconds(baseline: dict) -> float | None:
    """A baseline's computing time over the headline indicators (its reading excluded);
    None when it did not finish them (or, in results older than the split, did not time
    its computing apart)."""
    indicators = baseline.get("indicators", {})
    if not baseline.get("ok") or set(indicators) != set(HEADLINE_MODELS):
        return None
    if any("compute_seconds" not in i for i in indicators.values()):
        return None
    return round(sum(i["compute_seconds"] for i in indicators.values()), 2)


def comparisons(results: dict) -> dict:
    """Baseline compute time and speed-up of the dbt models, per baseline measured."""
    step = results.get("indicator_step", {})
    own = step.get("models_s") if step.get("ok") else None
    figures = {}
    for kind in FACTORS:
        if kind not in results:
            continue
        compute = compute_seconds(results[kind])
        figures[kind] = {
            "compute_s": compute,
            "speedup": round(compute / own, 2) if compute and own else None,
        }
    return figures


def targets(results: dict) -> dict:
    figures = comparisons(results)
    return {
        TARGETS[kind]: figure["speedup"] is not None and figure["speedup"] >= FACTORS[kind]
        for kind, figure in figures.items()
    }


def format_rows(results: dict) -> list[str]:
    """The indicator-step lines of the bench table, each target with its tick or cross."""
    step = results.get("indicator_step")
    if not step:
        return []
    lines = ["", "indicator step alone (headline models vs baselines' compute)"]
    if not step.get("ok"):
        return [*lines, f"  dbt FAILED: {step.get('error', 'unknown')}"]
    lines.append(f"  {'dbt build, command wall':<32}{step['seconds']:>10.1f}")
    own = f"dbt models own time ({step['models']})"
    lines.append(f"  {own:<32}{step['models_s']:>10.1f}")
    for kind, figure in comparisons(results).items():
        compute = figure["compute_s"]
        if compute is None:
            lines.append(f"  {kind + ' compute':<32}{'n/a':>10}  [ ] {TARGETS[kind]}")
            continue
        ok = figure["speedup"] is not None and figure["speedup"] >= FACTORS[kind]
        lines.append(
            f"  {kind + ' compute':<32}{compute:>10.1f}  "
            f"x{figure['speedup']} [{'x' if ok else ' '}] {TARGETS[kind]}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse_dir", type=Path, help="a warehouse directory with raw/")
    parser.add_argument("--work", type=Path, default=None, help="where dbt writes (temporary)")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tremplin-indicator-step-") as tmp:
        result = time_dbt_indicators(args.warehouse_dir, args.work or Path(tmp))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
