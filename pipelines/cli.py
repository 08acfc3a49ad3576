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

from assets.foundation.settings import DBT_PROJECT_DIR, ENGINES, PROJECT_ROOT, get_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Exit code of `tremplin run|export` when the publication gate held the new export: the data
# is fine as far as the pipeline can tell, but a human must look (`tremplin diff`) and accept.
EXIT_HELD = 3
JOBS = {
    "run": "refresh_all",
    "ingest": "ingest_sources",
    "build": "build_warehouse",
    "export": "publish_exports",
}


def _instance():
    import dagster as dg

    from assets.foundation.files import exclusive_lock

    if not os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.ephemeral()
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    # Dagster creates an instance's SQLite databases on first use and fails when two
    # processes do it at once (two runs started together on a fresh clone): one at a time.
    with exclusive_lock(home / ".tremplin-instance.lock"):
        instance = dg.DagsterInstance.get()
        instance.get_run_records(limit=1)
        instance.event_log_storage.get_latest_materialization_events([])
        instance.schedule_storage  # noqa: B018 - created on first access
    return instance


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


def _summary(
    settings, rebuilt: bool = True, log_path: Path | None = None, brief: bool = False
) -> None:
    """Where the warehouse and the export are, with row counts.

    On the console, one line per layer (staging, intermediate, marts, diagnostics,
    seeds); every relation is listed in the run's log file, or here with `-v`.
    """
    from assets.export.vintages import read_latest_manifest

    print(f"warehouse: {settings.duckdb_path}" + ("" if rebuilt else " (unchanged)"))
    counts = _table_counts(settings, views=rebuilt)
    listing = [f"  {name:<56} {rows:>10}" for name, rows in counts]
    if log_path is None and not brief:
        print("\n".join(listing))
    else:
        for line in _layer_lines(counts, views=rebuilt):
            print(line)
    if log_path is not None:
        with log_path.open("a", encoding="utf-8") as log:
            log.write("\nwarehouse relations (rows):\n" + "\n".join(listing) + "\n")
    manifest = read_latest_manifest(settings.exports_dir)
    if manifest:
        print(f"export:    {settings.exports_dir / 'latest'} -> {manifest['vintage']}")
        for name, table in sorted(manifest["tables"].items()):
            print(f"  {name:<24} {table['rows']:>8} rows")
    else:
        print("export:    none published yet")


LAYERS = {"stg": "staging", "int": "intermediate", "dim": "marts", "fct": "marts"}
LAYERS["diag"] = "diagnostics"


def _layer_lines(counts: list[tuple[str, object]], views: bool) -> list[str]:
    layers: dict[str, list] = {}
    for name, rows in counts:
        layers.setdefault(LAYERS.get(name.split("_")[0], "seeds"), []).append(rows)
    lines = []
    for layer in ("staging", "intermediate", "marts", "diagnostics", "seeds"):
        if layer not in layers:
            continue
        numbers = [r for r in layers[layer] if isinstance(r, int)]
        unreadable = len(layers[layer]) - len(numbers)
        note = f" ({unreadable} unreadable)" if unreadable else ""
        lines.append(
            f"  {layer:<13} {len(layers[layer]):>3} relations {sum(numbers):>12,} rows{note}"
        )
    if not views:
        lines.append("  (views not re-counted: the warehouse was not rebuilt)")
    return lines


def _source_selection(definitions, command: str, slugs: list[str]):
    """Asset keys of the chosen sources (and, for `run`, everything downstream)."""
    import dagster as dg

    from pipelines.sources import source_modules

    known = {m.SPEC.slug for m in source_modules()}
    unknown = sorted(set(slugs) - known)
    if unknown:
        raise SystemExit(f"tremplin {command}: unknown source(s) {unknown}; known: {sorted(known)}")
    selection = dg.AssetSelection.groups(*slugs)
    if command == "run":
        selection = selection.downstream()
    # Periodic sources run per period before the main job (see `_ingest_periods`).
    periodic = [m.SPEC.slug for m in source_modules() if m.SPEC.partitioning]
    selection = selection - dg.AssetSelection.groups(*periodic)
    return selection.resolve(definitions.resolve_asset_graph())


def _ingest_periods(
    definitions, settings, instance, command: str, slugs, run_config, console
) -> int:
    """Ingest the due periods of every periodic source, one Dagster run per period.

    The whole-graph jobs run without a partition key, so a daily, quarterly or yearly
    source is brought up to date here first (`pipelines.jobs.periods_to_ingest` says which
    periods); the build then reads every published period. Returns 1 after a failed
    period, with the failure recorded: the warehouse is not rebuilt on a partial history.
    One console line per source sums up its periods.
    """
    from pipelines.console import RunProgress, periods_line
    from pipelines.jobs import SOURCE_TAG, ingest_job_name, periods_to_ingest
    from pipelines.launch import execute_job
    from pipelines.sources import source_modules

    failed = False
    for module in source_modules():
        slug = module.SPEC.slug
        if not module.SPEC.partitioning or (slugs and slug not in slugs):
            continue
        keys = periods_to_ingest(module, settings)
        if not keys:
            console.line(f"  ingest   {slug:<40} no period due")
            continue
        job = definitions.resolve_job_def(ingest_job_name(slug))
        started = time.monotonic()
        progresses = []
        for number, key in enumerate(keys, 1):
            label = f"{key} ({number}/{len(keys)})" if len(keys) > 1 else key
            with RunProgress(console, label=label, source_lines=False) as progress:
                result = execute_job(
                    job,
                    instance,
                    partition_key=key,
                    run_config=run_config,
                    tags={SOURCE_TAG: slug, "trigger": f"tremplin {command}"},
                    on_event=progress,
                )
            progresses.append(progress)
            _show_run_warnings(instance, result.run_id, console)
            lines = _failures(result)
            if result.success and not lines:
                continue
            failed = True
            _record_failure(settings, result, job.name, key)
            for line in lines or ["run failed (see the log)"]:
                console.warn(f"- {slug} {key}: {line}")
        console.line(periods_line(slug, keys, progresses, time.monotonic() - started))
    if failed:
        console.warn(
            f"\ntremplin {command} FAILED: a period could not be ingested (above); the "
            "warehouse was not rebuilt. The last good warehouse and export are unchanged."
        )
        return 1
    return 0


def _show_run_warnings(instance, run_id: str, console) -> None:
    """Warnings and errors the run's steps logged (not Dagster's own events), once each."""
    seen = set()
    for entry in instance.all_logs(run_id):
        if entry.is_dagster_event or entry.level < logging.WARNING:
            continue
        message = (entry.user_message or "").strip().splitlines()
        if message and message[0] not in seen:
            seen.add(message[0])
            console.warn(f"  {logging.getLevelName(entry.level).lower()}: {message[0]}")


def _table_counts(settings, views: bool = True) -> list[tuple[str, object]]:
    """Rows per raw, staging and mart relation: what this run left for analysts.

    Counting a staging view re-reads its raw files (tens of millions of rows nationally),
    so when the warehouse was not rebuilt only the tables, which DuckDB counts for free,
    are listed: a no-op run stays a few seconds.
    """
    import duckdb

    from pipelines.resources import WarehouseUnavailableError, connect_readonly

    try:
        con = connect_readonly(settings)
    except WarehouseUnavailableError:
        return []
    counts: list[tuple[str, object]] = []
    try:
        names = [
            row[0]
            for row in con.sql(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and (? or table_type = 'BASE TABLE') "
                "order by table_name",
                params=[views],
            ).fetchall()
        ]
        for name in names:
            try:
                rows = con.sql(f'select count(*) from "{name}"').fetchall()[0][0]
            except duckdb.Error:  # a staging view whose raw file is gone
                rows = "unreadable"
            counts.append((name, rows))
    finally:
        con.close()
    return counts


def run_job(
    command: str,
    live: bool,
    sources: list[str] | None = None,
    full_refresh: bool = False,
    verbose: bool = False,
    force: bool = False,
) -> int:
    """Run a job the way the UI does (`pipelines.launch`), showing `pipelines.console`'s
    lines; the full stream goes to a log file, or to the console with `verbose`.

    A whole-graph mirror-mode `run` first asks `pipelines.run_state` whether anything
    moved since the last one; when nothing did, no Dagster run starts."""
    if live:
        os.environ["TREMPLIN_MODE"] = "live"
    settings = get_settings()
    started = time.monotonic()
    scope = f" (sources: {', '.join(sources)})" if sources else ""
    print(
        f"tremplin {command}: job {JOBS[command]}{scope}, {settings.mode} mode, "
        f"mirror {settings.mirror_dir}"
    )
    recordable = command == "run" and not sources and not full_refresh and settings.mode == "mirror"
    before = None
    if recordable:
        from pipelines import run_state

        before = run_state.current_state(settings)
        unchanged = None if force else run_state.unchanged_since_last_run(settings, before)
        if unchanged is not None:
            return _nothing_new(settings, unchanged, started, verbose)
        run_state.forget(settings)
        fetch_log_from = run_state.fetch_log_size(settings)

    from pipelines.console import RunProgress, new_log_path, quiet_run
    from pipelines.launch import execute_job

    log_path = None if verbose else new_log_path(settings.run_log_dir, command)
    if log_path is not None:
        print(f"log:       {log_path} (-v shows it here)")
    with quiet_run(log_path) as console:
        from pipelines.definitions import build_definitions

        definitions = build_definitions()
        job = definitions.resolve_job_def(JOBS[command])
        selection = _source_selection(definitions, command, sources) if sources else None
        instance = _instance()
        log_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
        run_config = log_config
        if full_refresh:
            from pipelines.jobs import build_run_config

            run_config = build_run_config(log_config, full_refresh=True)
        if command in ("run", "ingest"):
            if _ingest_periods(
                definitions, settings, instance, command, sources, log_config, console
            ):
                return 1
            if selection is not None and not selection:
                console.line(
                    f"\ntremplin {command} succeeded in {time.monotonic() - started:.0f} s"
                )
                return 0
        with RunProgress(console) as progress:
            result = execute_job(
                job,
                instance,
                run_config=run_config,
                asset_selection=list(selection) if selection else None,
                on_event=progress,
            )
        _show_run_warnings(instance, result.run_id, console)
    elapsed = time.monotonic() - started
    failures = _failures(result)
    if not result.success or failures:
        _record_failure(settings, result, job.name)
        print(f"\ntremplin {command} FAILED after {elapsed:.0f} s:", file=sys.stderr)
        where = f"the log, {log_path}" if log_path else "the log above"
        for line in failures or [f"run failed (see {where})"]:
            print(f"- {line}", file=sys.stderr)
        print("The last good warehouse and export are unchanged.", file=sys.stderr)
        return 1
    held = _held_exports(result)
    if held:
        print(f"\ntremplin {command} finished in {elapsed:.0f} s; the new export is HELD:")
        _summary(settings, log_path=log_path)
        for line, vintage in held:
            print(f"- {line}", file=sys.stderr)
            print(
                f"latest was not switched. Review with `tremplin diff latest {vintage}`, "
                f"publish with `tremplin accept {vintage}` (exit code {EXIT_HELD}).",
                file=sys.stderr,
            )
        return EXIT_HELD
    print(f"\ntremplin {command} succeeded in {elapsed:.0f} s")
    prune_history(instance, settings)
    _summary(settings, rebuilt=_warehouse_rebuilt(result), log_path=log_path)
    if log_path is not None:
        print(f"log:       {log_path}")
    if before is not None:
        run_state.record_run(
            settings,
            before,
            run_id=result.run_id,
            warnings=console.warnings,
            fetch_log_from=fetch_log_from,
        )
    return 0


def _nothing_new(settings, unchanged, started: float, verbose: bool) -> int:
    """The answer of a run that found nothing moved since the last one (`run_state`)."""
    from pipelines.run_state import note_mirror_check

    note_mirror_check(settings, unchanged)
    print(
        f"nothing new since run {unchanged.run_id[:8]} ({unchanged.finished_at}): the "
        "mirror, the code, the settings and the warehouse are as it left them, so no "
        "Dagster run was started (`tremplin run --force` starts one)"
    )
    for line in unchanged.warnings:
        print(f"{line} (shown by that run)", file=sys.stderr)
    print(f"\ntremplin run succeeded in {time.monotonic() - started:.1f} s")
    _summary(settings, rebuilt=False, brief=not verbose)
    return 0


def prune_history(instance, settings) -> None:
    """Old runs that changed nothing leave the instance (`pipelines.run_history`). A failure
    to prune is a warning: the run itself succeeded."""
    from pipelines.run_history import prune_unchanged_runs

    if instance.is_ephemeral:
        return
    try:
        pruned = prune_unchanged_runs(instance, settings.keep_unchanged_runs)
    except Exception as exc:  # noqa: BLE001 - the run's outcome does not depend on it
        print(f"warning: Dagster's run history was not pruned: {exc}", file=sys.stderr)
        return
    if pruned.deleted:
        print(
            f"history:   {pruned.deleted} older runs that changed nothing deleted from "
            f"Dagster's instance ({pruned.kept_unchanged} kept: TREMPLIN_KEEP_UNCHANGED_RUNS)"
        )


def _warehouse_rebuilt(result) -> bool:
    """False when the run's dbt step skipped (every model reported `unchanged`)."""
    models = [
        event.event_specific_data.materialization
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
        and len(event.event_specific_data.materialization.asset_key.path) == 1
    ]
    if not models:
        return False
    return not all(getattr(m.metadata.get("unchanged"), "value", False) is True for m in models)


def _held_exports(result) -> list[tuple[str, str]]:
    """(reasons, vintage) of failed publication-gate checks (WARN severity) in a run."""
    from assets.export.gate import GATE_CHECK

    held = []
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if evaluation.check_name == GATE_CHECK and not evaluation.passed:
            vintage = evaluation.metadata.get("vintage")
            held.append(
                (
                    evaluation.description or "export vintage held by the publication gate",
                    getattr(vintage, "value", vintage) or "<vintage>",
                )
            )
    return held


def run_diff(old: str | None, new: str | None, as_json: bool, top: int) -> int:
    """Exit 0 with the report (or when a single vintage leaves nothing to compare yet), 2 when
    a vintage cannot be found or read."""
    from assets.export.diff import default_pair, diff_exports, format_diff, resolve_vintage
    from assets.export.errors import ExportError, NothingToCompare
    from assets.export.vintages import LATEST

    exports_dir = get_settings().exports_dir
    try:
        if old is None:
            old_dir, new_dir = default_pair(exports_dir)
        else:
            old_dir = resolve_vintage(exports_dir, old)
            new_dir = resolve_vintage(exports_dir, new or LATEST)
        report = diff_exports(old_dir, new_dir, top=top)
    except NothingToCompare as exc:
        print(f"tremplin diff: nothing to compare yet: {exc}", file=sys.stderr)
        return 0
    except ExportError as exc:
        print(f"tremplin diff: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else format_diff(report))
    return 0


def run_accept(vintage: str) -> int:
    """Exit 0 once `latest` points at the verified vintage, 1 when it cannot be accepted."""
    from assets.export.errors import ExportError
    from assets.export.gate import accept_vintage

    exports_dir = get_settings().exports_dir
    try:
        previous, manifest = accept_vintage(exports_dir, vintage)
    except ExportError as exc:
        print(f"tremplin accept: {exc}", file=sys.stderr)
        return 1
    if previous is not None and previous == manifest.get("vintage"):
        print(f"{vintage} is already latest: nothing changed; export verified:")
    else:
        print(f"latest -> {vintage} (was {previous or 'none'}); export verified:")
    for name, table in sorted(manifest["tables"].items()):
        print(f"  {name:<24} {table['rows']:>8} rows")
    return 0


def run_report(vintage: str | None, output: str | None, force: bool) -> int:
    """Exit 0 once the report is written (or already up to date), 2 when the vintage cannot
    be found, 1 when it cannot be reported."""
    from assets.export.diff import resolve_vintage
    from assets.export.errors import ExportError
    from assets.export.vintages import LATEST
    from assets.report.build import build_report
    from assets.report.errors import ReportError

    try:
        vintage_dir = resolve_vintage(get_settings().exports_dir, vintage or LATEST)
    except ExportError as exc:
        print(f"tremplin report: {exc}", file=sys.stderr)
        return 2
    try:
        result = build_report(vintage_dir, Path(output) if output else None, force=force)
    except ReportError as exc:
        print(f"tremplin report: {exc}", file=sys.stderr)
        return 1
    state = "unchanged" if result.unchanged else f"{result.bytes:,} bytes in {result.seconds} s"
    print(f"report of {result.vintage}: {result.path} ({state})")
    return 0


def run_exports_doc(parse: bool) -> int:
    from assets.dbt_manifest import default_manifest_path
    from assets.export.docs import write_exports_doc

    if parse:
        import tempfile

        from assets.export.lineage import compute_field_lineage, write_field_lineage
        from pipelines.dbt import compile_models, prepare_manifest
        from pipelines.sources import source_modules

        prepare_manifest()
        # The field lineage reads the compiled SQL: compiled in a scratch directory.
        with tempfile.TemporaryDirectory(prefix="tremplin-lineage-") as work:
            synthetic = [m.SPEC.slug for m in source_modules() if m.SPEC.synthetic]
            lineage = compute_field_lineage(compile_models(Path(work)), synthetic)
        print(f"field lineage written to {write_field_lineage(lineage)}")
    target = write_exports_doc(default_manifest_path(), PROJECT_ROOT / "docs" / "EXPORTS.md")
    print(f"field documentation written to {target}")
    return 0


def _record_failure(settings, result, job_name: str, partition: str | None = None) -> None:
    """Failed CLI runs are recorded like daemon runs, so `tremplin status` sees them."""
    from pipelines.alerts import failure_record, record_and_notify
    from pipelines.sources import source_modules

    record = failure_record(
        run_id=result.run_id,
        job_name=job_name,
        events=result.all_events,
        source_slugs=[m.SPEC.slug for m in source_modules()],
        partition=partition,
    )
    record_and_notify(settings, record)


def run_status(as_json: bool, slugs: list[str]) -> int:
    """Exit 0 when every source is ok, 1 when one is stale or failing (for monitors)."""
    from assets.ingest.status import OK, collect_status, format_status
    from pipelines.sources import source_modules

    settings = get_settings()
    specs = [m.SPEC for m in source_modules()]
    unknown = sorted(set(slugs) - {s.slug for s in specs})
    if unknown:
        print(f"tremplin status: unknown source(s) {unknown}", file=sys.stderr)
        return 2
    rows = collect_status([s for s in specs if not slugs or s.slug in slugs], settings)
    if as_json:
        print(json.dumps([r.as_json() for r in rows], indent=2))
    else:
        print(format_status(rows))
    return 0 if all(r.state == OK for r in rows) else 1


def run_backfill(slug: str, first: str, last: str | None, live: bool, build: bool) -> int:
    if live:
        os.environ["TREMPLIN_MODE"] = "live"
    settings = get_settings()
    from pipelines.definitions import build_definitions
    from pipelines.jobs import backfill, mirror_periods, partition_keys_between
    from pipelines.sources import source_modules

    specs = {m.SPEC.slug: m.SPEC for m in source_modules()}
    if slug not in specs:
        print(
            f"tremplin backfill: unknown source {slug!r} (sources: {sorted(specs)})",
            file=sys.stderr,
        )
        return 2
    try:
        keys = partition_keys_between(specs[slug], first, last or first)
    except ValueError as exc:
        print(f"tremplin backfill: {exc}", file=sys.stderr)
        return 2
    if settings.mode == "mirror":
        # A mirror keeps the periods that were published (snapshots are not taken every
        # day): periods without a file are skipped, not failed.
        held = set(mirror_periods(specs[slug], settings))
        skipped = [k for k in keys if k not in held]
        keys = [k for k in keys if k in held]
        if not keys:
            print(
                f"tremplin backfill: {slug}: the mirror {settings.mirror_dir / slug} holds no "
                f"file for any period from {first} to {last or first}",
                file=sys.stderr,
            )
            return 2
        if skipped:
            print(f"tremplin backfill {slug}: {len(skipped)} period(s) without a mirror file")
    print(f"tremplin backfill {slug}: {len(keys)} period(s) {keys[0]} .. {keys[-1]}")
    results = backfill(
        build_definitions(),
        slug,
        keys,
        instance=_instance(),
        then=("build_warehouse", "publish_exports") if build else (),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    failed = [r for r in results if not r.success]
    for result in failed:
        partition = result.dagster_run.tags.get("dagster/partition")
        _record_failure(settings, result, result.job_def.name, partition)
        for line in _failures(result) or ["run failed (see the log above)"]:
            print(f"- {partition or result.job_def.name}: {line}", file=sys.stderr)
    return 1 if failed else 0


SQL_FORMATS = ("table", "csv", "json", "parquet")
# DuckDB's own writers (COPY ... TO) for the formats of `tremplin sql --format`.
COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json",
    "parquet": "FORMAT parquet",
}


def _sql_format(fmt: str | None, output: str | None) -> str:
    """The format asked for, or the one `--output`'s suffix names, or a table."""
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    return {"csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet"}.get(
        suffix, "csv" if output else "table"
    )


def _write_result(relation, fmt: str, output: str | None) -> None:
    """Write a query's result as CSV, JSON Lines or Parquet with DuckDB's COPY.

    The warehouse session is confined (no file access outside the raw tables), so the rows
    stream as Arrow batches to a second, in-memory DuckDB that writes the one named file
    (or a scratch file copied to stdout).
    """
    import shutil
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="tremplin-sql-") as scratch:
        target = Path(output) if output else Path(scratch) / f"result.{fmt}"
        writer = duckdb.connect()
        try:
            writer.register("result", relation.to_arrow_reader())
            quoted = str(target).replace("'", "''")
            writer.execute(f"COPY result TO '{quoted}' ({COPY_OPTIONS[fmt]})")
        finally:
            writer.close()
        if output is None:
            sys.stdout.flush()
            with target.open("rb") as written:
                shutil.copyfileobj(written, sys.stdout.buffer)
            sys.stdout.buffer.flush()


def run_sql(query: str, max_rows: int, fmt: str | None = None, output: str | None = None) -> int:
    import duckdb

    from pipelines.resources import WarehouseUnavailableError, connect_confined

    READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

    try:
        # Confined: reads the warehouse and its raw Parquet only, loads no extension.
        con = connect_confined()
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
        fmt = _sql_format(fmt, output)
        if fmt == "table" and output:
            print("tremplin sql: --output writes csv, json or parquet (--format)", file=sys.stderr)
            return 2
        if fmt == "parquet" and not output:
            print("tremplin sql: --format parquet needs --output FILE", file=sys.stderr)
            return 2
        if fmt != "table" and len(statements) != 1:
            print(f"tremplin sql: --format {fmt} takes one statement", file=sys.stderr)
            return 2
        for statement in statements:
            relation = con.sql(statement.query)
            if relation is None:
                continue
            if fmt == "table":
                relation.show(max_rows=max_rows, max_width=200)
            else:
                _write_result(relation, fmt, output)
        if output:
            print(f"{fmt} written to {output}", file=sys.stderr)
        return 0
    except duckdb.Error as exc:
        hint = ""
        if "read-only" in str(exc).lower():
            hint = " (tremplin sql is read-only: the warehouse is written by dbt only)"
        elif isinstance(exc, duckdb.PermissionException):
            hint = (
                " (tremplin sql reads the warehouse only: no file outside its raw tables,"
                " no extension)"
            )
        print(f"tremplin sql: {exc}{hint}", file=sys.stderr)
        return 1
    finally:
        con.close()


def run_explain(table: str, key: str, field: str | None, as_json: bool) -> int:
    """Exit 2 for an unknown table, key or field (the message lists the valid choices)."""
    from assets.dbt_manifest import ManifestError, default_manifest_path, load_models
    from assets.export.explain import ExplainError, explain, format_explanation
    from pipelines.resources import WarehouseUnavailableError, connect_readonly

    settings = get_settings()
    try:
        models = load_models(default_manifest_path())
    except ManifestError as exc:
        print(f"tremplin explain: {exc}", file=sys.stderr)
        return 2
    try:
        con = connect_readonly(settings)
    except WarehouseUnavailableError as exc:
        print(f"tremplin explain: {exc}", file=sys.stderr)
        return 2
    try:
        result = explain(
            con,
            table,
            key,
            field,
            manifest_path=default_manifest_path(),
            raw_dir=settings.raw_dir,
            landing_dir=settings.landing_dir,
            models=models,
        )
    except ExplainError as exc:
        print(f"tremplin explain: {exc}", file=sys.stderr)
        return 2
    finally:
        con.close()
    print(
        json.dumps(result.as_json(), indent=2, default=str)
        if as_json
        else format_explanation(result)
    )
    return 0


def run_check() -> int:
    from assets.export.errors import ExportError
    from assets.export.vintages import verify_export

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


DOCS_SITE = DBT_PROJECT_DIR / "target" / "docs"


def run_docs(serve: bool) -> int:
    """Build the dbt docs site from a copy of the warehouse, never the live file.

    `dbt docs generate` opens its profile's database for writing, which fails while anyone
    holds the warehouse open (analysts read it). It gets a private copy instead, named like
    the warehouse (dbt names the catalog's database after the file) at a fixed place, so
    dbt's partial parsing holds from one run to the next; the copy is removed afterwards.
    The site goes to `dbt_project/target/docs/`, apart from the manifest the runs read.
    """
    import shutil

    from pipelines.dbt import dbt_env, dbt_executable

    settings = get_settings()
    copy = DOCS_SITE / ".warehouse" / settings.duckdb_path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.unlink(missing_ok=True)
    if settings.duckdb_path.exists():
        shutil.copyfile(settings.duckdb_path, copy)
    env = {**os.environ, **dbt_env(settings, copy)}
    base = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    base += ["--target-path", str(DOCS_SITE)]
    try:
        subprocess.run([dbt_executable(), "docs", "generate", *base], env=env, check=True)
    finally:
        copy.unlink(missing_ok=True)
        Path(f"{copy}.wal").unlink(missing_ok=True)
    print(f"dbt docs written to {DOCS_SITE / 'index.html'}")
    if serve:
        command = [dbt_executable(), "docs", "serve", *base, "--host", "127.0.0.1"]
        subprocess.run([*command, "--port", "8080"], env=env, check=True)
    return 0


def run_publish(vintage: str | None, rollback: bool, keep: int | None, status: bool) -> int:
    """Exit 0 when PostgreSQL serves the vintage (or already did), 1 when it was refused
    or failed (nothing changed then), 2 without a database to publish to."""
    from assets.serving.postgres import PublishError, publish_vintage, published_state
    from assets.serving.postgres import rollback as roll_back

    settings = get_settings()
    if not settings.publish_dsn:
        print("tremplin publish: set TREMPLIN_PUBLISH_DSN (a PostgreSQL DSN)", file=sys.stderr)
        return 2
    logging.getLogger("assets.serving").setLevel(logging.INFO)
    try:
        if status:
            print(json.dumps(published_state(settings.publish_dsn), indent=2))
            return 0
        if rollback:
            result = roll_back(settings.publish_dsn)
            print(f"PostgreSQL readers -> {result.vintage} (rolled back from {result.previous})")
            return 0
        started = time.monotonic()
        result = publish_vintage(
            settings.publish_dsn,
            settings.exports_dir,
            vintage,
            keep=keep or settings.publish_keep,
        )
    except PublishError as exc:
        print(f"tremplin publish: {exc}", file=sys.stderr)
        return 1
    if not result.switched:
        print(f"{result.vintage} is already live in PostgreSQL: nothing changed")
        return 0
    print(
        f"PostgreSQL readers -> {result.vintage} (was {result.previous or 'none'}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    for name, rows in sorted(result.rows.items()):
        print(f"  {name:<24} {rows:>8} rows  {result.load_seconds[name]:6.1f} s")
    if result.dropped:
        print(f"dropped older vintages: {', '.join(result.dropped)}")
    return 0


def run_serve(host: str, port: int, backend: str | None, access_log: bool) -> int:
    from pipelines.api.server import serve

    return serve(get_settings(), host=host, port=port, backend=backend, access_log=access_log)


def run_dev(port: int) -> int:
    """`dagster dev` on 127.0.0.1, supervised so that a SIGTERM always stops it (dev.py)."""
    from pipelines.dev import supervise

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster"))
    command = [str(bin_dir / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    sys.stdout.flush()
    return supervise(command, cwd=PROJECT_ROOT, env=env)


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
        cmd.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="show the full stream (Dagster's log, dbt's output) instead of writing it "
            "to the run's log file",
        )
        if name in ("run", "ingest"):
            cmd.add_argument(
                "--source",
                action="append",
                metavar="SLUG",
                help="only this source (repeatable); `run` also rebuilds what depends on it",
            )
        if name == "run":
            cmd.add_argument(
                "--force",
                action="store_true",
                help="start the Dagster run even when nothing moved since the last run "
                "(mirror mode skips it otherwise)",
            )
        if name in ("run", "build"):
            cmd.add_argument(
                "--full-refresh",
                action="store_true",
                help="rebuild the incremental models from every period (dbt --full-refresh)",
            )
            cmd.add_argument(
                "--engine",
                choices=ENGINES,
                help="the engine dbt builds on: duckdb (default) or spark (dbt-spark, local "
                "pyspark session; sets TREMPLIN_ENGINE)",
            )
    sql = sub.add_parser("sql", help="run a read-only SQL query on the warehouse")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown as a table")
    sql.add_argument(
        "--format",
        choices=SQL_FORMATS,
        help="table (default on the console), csv, json (JSON Lines) or parquet; "
        "with --output, guessed from the file's suffix",
    )
    sql.add_argument("--output", metavar="FILE", help="write the result to FILE")
    sub.add_parser("check", help="verify the files of the latest export against its manifest")
    explain = sub.add_parser(
        "explain", help="one exported value: its formula, intermediate values and source cells"
    )
    explain.add_argument("table", help="exported table (local_diagnosis, regions, ...)")
    explain.add_argument("key", help="record key, e.g. 75:M1805 for local_diagnosis")
    explain.add_argument("field", nargs="?", help="JSON field or Parquet column (default: all)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("manifest", help="prepare the dbt manifest (dbt parse)")
    docs = sub.add_parser("docs", help="build the dbt docs site")
    docs.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1:8080")
    docs.add_argument(
        "--exports",
        action="store_true",
        help="instead, regenerate docs/EXPORTS.md (every exported field) from the dbt yml",
    )
    docs.add_argument(
        "--no-parse",
        action="store_true",
        help="with --exports: use the current dbt manifest and field lineage",
    )
    diff = sub.add_parser(
        "diff", help="what changed between two export vintages (default: previous vs latest)"
    )
    diff.add_argument("old", nargs="?", help="vintage name, `latest` or a directory")
    diff.add_argument("new", nargs="?", help="vintage name, `latest` (default) or a directory")
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.add_argument("--top", type=int, default=3, help="examples per changed field")
    accept = sub.add_parser(
        "accept", help="verify a vintage held by the publication gate and make it latest"
    )
    accept.add_argument("vintage")
    report = sub.add_parser("report", help="write the HTML report of an export vintage")
    report.add_argument("--vintage", help="vintage name, `latest` (default) or a directory")
    report.add_argument("--output", help="write here instead of <vintage>/report.html")
    report.add_argument("--force", action="store_true", help="rebuild even if up to date")
    status = sub.add_parser(
        "status", help="per source: last fetch, last change, vintage, next release, state"
    )
    status.add_argument("slugs", nargs="*", help="only these sources (default: all)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    backfill = sub.add_parser("backfill", help="ingest past periods of a periodic source")
    backfill.add_argument("slug")
    backfill.add_argument("first", help="first period (partition key, e.g. 2024-01-01 or 2024)")
    backfill.add_argument("last", nargs="?", help="last period (default: first)")
    backfill.add_argument("--live", action="store_true", help="download from the publishers")
    backfill.add_argument("--no-build", action="store_true", help="skip dbt build and export")
    publish = sub.add_parser(
        "publish", help="load a verified vintage into PostgreSQL and switch readers to it"
    )
    publish.add_argument("vintage", nargs="?", help="vintage name (default: latest)")
    publish.add_argument(
        "--rollback", action="store_true", help="switch readers back to the previous vintage"
    )
    publish.add_argument("--keep", type=int, help="vintages kept loaded (TREMPLIN_PUBLISH_KEEP)")
    publish.add_argument("--status", action="store_true", help="live and kept vintages, JSON")
    serve = sub.add_parser("serve", help="the read-only HTTP API over the latest vintage")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--backend",
        choices=("files", "postgres"),
        help="default: postgres when TREMPLIN_API_DSN is set, else the export files",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    dev = sub.add_parser("dev", help="open the Dagster UI on 127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`tremplin status --json | head`): stop quietly, and keep
        # Python from reporting the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    # Dagster's console logger reports the steps; Python logging only shows warnings.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    # Dagster's console logger already prints its events; don't print them twice.
    logging.getLogger("dagster.builtin").propagate = False
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if getattr(args, "engine", None):
        # Read by get_settings() wherever the job runs (this process or Dagster's).
        os.environ["TREMPLIN_ENGINE"] = args.engine
    if args.command in JOBS:
        return run_job(
            args.command,
            args.live,
            getattr(args, "source", None),
            getattr(args, "full_refresh", False),
            args.verbose,
            getattr(args, "force", False),
        )
    if args.command == "sql":
        return run_sql(args.query, args.max_rows, args.format, args.output)
    if args.command == "explain":
        return run_explain(args.table, args.key, args.field, args.json)
    if args.command == "check":
        return run_check()
    if args.command == "status":
        return run_status(args.json, args.slugs)
    if args.command == "backfill":
        return run_backfill(args.slug, args.first, args.last, args.live, not args.no_build)
    if args.command == "manifest":
        from pipelines.dbt import prepare_manifest

        print(f"dbt manifest ready: {prepare_manifest()}")
        return 0
    if args.command == "docs" and args.exports:
        return run_exports_doc(parse=not args.no_parse)
    if args.command == "docs":
        return run_docs(args.serve)
    if args.command == "diff":
        return run_diff(args.old, args.new, args.json, args.top)
    if args.command == "accept":
        return run_accept(args.vintage)
    if args.command == "report":
        return run_report(args.vintage, args.output, args.force)
    if args.command == "publish":
        return run_publish(args.vintage, args.rollback, args.keep, args.status)
    if args.command == "serve":
        return run_serve(args.host, args.port, args.backend, args.access_log)
    if args.command == "dev":
        return run_dev(args.port)
    return 2


if __name__ == "__main__":
    sys.exit(main())
