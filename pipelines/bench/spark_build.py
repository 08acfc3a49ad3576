"""The dbt build on DuckDB and on Spark, on the same raw Parquet: `make bench ENGINE=spark`.

`tremplin run` (the DuckDB bench of `pipelines.bench.run`) lands the mirror's raw Parquet;
on that raw folder this module times `dbt build` (every model, seed and test) twice, as
separate processes, each measured like the rest of the bench (wall time, peak resident
size of the whole process tree sampled from /proc: for Spark, the dbt process and the JVM
that pyspark starts):

1. on DuckDB (target `dev`, through `tremplin-dbt`, which is plain dbt there);
2. on Spark (target `spark`: dbt-spark's session method, pyspark on `local[2]` with the
   profile's settings, Derby metastore and tables in a fresh folder).

Then every mart and diagnostic table of the two builds is compared
(`pipelines.spark_engine.compare_builds`). Per-node times come from each build's
run_results.json: the slowest nodes, and the part of the wall time outside the nodes
(start-up, the on-run-start hook, parsing).

Caveat printed with the figures: Spark here is a local session on the same two cores, so
its time measures its overhead (JVM, metastore, one statement at a time, Python workers
for the UDFs), not what a cluster would do with inputs larger than one machine.

Alone, on an existing raw folder:
`python -m pipelines.bench.spark_build --raw-dir <warehouse>/raw [--work DIR] [--models-only]`
(models and seeds only, the parity test's build: data tests are most of Spark's nodes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
TARGETS = {"duckdb": "dev", "spark": "spark"}
SLOWEST = 8
CAVEAT = (
    "Spark ran as a local session (local[2]) on the same 2 cores as DuckDB: its figures "
    "are the overhead of a JVM, a Derby metastore and one statement at a time, not what a "
    "cluster does with inputs larger than one machine."
)


def _env(engine: str, raw_dir: Path, work: Path) -> dict[str, str]:
    env = {**os.environ}
    env.update(
        TREMPLIN_RAW_DIR=str(raw_dir),
        TREMPLIN_DUCKDB_PATH=str(work / "duckdb" / "warehouse.duckdb"),
        TREMPLIN_DUCKDB_DIR=str(work / "duckdb"),
        TREMPLIN_SPARK_DIR=str(work / "spark"),
        SPARK_LOCAL_IP="127.0.0.1",
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    (work / "duckdb").mkdir(parents=True, exist_ok=True)
    return env


def node_timings(run_results: Path) -> dict:
    """Nodes, failures, their summed time and the slowest, from a run_results.json."""
    if not run_results.exists():
        return {"nodes": 0, "failed": ["(no run_results.json)"], "nodes_s": 0.0, "slowest": []}
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    timed = sorted(
        ((r["unique_id"], float(r.get("execution_time") or 0.0)) for r in results),
        key=lambda item: -item[1],
    )
    kinds: dict[str, dict] = {}
    for unique_id, seconds in timed:
        kind = kinds.setdefault(unique_id.split(".")[0], {"nodes": 0, "seconds": 0.0})
        kind["nodes"] += 1
        kind["seconds"] = round(kind["seconds"] + seconds, 2)
    return {
        "nodes": len(results),
        "failed": [r["unique_id"] for r in results if r["status"] not in ("success", "pass")],
        "nodes_s": round(sum(seconds for _, seconds in timed), 2),
        "by_kind": kinds,
        "slowest": [{"node": uid, "seconds": round(s, 2)} for uid, s in timed[:SLOWEST]],
    }


# dbt's console line for a finished node: "12 of 334 OK created sql table model s.m [OK in 1.2s]".
NODE_LINE = re.compile(
    r"\b(\d+) of (\d+) (?:OK|PASS|WARN|ERROR|FAIL|SKIP)\b(?! hook:).*?\bin ([\d.]+)s\]"
)


def progress(output: str) -> dict:
    """How far a build got, from dbt's console lines: what a killed build leaves (it writes
    no run_results.json), and what tells a slow build from a stuck one."""
    finished = [(int(m[1]), int(m[2]), float(m[3])) for m in NODE_LINE.finditer(output)]
    if not finished:
        return {"finished": 0, "of": None, "finished_s": 0.0}
    return {
        "finished": len(finished),
        "of": finished[-1][1],
        "finished_s": round(sum(seconds for _, _, seconds in finished), 2),
    }


def build(
    engine: str,
    raw_dir: Path,
    work: Path,
    timeout: float | None = None,
    models_only: bool = False,
) -> dict:
    """`dbt build` of the whole project on `engine` (models and seeds only if
    `models_only`), measured as one process tree, ended after `timeout` seconds if given."""
    from pipelines.bench.measure import measure, settle
    from pipelines.spark_engine import WITHOUT_TESTS

    target_path = work / f"target-{engine}"
    command = [
        str(Path(sys.executable).with_name("tremplin-dbt")),
        "build",
        "--target",
        TARGETS[engine],
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(target_path),
        "--log-path",
        str(work / f"logs-{engine}"),
        *(WITHOUT_TESTS if models_only else ()),
    ]
    settled = settle()
    log = work / f"dbt-{engine}.log"
    print(f"bench: dbt build on {engine} ... (progress: {log})", flush=True)
    measured = measure(command, _env(engine, raw_dir, work), log, timeout=timeout)
    nodes = node_timings(target_path / "run_results.json")
    return {
        "ok": measured.returncode == 0 and not nodes["failed"] and not measured.timed_out,
        "returncode": measured.returncode,
        "timed_out": measured.timed_out,
        "timeout_s": timeout,
        "progress": progress(measured.output),
        "settle_before_s": settled,
        "seconds": round(measured.seconds, 2),
        "peak_rss_mb": round(measured.peak_rss / 2**20),
        "outside_nodes_s": round(measured.seconds - nodes["nodes_s"], 2),
        **nodes,
    }


def engine_builds(
    raw_dir: Path, work: Path, timeout: float | None = None, models_only: bool = False
) -> dict:
    """Both builds on `raw_dir`, then the comparison of their marts and diagnostic tables
    (when both finished). `timeout` bounds each build."""
    from pipelines.spark_engine import compare_builds

    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"raw_dir": str(raw_dir), "caveat": CAVEAT, "models_only": models_only}
    for engine in TARGETS:
        results[engine] = build(engine, raw_dir, work, timeout, models_only)
    if not all(results[engine]["ok"] for engine in TARGETS):
        results["parity"] = {"tables": 0, "differing": [], "skipped": "a build did not finish"}
        return results
    diffs = compare_builds(work / "duckdb" / "warehouse.duckdb", work / "spark")
    results["parity"] = {
        "tables": len(diffs),
        "differing": [str(diff) for diff in diffs if not diff.equal],
    }
    return results


def format_rows(results: dict) -> list[str]:
    """Lines for the bench table: both builds, then the slowest Spark nodes."""
    what = "models+seeds" if results.get("models_only") else "dbt build"
    lines = ["", f"{what + ', same raw Parquet':<34}{'wall s':>10}{'peak RSS MB':>14}"]
    for engine in TARGETS:
        item = results[engine]
        state = "" if item["ok"] else " (FAILED)"
        if item.get("timed_out"):
            state = f" (STOPPED at {item['timeout_s']:.0f} s)"
        name = f"  {engine}{state}"
        lines.append(f"{name:<34}{item['seconds']:>10.1f}{item['peak_rss_mb']:>14}")
        done = item.get("progress", {})
        if not item["ok"] and done.get("of"):
            lines.append(f"    nodes finished: {done['finished']} of {done['of']}")
        else:
            lines.append(f"{'    outside the nodes':<34}{item['outside_nodes_s']:>10.1f}")
    for slow in results["spark"]["slowest"][:5]:
        lines.append(f"{'    ' + slow['node'].split('.')[-1][:29]:<34}{slow['seconds']:>10.1f}")
    parity = results["parity"]
    if parity.get("skipped"):
        lines.append(f"  parity: not compared ({parity['skipped']})")
    else:
        lines.append(
            f"  parity: {parity['tables'] - len(parity['differing'])} of {parity['tables']} "
            "mart and diagnostic tables equal"
        )
    lines += [f"    {line}" for line in parity["differing"]]
    lines.append(f"  {results['caveat']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.bench.spark_build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--raw-dir", type=Path, required=True, help="a warehouse's raw folder")
    parser.add_argument("--work", type=Path, help="where the builds go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--timeout", type=float, help="end a build after this many seconds (its progress kept)"
    )
    parser.add_argument(
        "--models-only",
        action="store_true",
        help="build models and seeds, not the data tests (what the parity test builds)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tremplin-bench-engines-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        results = engine_builds(args.raw_dir.resolve(), work, args.timeout, args.models_only)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", "utf-8")
    print("\n".join(format_rows(results)))
    return 0 if results["duckdb"]["ok"] and results["spark"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
