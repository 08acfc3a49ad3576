"""Dagster assets for a source module: a landing asset and its raw tables with checks.

Every source module exposes `SPEC`, `TABLES`, `CONTRACTS` and `parse(files)` (and may
expose `fetch(spec, settings, log)` when it is not a set of plain downloads, e.g. an API
client); this factory turns it into
* `[slug, "landing"]`: fetch (mirror or live) into the immutable landing area, retried
  on failure since network faults are transient;
* `[slug, <table>]` for each table, with a blocking `contract` check: a table that breaks
  its contract is not published (the previous raw parquet stays), it is kept under
  `raw/<slug>/_rejected/` for inspection and the check failure stops downstream work.
  Publication is all-or-nothing per source.

A spec with `partitioning` gets time-window partitions (daily, quarterly, yearly, in
Europe/Paris) on both assets: the landing asset fetches one period's files, the raw asset
parses that period only and publishes `raw/<slug>/<table>/<partition>.parquet`, so history
accumulates and a backfill is a range of partitions. The landing asset carries the
source's freshness policy (its max age), which is what the UI shows as stale.
"""

import contextlib
import dataclasses
import fnmatch
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

import dagster as dg
from dagster import AssetExecutionContext

from assets.foundation.files import exclusive_lock, fsync_dir
from assets.foundation.fingerprint import (
    canonical,
    code_digest,
    digest,
    package_versions,
    read_record,
    remove_record,
    stat_of,
    write_record,
)
from assets.foundation.settings import Settings, get_settings
from assets.ingest.fetch import FetchReport, fetch_source
from assets.ingest.http import FetchError
from assets.ingest.landing import (
    LandedFile,
    LandingWriteError,
    NotFetchedError,
    current_files,
    landed_history,
)
from assets.ingest.raw import raw_path, rejected_path, write_parquet_atomically
from assets.ingest.spec import TIMEZONE, SourceSpec
from assets.ingest.validation import StagedTable, validate_frame, validate_parquet

CONTRACT_CHECK = "contract"
RAW_RECORD_KIND = "raw"
RECORD_NAME = "_published"  # raw/<slug>/_published.json, raw/<slug>/_published/<key>.json
# Packages whose behaviour shapes a parsed and validated table.
PARSE_PACKAGES = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "great_expectations",
    "openpyxl",
    "python-calamine",
)

FETCH_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


PERIOD_CRONS = {"daily": "0 0 * * *", "quarterly": "0 0 1 1,4,7,10 *", "yearly": "0 0 1 1 *"}


def landing_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "landing"])


def partitions_def_for(spec: SourceSpec) -> dg.TimeWindowPartitionsDefinition | None:
    """Dagster partitions for a periodic source; keys as `Partitioning.key_for` makes them."""
    p = spec.partitioning
    if p is None:
        return None
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=PERIOD_CRONS[p.period],
        start=datetime.combine(date.fromisoformat(p.start), datetime.min.time()),
        fmt="%Y" if p.period == "yearly" else "%Y-%m-%d",
        timezone=TIMEZONE,
        end_offset=p.end_offset,
    )


def latest_partition(
    partitions: dg.TimeWindowPartitionsDefinition, when: datetime | None = None
) -> str | None:
    """The newest period that exists at `when` (schedule ticks and live probes ask for it)."""
    keys = partitions.get_partition_keys(current_time=when)
    return keys[-1] if keys else None


def spec_for_partition(spec: SourceSpec, key: str, settings: Settings) -> SourceSpec:
    """The spec narrowed to one period: its mirror files, its URLs with the period filled in."""
    p = spec.partitioning
    assert p is not None
    fields = p.fields_for(key)
    downloads = tuple(
        dataclasses.replace(d, url=d.url.format(**fields), file_name=d.file_name.format(**fields))
        for d in spec.downloads
    )
    patterns = spec.mirror_patterns
    if settings.mode == "mirror" and p.file_period:
        source_dir = settings.mirror_dir / spec.slug
        names = sorted(
            f.name
            for f in (source_dir.iterdir() if source_dir.is_dir() else ())
            if f.is_file()
            and any(fnmatch.fnmatch(f.name, pat) for pat in spec.mirror_patterns)
            and p.key_for_file(f.name) == key
        )
        if not names:
            raise FetchError(
                f"{spec.slug}: no file for partition {key} in mirror directory {source_dir} "
                f"(expected a name matching {list(spec.mirror_patterns)} whose period, read "
                f"with {p.file_period!r}, is {key})"
            )
        patterns = tuple(names)
    return dataclasses.replace(spec, downloads=downloads, mirror_patterns=patterns)


def partition_files(spec: SourceSpec, landing_dir, key: str) -> tuple[LandedFile, ...]:
    """The newest landed bytes of each file of period `key` (partitioned sources).

    Read from the landing history rather than the `current.json` pointer, which the last
    fetched partition overwrites: parsing 2024 must not read what fetching 2025 landed.
    """
    p = spec.partitioning
    if p is None or not p.file_period:
        return current_files(landing_dir, spec.slug)
    newest: dict[str, LandedFile] = {}
    for landed in landed_history(landing_dir, spec.slug):
        if p.key_for_file(landed.file_name) == key and landed.path.is_file():
            newest[landed.file_name] = landed
    if not newest:
        raise NotFetchedError(
            f"{spec.slug}: nothing landed for partition {key} under {landing_dir / spec.slug}; "
            f"fetch that partition first"
        )
    return tuple(newest[name] for name in sorted(newest))


def keep_last_files(spec, settings, missing: list[str], log) -> FetchReport:
    """Live run without credentials: keep the last landed files, or the mirror's."""
    try:
        files = current_files(settings.landing_dir, spec.slug)
        kept = "its last landed files"
    except NotFetchedError:
        files = fetch_source(spec, dataclasses.replace(settings, mode="mirror"), log=log).files
        kept = f"the mirror's files ({settings.mirror_dir / spec.slug})"
    log.warning(
        "%s: live fetch skipped: %s not set in the environment; the run goes on with %s",
        spec.slug,
        " and ".join(missing),
        kept,
    )
    return FetchReport(slug=spec.slug, mode="kept", files=tuple(files))


def _fetch(module: ModuleType, spec: SourceSpec, settings: Settings, partition, log):
    """The module's own fetch or the shared one, on the spec narrowed to the partition (a
    fetch that takes `partition_key` is also told which period is asked for)."""
    fetch = getattr(module, "fetch", None)
    if partition is not None:
        spec = spec_for_partition(spec, partition, settings)
        if fetch is not None and "partition_key" in inspect.signature(fetch).parameters:
            return fetch(spec, settings, log=log, partition_key=partition)
    return (fetch or fetch_source)(spec, settings, log=log)


def build_source_assets(
    module: ModuleType, spec: SourceSpec | None = None
) -> list[dg.AssetsDefinition]:
    """`spec` overrides `module.SPEC` (the operator's schedule / max-age overrides)."""
    from assets.ingest.status import max_age, record_fetch

    spec = spec or module.SPEC
    # The parser as imported now, not as the files on disk may read by the time it runs.
    identity = parser_identity(module)
    slug = spec.slug
    partitions_def = partitions_def_for(spec)

    @dg.asset(
        key=landing_key(slug),
        group_name=slug,
        kinds={"python"},
        retry_policy=FETCH_RETRY,
        partitions_def=partitions_def,
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=max_age(spec)),
        description=f"{spec.title} — {spec.publisher}. Landed bytes, mirror or live. "
        f"Licence: {spec.licence}. Cadence: {spec.cadence}.",
        metadata={"landing_page": spec.landing_page, "licence": spec.licence},
    )
    def landing(context: AssetExecutionContext) -> dg.MaterializeResult:
        settings = get_settings()
        partition = context.partition_key if partitions_def is not None else None
        missing = [name for name in spec.requires_env if not os.environ.get(name)]
        try:
            if settings.mode == "live" and missing:
                report = keep_last_files(spec, settings, missing, context.log)
            else:
                report = _fetch(module, spec, settings, partition, context.log)
        except LandingWriteError as exc:
            # A local disk problem: retrying the fetch would fail the same way.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        except FetchError as exc:
            if settings.mode == "mirror":  # a bad local file: retrying cannot help either
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
            raise
        except Exception as exc:
            # A mirror file that is missing or malformed will be so again: retry live only.
            if settings.mode != "mirror":
                raise
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        new = [f.file_name for f in report.new_files]
        context.log.info(
            "%s: %d file(s) in %s mode, %d new %s",
            slug,
            len(report.files),
            report.mode,
            len(new),
            _first_names(new),
        )
        record_fetch(
            settings,
            slug,
            mode=report.mode,
            files=report.files,
            new_files=report.new_files,
            partition=partition,
            run_id=context.run.run_id,
        )
        return dg.MaterializeResult(
            metadata={
                "mode": report.mode,
                "files": len(report.files),
                "new_files": len(new),
                "sha256": dg.MetadataValue.json({f.file_name: f.sha256 for f in report.files}),
            }
        )

    specs = [
        dg.AssetSpec(
            [slug, table],
            deps=[landing_key(slug)],
            group_name=slug,
            kinds={"parquet"},
            description=f"Raw `{table}` of {spec.title}, as published (codes as text), with "
            "provenance columns.",
        )
        for table in module.TABLES
    ]
    checks = [
        dg.AssetCheckSpec(
            CONTRACT_CHECK,
            asset=[slug, table],
            blocking=True,
            description="Ingestion contract (Great Expectations): columns, codes, row floor.",
        )
        for table in module.TABLES
    ]

    @dg.multi_asset(
        specs=specs,
        check_specs=checks,
        name=f"{slug}__raw",
        can_subset=False,
        partitions_def=partitions_def,
    )
    def raw(context: AssetExecutionContext):
        settings = get_settings()
        partition = context.partition_key if partitions_def is not None else None
        if partition is None:
            landed = current_files(settings.landing_dir, slug)
        else:
            landed = partition_files(spec, settings.landing_dir, partition)
        fingerprint = raw_fingerprint(identity, slug, landed, partition)
        record_path = raw_record_path(settings.raw_dir, slug, partition)
        with _publication_lock(settings.raw_dir, slug):
            record = _unchanged_publication(
                record_path, fingerprint, settings.raw_dir, module.TABLES, context.log
            )
        if record is not None:
            # Same landed bytes, same parser and contract as the last validated
            # publication, whose files are still in place: nothing to parse or check.
            context.log.info(
                "%s%s: inputs unchanged since the validated publication of %s; raw tables "
                "kept, not parsed again",
                slug,
                f" [{partition}]" if partition else "",
                record["recorded_at"],
            )
            yield from _unchanged_results(slug, module.TABLES, record, settings.raw_dir)
            return
        parsed = _parse(module, landed, settings)
        if partition is not None:
            parsed = {t: _in_partition(slug, item, partition) for t, item in parsed.items()}
        reports = {
            table: _validate(parsed[table], module.CONTRACTS[table], slug)
            for table in module.TABLES
        }
        # All or nothing per source: one bad table keeps every raw table of the source at
        # its last good version, so dbt never joins two vintages of one publication.
        publish = all(r.success for r in reports.values())
        events = []
        published: dict[str, dict] = {}
        with _publication_lock(settings.raw_dir, slug):
            staged: dict[str, Path] = {}
            if publish:
                # Every table is written under a temporary name first: a disk that fills
                # up now fails the run before any published table was replaced.
                staged = _stage_all(slug, module.TABLES, parsed, settings.raw_dir)
                # From the first replaced file on, the old record no longer describes what
                # is published: forget it until the whole publication is in place.
                remove_record(record_path)
            for table in module.TABLES:
                item, report = parsed[table], reports[table]
                files = report.source_files
                key = dg.AssetKey([slug, table])
                target = raw_path(settings.raw_dir, slug, table, item.partition)
                if publish:
                    path = _move_into_place(staged[table], target)
                    published[table] = {
                        "path": str(path.relative_to(settings.raw_dir)),
                        **(stat_of(path) or {}),
                        "rows": _rows(item),
                        "source_files": list(files),
                        "check": report.describe(),
                    }
                elif not report.success:
                    rejected = rejected_path(settings.raw_dir, slug, table, item.partition)
                    try:
                        path = _publish(item, rejected)
                    except OSError as exc:  # kept for inspection only: the check still fails
                        path = rejected
                        _discard(item)
                        context.log.warning(
                            "%s: the rejected table %s could not be kept at %s: %s",
                            slug,
                            table,
                            rejected,
                            exc.strerror or exc,
                        )
                    context.log.error(report.describe())
                else:
                    path = target
                    _discard(item)
                events.append(
                    dg.MaterializeResult(
                        asset_key=key,
                        metadata={
                            "rows": _rows(item),
                            "path": str(path),
                            "published": publish,
                            "unchanged": False,
                            "source_files": dg.MetadataValue.json(list(files)),
                        },
                    )
                )
                failure = report.failures[0] if report.failures else None
                events.append(
                    dg.AssetCheckResult(
                        asset_key=key,
                        check_name=CONTRACT_CHECK,
                        passed=report.success,
                        severity=dg.AssetCheckSeverity.ERROR,
                        description=report.describe(),
                        metadata={
                            "file": ", ".join(files),
                            "rows": _rows(item),
                            "failures": len(report.failures),
                            "column": (failure.column or "") if failure else "",
                            "samples": dg.MetadataValue.json(
                                list(failure.samples) if failure else []
                            ),
                        },
                    )
                )
            if publish:
                # Only a complete, validated publication is recorded; a rejected one never.
                write_record(
                    record_path,
                    kind=RAW_RECORD_KIND,
                    fingerprint=fingerprint,
                    slug=slug,
                    partition=partition,
                    run_id=context.run.run_id,
                    files=[[f.file_name, f.sha256] for f in landed],
                    tables=published,
                )
        yield from events

    return [landing, raw]


# A log line names this many new files; a national offers snapshot lands hundreds.
LOGGED_NAMES = 5


def _first_names(names: list[str]) -> str:
    """The first names in full, then how many more (the landing record lists them all)."""
    shown = ", ".join(names[:LOGGED_NAMES])
    more = len(names) - LOGGED_NAMES
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


def _parse(module: ModuleType, files, settings: Settings) -> dict:
    """`module.parse(files)`; a parser that stages Parquet gets a directory beside raw."""
    if "stage_dir" in inspect.signature(module.parse).parameters:
        stage_dir = settings.raw_dir / module.SPEC.slug / "_staging"
        return module.parse(files, stage_dir=stage_dir)
    return module.parse(files)


def _validate(item, contract, slug: str):
    """GX on pandas frames; SQL over the staged file for tables too large for memory."""
    files = tuple(f.file_name for f in item.source_files)
    if isinstance(item, StagedTable):
        return validate_parquet(
            item.path, contract, slug=slug, table=item.table, source_files=files
        )
    return validate_frame(item.frame, contract, slug=slug, table=item.table, source_files=files)


def _publish(item, target):
    if isinstance(item, StagedTable):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(item.path, target)  # staged beside raw: same disk, atomic
        return target
    return write_parquet_atomically(item.frame, target)


class RawPublicationError(RuntimeError):
    """The raw tables of a source could not be written; the published ones are unchanged."""


def _stage_all(slug: str, tables, parsed: dict, raw_dir: Path) -> dict[str, Path]:
    """Each table's bytes complete on disk, beside its target, before any rename."""
    staged: dict[str, Path] = {}
    try:
        for table in tables:
            item = parsed[table]
            target = raw_path(raw_dir, slug, table, item.partition)
            staged[table] = _stage(item, target)
    except OSError as exc:
        for table, path in staged.items():
            if not isinstance(parsed[table], StagedTable):
                path.unlink(missing_ok=True)
        for item in parsed.values():
            _discard(item)
        where = exc.filename or raw_dir / slug
        raise RawPublicationError(
            f"{slug}: cannot write the raw tables ({where}: {exc.strerror or exc}); "
            f"nothing was published, the last validated tables stay in place"
        ) from exc
    return staged


def _stage(item, target: Path) -> Path:
    if isinstance(item, StagedTable):
        return Path(item.path)  # already written beside raw (same disk)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        item.frame.to_parquet(tmp, index=False)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _move_into_place(staged: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
    fsync_dir(target.parent)
    return target


def _discard(item) -> None:
    if isinstance(item, StagedTable):
        item.path.unlink(missing_ok=True)


def _rows(item) -> int:
    return item.rows if isinstance(item, StagedTable) else len(item.frame)


def _in_partition(slug: str, item, key: str):
    """Publish a partition's table under its Dagster partition key, never another one."""
    if item.partition is None:
        return dataclasses.replace(item, partition=key)
    if item.partition != key:
        raise ValueError(
            f"{slug}: parse put table {item.table} in partition {item.partition!r} while "
            f"partition {key!r} was being materialised "
            f"(files {[f.file_name for f in item.source_files]})"
        )
    return item


# ------------------------------------------------------------------ unchanged re-runs


def raw_record_path(raw_dir: Path, slug: str, partition: str | None = None) -> Path:
    """Where the fingerprint of the last validated publication of a source is recorded."""
    if partition:
        return raw_dir / slug / RECORD_NAME / f"{partition}.json"
    return raw_dir / slug / f"{RECORD_NAME}.json"


def parser_identity(module: ModuleType) -> dict:
    """What makes a source's parse and validation what they are: the source module and every
    project module it uses (raw.py, validation.py, this factory...), its contracts and
    tables, and the parsing libraries' versions. Taken when the assets are defined, right
    after the import, so it describes the code that will run."""
    return {
        "code": code_digest(module, sys.modules[__name__]),
        "tables": list(module.TABLES),
        "contracts": canonical(module.CONTRACTS),
        "versions": package_versions(PARSE_PACKAGES),
    }


def raw_fingerprint(
    identity: dict, slug: str, files: Sequence[LandedFile], partition: str | None
) -> str:
    """What a source's raw tables depend on: the landed bytes (names and sha256) and the
    parser's identity."""
    return digest(
        {
            "slug": slug,
            "partition": partition,
            "files": [[f.file_name, f.sha256] for f in files],
            **identity,
        }
    )


@contextlib.contextmanager
def _publication_lock(raw_dir: Path, slug: str) -> Iterator[None]:
    """One publisher of a source's raw tables at a time, across processes, so a record
    always describes the files the same run published."""
    slug_dir = raw_dir / slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(slug_dir / ".publish.lock"):
        yield


def _unchanged_publication(
    record_path: Path, fingerprint: str, raw_dir: Path, tables: Sequence[str], log
) -> dict | None:
    """The record of the last validated publication when it was made from exactly these
    inputs and its raw files are still the ones it published; else None (work to do)."""
    record = read_record(record_path, kind=RAW_RECORD_KIND)
    if record is None:
        return None
    if record["fingerprint"] != fingerprint:
        log.info(
            "%s: inputs changed since the publication of %s",
            record_path.parent,
            record.get("recorded_at"),
        )
        return None
    entries = record.get("tables")
    if not isinstance(entries, dict):
        return None
    for table in tables:
        entry = entries.get(table)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            return None
        path = raw_dir / entry["path"]
        now = stat_of(path)
        if now is None or now != {"size": entry.get("size"), "mtime_ns": entry.get("mtime_ns")}:
            log.info("%s changed or vanished since its publication: parsing again", path)
            return None
    return record


def _unchanged_results(slug: str, tables: Sequence[str], record: dict, raw_dir: Path):
    when = record["recorded_at"]
    for table in tables:
        entry = record["tables"][table]
        key = dg.AssetKey([slug, table])
        files = list(entry.get("source_files") or [])
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows": entry.get("rows"),
                "path": str(raw_dir / entry["path"]),
                "published": False,
                "unchanged": True,
                "validated_at": when,
                "source_files": dg.MetadataValue.json(files),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=CONTRACT_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"inputs unchanged since the validated publication of {when} (same landed "
                f"files, parser and contract): {entry.get('check', '')}"
            ),
            metadata={
                "file": ", ".join(files),
                "rows": entry.get("rows"),
                "failures": 0,
                "column": "",
                "samples": dg.MetadataValue.json([]),
                "unchanged": True,
            },
        )
