"""`make bench`: the read floor, tremplin end to end and the pandas and polars baselines on
one mirror.

All three read the same generated inputs, in one invocation, so the ratios compare like
with like on this machine:

1. read floor: DuckDB reads every raw input once (CSV and gzipped JSON natively, every
   nested value hashed so nothing is skipped), python-calamine reads each workbook once
   (DuckDB's excel extension downloads at first use and is unavailable offline);
2. `tremplin run` as a subprocess (temporary warehouse and DAGSTER_HOME), then the same
   command again on unchanged inputs (the no-op re-run, which finds nothing new and starts
   no Dagster run), then once more with `--force` (the same no-op through Dagster). Per-step
   durations come from the
   run's Dagster event log; memory is the resident size of the whole process tree
   (tremplin + dbt), sampled from /proc every 0.2 s, so every stage gets its own peak;
3. the pandas baseline (`pipelines.bench.pandas_baseline`) and the polars one
   (`pipelines.bench.polars_baseline`, lazy queries collected by the streaming engine), each
   as a subprocess under the same memory cap, measured the same way.

Figures go to `bench/results/<scale>-<git sha>-<UTC timestamp>.json` and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT
from assets.mirror.bench_inputs import COMPLETE_MARKER, DEFAULT_OUT, SCALES, generate_mirror
from pipelines.bench import indicator_step
from pipelines.bench.measure import SAMPLE_EVERY_S, Measured, measure, settle

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
# The targets of issue 19's table, each checked at the scale it names. The embedded default
# is the `small` scale; "ahead of pandas" and the explain target hold at every scale.
TARGETS = {
    "e2e_embedded": "end to end on an empty warehouse <= 40 s",
    "noop_embedded": "no-op re-run <= 5 s",
    "e2e_vs_floor_plus_30": "end to end <= 3 x read floor + 30 s",
    "e2e_vs_floor": "end to end <= 3 x read floor",
    "peak_rss": "peak RSS <= 3 GB",
    "noop_national": "no-op re-run <= 10 s",
    "ahead_of_pandas": "tremplin end to end faster than the pandas baseline",
    "explain": "tremplin explain <= 2 s per value",
}
SCALE_TARGETS = {
    "small": ("e2e_embedded", "noop_embedded"),
    "medium": ("e2e_vs_floor_plus_30",),
    "national": ("e2e_vs_floor", "peak_rss", "noop_national"),
}
EVERY_SCALE_TARGETS = ("ahead_of_pandas", "explain")
# `tremplin explain` on the bench warehouse: keys that exist at every scale (every fiche x
# département is a record), one field per block that walks back to the biggest tables.
EXPLAINED = (
    ("local_diagnosis", "75:M1805", "market.offersPer10JobSeekersShrunk"),
    ("local_diagnosis", "75:M1805", "hiring.difficultPctShrunk"),
    ("local_diagnosis", "75:M1805", "contractMix.cdiPctShrunk"),
    ("local_diagnosis", "75:M1805", "offersTrend.last12MonthsCount"),
    ("job_group_info", "M1805", "hiring.nationalRecruitmentProjects"),
    ("best_jobs_in_area", "75:all", "jobGroups"),
    ("departements", "75", "unemployment.ratePct"),
    ("regions", "11", "unemployment.ratePct"),
)


def pandas_memory_cap() -> int:
    """Three quarters of the machine's memory: the baseline may use what an analyst's
    script would get, and fails cleanly rather than starving the rest of the bench."""
    return int(0.75 * _mem_total_mb() * 2**20)


# ---------------------------------------------------------------------------- read floor


def read_floor(mirror: Path) -> dict:
    """DuckDB (text, JSON) or calamine (workbooks) reading every input file once."""
    import duckdb
    from python_calamine import CalamineWorkbook

    files = sorted(
        p
        for p in mirror.rglob("*")
        if p.is_file() and not p.name.endswith(".md") and not p.name.startswith(".")
    )
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in files:
        kind = _kind(path)
        groups.setdefault((path.parent.name, kind), []).append(path)
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = false")
    per_source: dict[str, float] = {}
    total_bytes = 0
    started = time.monotonic()
    for (slug, kind), paths in sorted(groups.items()):
        t0 = time.monotonic()
        total_bytes += sum(p.stat().st_size for p in paths)
        if kind == "workbook":
            for path in paths:
                book = CalamineWorkbook.from_path(str(path))
                for name in book.sheet_names:
                    book.get_sheet_by_name(name).to_python()
        elif kind == "csv":
            for path in paths:
                con.execute(
                    "select count(*), sum(hash(columns(*))) from read_csv(?, all_varchar = true,"
                    " strict_mode = false, ignore_errors = true)",
                    [str(path)],
                ).fetchall()
        elif kind == "json":
            # Every file is one JSON document; hashing the whole record converts every
            # nested value, so the floor includes parsing all of it.
            con.execute(
                "select count(*), sum(hash(j)) from read_json(?, format = 'auto', "
                "records = false, maximum_object_size = 1073741824) as t(j)",
                [[str(p) for p in paths]],
            ).fetchall()
        per_source[slug] = per_source.get(slug, 0.0) + time.monotonic() - t0
    con.close()
    return {
        "seconds": time.monotonic() - started,
        "files": len(files),
        "bytes": total_bytes,
        "per_source_s": {k: round(v, 2) for k, v in sorted(per_source.items())},
    }


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".xlsx", ".xls")):
        return "workbook"
    if name.endswith((".json", ".json.gz")):
        return "json"
    return "csv"


# ---------------------------------------------------------------------------- tremplin


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _env(mirror: Path, warehouse: Path, dagster_home: Path) -> dict:
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ}
    env.update(
        TREMPLIN_MIRROR=str(mirror),
        TREMPLIN_WAREHOUSE_DIR=str(warehouse),
        DAGSTER_HOME=str(dagster_home),
        TREMPLIN_AUTOMATION="",
        DAGSTER_DISABLE_TELEMETRY="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("TREMPLIN_DUCKDB_PATH", None)
    env.pop("TREMPLIN_MODE", None)
    return env


def step_timings(dagster_home: Path, since: float = 0.0) -> list[dict]:
    """(step, start, end) of every step of the runs started after `since` (epoch s).

    `tremplin run` makes one Dagster run per period of a periodic source before the
    whole-graph run, so one invocation is several runs.
    """
    import dagster as dg

    # deploy/dagster.yaml names its storage directory through DAGSTER_HOME.
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    kinds = {
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    steps: list[dict] = []
    try:
        for run in instance.get_runs():
            records = instance.all_logs(run.run_id, of_type=kinds)
            if not records or records[0].timestamp < since:
                continue
            by_key: dict[str, dict] = {}
            for record in records:
                key = record.step_key
                item = by_key.setdefault(key, {"step": key, "start": record.timestamp})
                if record.dagster_event.event_type != dg.DagsterEventType.STEP_START:
                    item["end"] = record.timestamp
            steps += [s for s in by_key.values() if "end" in s]
    finally:
        instance.dispose()
    return sorted(steps, key=lambda s: (s["start"], s["step"]))


def stage_of(step: str) -> str:
    if step.endswith("__landing"):
        return "fetch"
    if step.endswith("__raw"):
        return "parse+validate"
    if step.startswith("exports"):
        return "export"
    if "dbt" in step:
        return "dbt build"
    return "other"


@contextmanager
def installed_for(env: dict) -> Iterator[None]:
    """The bench's warehouse as `make setup` leaves the default one: with its dbt parse.

    dbt reuses a parse (partial parsing) only under the same profile, and the profile
    names the warehouse path: without this, the timed build would parse the whole
    project, which a user's build after install does not. The parse for the user's own
    warehouse is put back afterwards.
    """
    subprocess.run([_bin("tremplin"), "manifest"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        subprocess.run(
            [_bin("tremplin"), "manifest"],
            env=dict(os.environ),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def run_tremplin(mirror: Path, work: Path, label: str, *options: str) -> dict:
    env = _env(mirror, work / "warehouse", work / "dagster_home")
    settled = settle()
    started = time.time()
    measured = measure([_bin("tremplin"), "run", *options], env, work / f"{label}.log")
    failure = None
    if measured.returncode != 0:
        # Keep what was measured (the stages before the failure) and say why it stopped.
        failure = [line for line in measured.output.splitlines() if line.startswith("- ")][-3:]
        print(f"bench: `tremplin run` ({label}) FAILED: {failure}", flush=True)
    steps = step_timings(work / "dagster_home", since=started)
    stages: dict[str, dict] = {}
    for step in steps:
        step["seconds"] = round(step["end"] - step["start"], 2)
        step["peak_rss_mb"] = round(
            measured.peak_between(step["start"], step["end"] + SAMPLE_EVERY_S) / 2**20
        )
        stage = stages.setdefault(
            stage_of(step["step"]), {"seconds": 0.0, "peak_rss_mb": 0, "steps": 0}
        )
        stage["seconds"] = round(stage["seconds"] + step["seconds"], 2)
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], step["peak_rss_mb"])
        stage["steps"] += 1
    covered = sum(s["seconds"] for s in steps)
    return {
        "ok": failure is None,
        "error": failure,
        "settle_before_s": settled,
        "seconds": round(measured.seconds, 2),
        "peak_rss_mb": round(measured.peak_rss / 2**20),
        "orchestration_s": round(measured.seconds - covered, 2),
        "stages": stages,
        "steps": per_step(steps),
    }


def per_step(steps: list[dict]) -> list[dict]:
    """Steps of the same name (one per period run) summed, slowest first."""
    merged: dict[str, dict] = {}
    for step in steps:
        item = merged.setdefault(
            step["step"], {"step": step["step"], "seconds": 0.0, "peak_rss_mb": 0, "runs": 0}
        )
        item["seconds"] = round(item["seconds"] + step["seconds"], 2)
        item["peak_rss_mb"] = max(item["peak_rss_mb"], step["peak_rss_mb"])
        item["runs"] += 1
    return sorted(merged.values(), key=lambda s: -s["seconds"])


def run_pandas(mirror: Path, work: Path) -> dict:
    return run_baseline("pandas", mirror, work)


def run_baseline(kind: str, mirror: Path, work: Path) -> dict:
    """`pipelines.bench.<kind>_baseline` (pandas or polars) under the memory cap."""
    command = [
        sys.executable,
        "-m",
        f"pipelines.bench.{kind}_baseline",
        "--mirror",
        str(mirror),
        "--out",
        str(work / kind),
    ]
    cap = pandas_memory_cap()
    settle()
    measured = measure(command, {**os.environ}, work / f"{kind}.log", memory_cap=cap)
    result = {
        "seconds": round(measured.seconds, 2),
        "peak_rss_mb": round(measured.peak_rss / 2**20),
        "memory_cap_mb": round(cap / 2**20),
        "ok": measured.returncode == 0,
    }
    summary = work / kind / "summary.json"
    if summary.exists():
        result.update(json.loads(summary.read_text()))
    if not result["ok"]:
        result["error"] = pandas_failure(measured, result.get("failed"), cap)
        print(f"bench: {kind} baseline FAILED: {result['error']}", flush=True)
    return result


def pandas_failure(measured: Measured, failed: dict | None, cap: int) -> str:
    """One line on why the pandas baseline stopped."""
    if failed:
        return (
            f"{failed['error']} in {failed['indicator']} after {failed['seconds']} s "
            f"(address-space cap {cap / 2**30:.1f} GB, peak RSS {measured.peak_rss / 2**30:.1f} GB)"
        )
    if measured.returncode < 0:
        return f"killed by signal {-measured.returncode} (out of memory?)"
    lines = [line for line in measured.output.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {measured.returncode}"


# ------------------------------------------------------------------------------ report


def ratios(results: dict) -> dict:
    floor = results["read_floor"]["seconds"]
    e2e = results["tremplin"]["seconds"]
    # A baseline that did not finish has no time to compare (its error says why).
    pandas = (
        results.get("pandas", {}).get("seconds") if results.get("pandas", {}).get("ok") else None
    )
    polars = (
        results.get("polars", {}).get("seconds") if results.get("polars", {}).get("ok") else None
    )
    figures = {
        "tremplin_vs_read_floor": round(e2e / floor, 2) if floor else None,
        "tremplin_minus_3x_floor_s": round(e2e - 3 * floor, 2),
        "pandas_vs_tremplin": round(pandas / e2e, 2) if pandas and e2e else None,
    }
    if "polars" in results:
        figures["polars_vs_tremplin"] = round(polars / e2e, 2) if polars and e2e else None
    return figures


def target_checks(results: dict) -> list[tuple[str, bool, str]]:
    """(target, met, what was measured) for every target of the results' scale.

    A failed run meets no target: its time is that of a run that stopped early.
    """
    floor = results["read_floor"]["seconds"]
    run_ = results["tremplin"]
    noop = results["tremplin_noop"]
    e2e, ok = run_["seconds"], run_.get("ok", True)
    noop_ok = noop.get("ok", True)
    pandas = results.get("pandas", {})
    measured = {
        "e2e_embedded": (ok and e2e <= 40, f"{e2e:.1f} s"),
        "noop_embedded": (noop_ok and noop["seconds"] <= 5, f"{noop['seconds']:.1f} s"),
        "e2e_vs_floor_plus_30": (
            ok and e2e <= 3 * floor + 30,
            f"{e2e:.1f} s against {3 * floor + 30:.1f} s",
        ),
        "e2e_vs_floor": (ok and e2e <= 3 * floor, f"{e2e:.1f} s against {3 * floor:.1f} s"),
        "peak_rss": (run_["peak_rss_mb"] <= 3072, f"{run_['peak_rss_mb']} MB"),
        "noop_national": (noop_ok and noop["seconds"] <= 10, f"{noop['seconds']:.1f} s"),
        "ahead_of_pandas": _ahead_of_pandas(ok, e2e, pandas),
    }
    if "explain" in results:
        explained = results["explain"]
        wall = explained.get("max_wall_s")
        measured["explain"] = (
            explained["ok"] and wall is not None and wall <= 2,
            f"max {wall} s" if wall is not None else "no value answered",
        )
    names = (*SCALE_TARGETS.get(results["scale"], ()), *EVERY_SCALE_TARGETS)
    return [(TARGETS[n], *measured[n]) for n in names if n in measured]


def _ahead_of_pandas(ok: bool, e2e: float, pandas: dict) -> tuple[bool, str]:
    """Met when tremplin finishes first; a pandas script that runs out of memory under the
    bench's cap never finishes, so a tremplin run that does is ahead of it (and says so)."""
    if pandas.get("ok"):
        return ok and e2e < pandas["seconds"], f"{e2e:.1f} s against {pandas['seconds']:.1f} s"
    error = str(pandas.get("error") or "")
    if error.startswith("MemoryError"):
        return ok, f"{e2e:.1f} s; pandas did not finish: {error}"
    return False, f"{e2e:.1f} s against no pandas time"


def targets(results: dict) -> dict:
    return {name: met for name, met, _ in target_checks(results)}


def format_table(results: dict) -> str:
    """The human summary: one line per measured thing, then ratios and targets."""
    lines = [
        f"tremplin benchmark — scale {results['scale']}, commit {results['git_sha']}, "
        f"{results['timestamp']}",
        f"inputs: {results['inputs']['files']} files, {results['inputs']['bytes'] / 2**20:.0f} MiB",
        "",
        f"{'measure':<34}{'wall s':>10}{'peak RSS MB':>14}",
    ]

    def row(name: str, seconds, rss=None) -> None:
        rss_text = f"{rss:>14}" if rss is not None else f"{'':>14}"
        lines.append(f"{name:<34}{seconds:>10.1f}{rss_text}")

    row("read floor (DuckDB + calamine)", results["read_floor"]["seconds"])
    t = results["tremplin"]
    failed = "" if t.get("ok", True) else " FAILED"
    row(f"tremplin run (end to end){failed}", t["seconds"], t["peak_rss_mb"])
    for name, stage in sorted(t["stages"].items(), key=lambda kv: -kv[1]["seconds"]):
        row(f"  {name} ({stage['steps']} steps)", stage["seconds"], stage["peak_rss_mb"])
    row("  orchestration (startup, other)", t["orchestration_s"])
    noop = results["tremplin_noop"]
    failed = "" if noop.get("ok", True) else " FAILED"
    row(f"tremplin run again (no-op){failed}", noop["seconds"], noop["peak_rss_mb"])
    forced = results.get("tremplin_forced_noop")
    if forced:  # results before the nothing-new check have no such line
        failed = "" if forced.get("ok", True) else " FAILED"
        row(f"  the same through Dagster (--force){failed}", forced["seconds"])
    if "explain" in results:
        e = results["explain"]
        if e.get("max_wall_s") is not None:
            row(f"tremplin explain (max of {len(e['calls'])})", e["max_wall_s"])
            row("  of which the explain itself", e["max_explain_s"])
        for call in e["calls"]:
            if "error" in call:
                lines.append(f"  explain {call['table']} {call['key']}: {call['error']}")
    if "pandas" in results:
        p = results["pandas"]
        row(
            "pandas baseline" + ("" if p.get("ok") else " (FAILED)"), p["seconds"], p["peak_rss_mb"]
        )
        if not p.get("ok"):
            lines.append(f"  stopped: {p.get('error', 'unknown')}")
    if "polars" in results:
        p = results["polars"]
        row(
            "polars baseline" + ("" if p.get("ok") else " (FAILED)"), p["seconds"], p["peak_rss_mb"]
        )
        if not p.get("ok"):
            lines.append(f"  stopped: {p.get('error', 'unknown')}")
    if "engines" in results:
        from pipelines.bench.spark_build import format_rows

        lines += format_rows(results["engines"])
    lines += indicator_step.format_rows(results)
    lines.append("")
    for name, value in results["ratios"].items():
        lines.append(f"{name:<34}{'n/a' if value is None else value:>10}")
    lines.append("")
    measured = {name: text for name, _, text in target_checks(results)}
    for name, ok in results["targets"].items():
        shown = f"  ({measured[name]})" if name in measured else ""
        lines.append(f"[{'x' if ok else ' '}] {name}{shown}")
    return "\n".join(lines)


def write_results(results: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """`<scale>-<sha>-<timestamp>.json`, one file per benchmark, never overwritten."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["timestamp"].replace(":", "").replace("-", "")
    path = results_dir / f"{results['scale']}-{results['git_sha']}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def git_sha() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}{'-dirty' if dirty else ''}"


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_mb": _mem_total_mb(), "python": sys.version.split()[0]}


def time_explain(env: dict, explained=EXPLAINED) -> dict:
    """Wall time of `tremplin explain ... --json` (a fresh process each) and the time the
    command itself reports, per explained value, on the warehouse `env` points to."""
    calls = []
    for table, key, field_name in explained:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [_bin("tremplin"), "explain", table, key, field_name, "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time of the process: what the call costs whatever else the machine runs.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        call = {"table": table, "key": key, "field": field_name, "wall_s": round(wall, 3)}
        call["cpu_s"] = round(cpu, 3)
        if done.returncode == 0:
            report = json.loads(done.stdout)
            call["explain_s"] = report["seconds"]
            call["cells"] = len(report["cells"])
        else:
            call["error"] = done.stderr.strip()[-300:]
        calls.append(call)
    ok = [c for c in calls if "error" not in c]
    return {
        "calls": calls,
        "ok": len(ok) == len(calls),
        "max_wall_s": max((c["wall_s"] for c in ok), default=None),
        "max_explain_s": max((c["explain_s"] for c in ok), default=None),
        "max_cpu_s": max((c["cpu_s"] for c in ok), default=None),
    }


def benchmark(
    scale: str,
    *,
    out_root: Path = DEFAULT_OUT,
    regenerate: bool = False,
    pandas: bool = True,
    polars: bool = True,
    engine: str = "duckdb",
    models_only: bool = False,
    keep: Path | None = None,
) -> dict:
    """Every measure on the `scale` mirror; the run's warehouse and Dagster home go to a
    temporary folder, or to `keep`, left in place (e.g. for `spark_build --raw-dir`)."""
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"bench: --keep {keep} is not empty; give an empty or new folder")
    mirror = out_root / scale
    if regenerate or not (mirror / COMPLETE_MARKER).exists():
        generate_mirror(mirror, scale)
    results: dict = {
        "scale": scale,
        "git_sha": git_sha(),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "mirror": str(mirror),
    }
    print(f"bench {scale}: read floor ...", flush=True)
    results["read_floor"] = read_floor(mirror)
    results["inputs"] = {
        "files": results["read_floor"]["files"],
        "bytes": results["read_floor"]["bytes"],
    }
    with tempfile.TemporaryDirectory(prefix=f"tremplin-bench-{scale}-") as tmp:
        work = Path(tmp) if keep is None else keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
        with installed_for(_env(mirror, work / "warehouse", work / "dagster_home")):
            print(f"bench {scale}: tremplin run ...", flush=True)
            results["tremplin"] = run_tremplin(mirror, work, "run")
            print(f"bench {scale}: tremplin run again (no-op) ...", flush=True)
            results["tremplin_noop"] = run_tremplin(mirror, work, "noop")
            print(f"bench {scale}: tremplin run --force (no-op through Dagster) ...", flush=True)
            results["tremplin_forced_noop"] = run_tremplin(mirror, work, "forced", "--force")
        results["tremplin"]["raw_rows"] = _raw_rows(work / "warehouse" / "raw")
        print(f"bench {scale}: tremplin explain ...", flush=True)
        results["explain"] = time_explain(_env(mirror, work / "warehouse", work / "dagster_home"))
        print(f"bench {scale}: indicator step alone (dbt) ...", flush=True)
        results["indicator_step"] = indicator_step.time_dbt_indicators(
            work / "warehouse", work / "indicator_step"
        )
        if engine == "spark":  # dbt build on DuckDB and on Spark, same raw (spark_build.py)
            from pipelines.bench.spark_build import engine_builds

            results["engines"] = engine_builds(
                work / "warehouse" / "raw", work / "engines", models_only=models_only
            )
        if pandas:
            print(f"bench {scale}: pandas baseline ...", flush=True)
            results["pandas"] = run_pandas(mirror, work)
        if polars:
            print(f"bench {scale}: polars baseline ...", flush=True)
            results["polars"] = run_baseline("polars", mirror, work)
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    results["targets"].update(indicator_step.targets(results))
    return results


def _raw_rows(raw_dir: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    counts = {}
    for path in sorted(raw_dir.rglob("*.parquet")):
        if "_rejected" in path.parts or "_staging" in path.parts:
            continue
        key = str(path.relative_to(raw_dir))
        counts[key] = con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone()[0]
    con.close()
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.bench", description=__doc__)
    parser.add_argument("--scale", choices=SCALES, default="medium")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the inputs first")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--no-polars", action="store_true", help="skip the polars baseline")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="spark: also time dbt build on DuckDB and on Spark on the run's raw Parquet",
    )
    parser.add_argument(
        "--models-only",
        action="store_true",
        help="with --engine spark: build models and seeds on both engines, not the data "
        "tests (a national Spark build with its tests takes hours on two cores)",
    )
    parser.add_argument(
        "--explain-only",
        type=Path,
        metavar="WAREHOUSE_DIR",
        help="only time `tremplin explain` on an existing warehouse directory",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the run's warehouse and Dagster home in DIR (new or empty)",
    )
    parser.add_argument(
        "--table",
        type=Path,
        metavar="RESULTS_JSON",
        help="print the table of a results file, its targets checked as they stand today",
    )
    args = parser.parse_args(argv)
    if args.table:
        results = json.loads(args.table.read_text(encoding="utf-8"))
        results["ratios"] = ratios(results)
        results["targets"] = {**targets(results), **indicator_step.targets(results)}
        print(format_table(results))
        return 0
    if args.explain_only:
        env = {**os.environ, "TREMPLIN_WAREHOUSE_DIR": str(args.explain_only)}
        env.pop("TREMPLIN_DUCKDB_PATH", None)
        timing = time_explain(env)
        for call in timing["calls"]:
            shown = call.get("error") or (
                f"wall {call['wall_s']:.2f} s, cpu {call['cpu_s']:.2f} s, "
                f"explain itself {call['explain_s']:.2f} s"
            )
            print(f"{call['table']:<18} {call['key']:<9} {call['field']:<40} {shown}")
        print(
            f"max wall {timing['max_wall_s']} s, max cpu {timing['max_cpu_s']} s, "
            f"max explain {timing['max_explain_s']} s (load average {os.getloadavg()[0]:.1f})"
        )
        return 0 if timing["ok"] else 1
    results = benchmark(
        args.scale,
        regenerate=args.regenerate,
        pandas=not args.no_pandas,
        polars=not args.no_polars,
        engine=args.engine,
        models_only=args.models_only,
        keep=args.keep,
    )
    path = write_results(results, args.results_dir)
    print()
    print(format_table(results))
    print(f"\nfigures written to {path}")
    return 0
