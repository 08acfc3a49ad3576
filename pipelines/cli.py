"""`tremplin`: run the pipeline headless, query the warehouse, prepare dbt, open the UI.

`tremplin run` executes the same asset graph as the Dagster UI, in process, and exits
non-zero when any step or blocking check failed, after printing what failed and why.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.settings import DBT_PROJECT_DIR, PROJECT_ROOT, get_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOBS = {
    "run": "refresh_all",
    "ingest": "ingest_sources",
    "build": "build_warehouse",
    "export": "publish_exports",
}


def _instance():
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _failures(result) -> list[str]:
    """Readable lines for failed steps and failed checks of a finished run."""
    lines = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            cause = error.cause.message.strip() if error and error.cause else ""
            lines.append(
                f"step {event.step_key} failed: {message}" + (f"\n  {cause}" if cause else "")
            )
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            # Warning-level checks (e.g. dbt tests with severity warn) are reported by
            # Dagster but do not fail a run.
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                key = "/".join(evaluation.asset_key.path)
                description = evaluation.description or ""
                lines.append(f"check {evaluation.check_name} on {key} failed: {description}")
    return lines


def _summary(settings) -> None:
    from assets.exports import read_latest_manifest

    print(f"warehouse: {settings.duckdb_path}")
    manifest = read_latest_manifest(settings.exports_dir)
    if manifest:
        print(f"export:    {settings.exports_dir / 'latest'} -> {manifest['vintage']}")
        for name, table in sorted(manifest["tables"].items()):
            print(f"  {name:<24} {table['rows']:>8} rows")
    else:
        print("export:    none published yet")


def run_job(command: str, live: bool) -> int:
    if live:
        os.environ["TREMPLIN_MODE"] = "live"
    settings = get_settings()
    from pipelines.definitions import build_definitions

    started = time.monotonic()
    definitions = build_definitions()
    job = definitions.resolve_job_def(JOBS[command])
    print(f"tremplin {command}: job {job.name}, {settings.mode} mode, mirror {settings.mirror_dir}")
    result = job.execute_in_process(
        instance=_instance(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    elapsed = time.monotonic() - started
    failures = _failures(result)
    if not result.success or failures:
        print(f"\ntremplin {command} FAILED after {elapsed:.0f} s:", file=sys.stderr)
        for line in failures or ["run failed (see the log above)"]:
            print(f"- {line}", file=sys.stderr)
        print("The last good warehouse and export are unchanged.", file=sys.stderr)
        return 1
    print(f"\ntremplin {command} succeeded in {elapsed:.0f} s")
    _summary(settings)
    return 0


def run_sql(query: str, max_rows: int) -> int:
    import duckdb

    from pipelines.resources import WarehouseUnavailableError, connect_readonly

    READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

    try:
        con = connect_readonly()
    except WarehouseUnavailableError as exc:
        print(f"tremplin sql: {exc}", file=sys.stderr)
        return 2
    try:
        statements = con.extract_statements(query)
        refused = [s for s in statements if s.type not in READ_STATEMENTS]
        if refused:
            kinds = sorted({s.type.name for s in refused})
            print(
                f"tremplin sql: refused {kinds} statement: tremplin sql only reads "
                "(SELECT, EXPLAIN); the warehouse is written by dbt only",
                file=sys.stderr,
            )
            return 2
        for statement in statements:
            relation = con.sql(statement.query)
            if relation is not None:
                relation.show(max_rows=max_rows, max_width=200)
        return 0
    except duckdb.Error as exc:
        hint = ""
        if "read-only" in str(exc).lower():
            hint = " (tremplin sql is read-only: the warehouse is written by dbt only)"
        print(f"tremplin sql: {exc}{hint}", file=sys.stderr)
        return 1
    finally:
        con.close()


def run_check() -> int:
    from assets.exports import ExportError, verify_export

    latest = get_settings().exports_dir / "latest"
    if not latest.exists():
        print(f"tremplin check: no export at {latest}", file=sys.stderr)
        return 1
    try:
        manifest = verify_export(latest)
    except ExportError as exc:
        print(f"tremplin check: {exc}", file=sys.stderr)
        return 1
    print(f"export {manifest['vintage']} at {latest.resolve()} is intact:")
    print(json.dumps({k: v["rows"] for k, v in manifest["tables"].items()}, indent=2))
    return 0


def run_docs(serve: bool) -> int:
    from pipelines.dbt import dbt_env, dbt_executable

    env = {**os.environ, **dbt_env(get_settings())}
    base = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    subprocess.run([dbt_executable(), "docs", "generate", *base], env=env, check=True)
    print(f"dbt docs written to {DBT_PROJECT_DIR / 'target' / 'index.html'}")
    if serve:
        command = [
            dbt_executable(),
            "docs",
            "serve",
            *base,
            "--host",
            "127.0.0.1",
            "--port",
            "8080",
        ]
        subprocess.run(command, env=env, check=True)
    return 0


def run_dev(port: int) -> int:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster"))
    command = [str(bin_dir / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    return subprocess.run(command, env=env, cwd=PROJECT_ROOT).returncode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tremplin", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "fetch, validate, build the warehouse and export (the whole graph)"),
        ("ingest", "fetch, parse and validate the sources only"),
        ("build", "dbt build on the current raw data"),
        ("export", "publish the diagnostic tables from the current warehouse"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--live", action="store_true", help="download from the publishers")
    sql = sub.add_parser("sql", help="run a read-only SQL query on the warehouse")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=40)
    sub.add_parser("check", help="verify the files of the latest export against its manifest")
    sub.add_parser("manifest", help="prepare the dbt manifest (dbt parse)")
    docs = sub.add_parser("docs", help="build the dbt docs site")
    docs.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1:8080")
    dev = sub.add_parser("dev", help="open the Dagster UI on 127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Dagster's console logger reports the steps; Python logging only shows warnings.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    # Dagster's console logger already prints its events; don't print them twice.
    logging.getLogger("dagster.builtin").propagate = False
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if args.command in JOBS:
        return run_job(args.command, args.live)
    if args.command == "sql":
        return run_sql(args.query, args.max_rows)
    if args.command == "check":
        return run_check()
    if args.command == "manifest":
        from pipelines.dbt import prepare_manifest

        print(f"dbt manifest ready: {prepare_manifest()}")
        return 0
    if args.command == "docs":
        return run_docs(args.serve)
    if args.command == "dev":
        return run_dev(args.port)
    return 2


if __name__ == "__main__":
    sys.exit(main())
