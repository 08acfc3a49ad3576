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
"""

import dataclasses
import os
from types import ModuleType

import dagster as dg
from dagster import AssetExecutionContext

from assets.sources.http import FetchError
from assets.sources.landing import (
    FetchReport,
    LandingWriteError,
    NotFetchedError,
    current_files,
    fetch_source,
)
from assets.sources.raw import raw_path, rejected_path, write_parquet_atomically
from assets.sources.validation import validate_frame
from pipelines.settings import get_settings

CONTRACT_CHECK = "contract"

FETCH_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def landing_key(slug: str) -> dg.AssetKey:
    return dg.AssetKey([slug, "landing"])


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


def build_source_assets(module: ModuleType) -> list[dg.AssetsDefinition]:
    spec = module.SPEC
    slug = spec.slug

    @dg.asset(
        key=landing_key(slug),
        group_name=slug,
        kinds={"python"},
        retry_policy=FETCH_RETRY,
        description=f"{spec.title} — {spec.publisher}. Landed bytes, mirror or live. "
        f"Licence: {spec.licence}. Cadence: {spec.cadence}.",
        metadata={"landing_page": spec.landing_page, "licence": spec.licence},
    )
    def landing(context: AssetExecutionContext) -> dg.MaterializeResult:
        settings = get_settings()
        fetch = getattr(module, "fetch", fetch_source)
        missing = [name for name in spec.requires_env if not os.environ.get(name)]
        try:
            if settings.mode == "live" and missing:
                report = keep_last_files(spec, settings, missing, context.log)
            else:
                report = fetch(spec, settings, log=context.log)
        except LandingWriteError as exc:
            # A local disk problem: retrying the fetch would fail the same way.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        except FetchError as exc:
            if settings.mode == "mirror":  # a bad local file: retrying cannot help either
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
            raise
        new = [f.file_name for f in report.new_files]
        context.log.info(
            "%s: %d file(s) in %s mode, %d new %s",
            slug,
            len(report.files),
            report.mode,
            len(new),
            new,
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

    @dg.multi_asset(specs=specs, check_specs=checks, name=f"{slug}__raw", can_subset=False)
    def raw(context: AssetExecutionContext):
        settings = get_settings()
        parsed = module.parse(current_files(settings.landing_dir, slug))
        reports = {
            table: validate_frame(
                parsed[table].frame,
                module.CONTRACTS[table],
                slug=slug,
                table=table,
                source_files=tuple(f.file_name for f in parsed[table].source_files),
            )
            for table in module.TABLES
        }
        # All or nothing per source: one bad table keeps every raw table of the source at
        # its last good version, so dbt never joins two vintages of one publication.
        publish = all(r.success for r in reports.values())
        for table in module.TABLES:
            item, report = parsed[table], reports[table]
            files = report.source_files
            key = dg.AssetKey([slug, table])
            target = raw_path(settings.raw_dir, slug, table, item.partition)
            if publish:
                path = write_parquet_atomically(item.frame, target)
            elif not report.success:
                rejected = rejected_path(settings.raw_dir, slug, table, item.partition)
                path = write_parquet_atomically(item.frame, rejected)
                context.log.error(report.describe())
            else:
                path = target
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows": len(item.frame),
                    "path": str(path),
                    "published": publish,
                    "source_files": dg.MetadataValue.json(list(files)),
                },
            )
            failure = report.failures[0] if report.failures else None
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=CONTRACT_CHECK,
                passed=report.success,
                severity=dg.AssetCheckSeverity.ERROR,
                description=report.describe(),
                metadata={
                    "file": ", ".join(files),
                    "rows": len(item.frame),
                    "failures": len(report.failures),
                    "column": (failure.column or "") if failure else "",
                    "samples": dg.MetadataValue.json(list(failure.samples) if failure else []),
                },
            )

    return [landing, raw]
