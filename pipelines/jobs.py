"""Jobs: the whole graph, its three stages for partial reruns, and one job per source.

A source's job (`refresh_<slug>`) is its landing and raw assets plus everything
downstream of them, so a schedule tick or a new release refreshes exactly what that
publication feeds. Periodic (partitioned) sources are left out of the whole-graph jobs,
which run without a partition key; they run per period through `refresh_<slug>`, and
backfills of many periods through `ingest_<slug>` followed by one `build_warehouse`.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.ingest.factory import partitions_def_for
from assets.ingest.spec import SourceSpec

SOURCE_TAG = "source"
DBT_OP = "tremplin_dbt"  # the dbt step (pipelines/dbt.py)


def refresh_job_name(slug: str) -> str:
    return f"refresh_{slug}"


def ingest_job_name(slug: str) -> str:
    return f"ingest_{slug}"


def source_selection(slug: str) -> dg.AssetSelection:
    """A source's own assets and everything that depends on them."""
    return dg.AssetSelection.groups(slug).downstream()


def build_jobs(specs: Sequence[SourceSpec]) -> list[dg.UnresolvedAssetJobDefinition]:
    slugs = [s.slug for s in specs]
    sources = dg.AssetSelection.groups(*slugs)
    periodic = dg.AssetSelection.groups(*[s.slug for s in specs if s.partitioning])
    exports = dg.AssetSelection.groups("exports")
    models = dg.AssetSelection.all() - sources - exports
    jobs = [
        dg.define_asset_job(
            "refresh_all",
            selection=dg.AssetSelection.all() - periodic,
            description="Fetch every source, validate, build the warehouse with dbt, export "
            "(periodic sources run per period through refresh_<slug>).",
        ),
        dg.define_asset_job(
            "ingest_sources", selection=sources - periodic, description="Fetch, parse and validate."
        ),
        dg.define_asset_job(
            "build_warehouse", selection=models, description="dbt build on the current raw data."
        ),
        dg.define_asset_job(
            "publish_exports", selection=exports, description="Export the diagnostic tables."
        ),
    ]
    for spec in specs:
        partitions = partitions_def_for(spec)
        jobs.append(
            dg.define_asset_job(
                refresh_job_name(spec.slug),
                selection=source_selection(spec.slug),
                tags={SOURCE_TAG: spec.slug},
                description=f"{spec.title}: fetch, validate, then everything downstream.",
            )
        )
        if partitions is not None:
            jobs.append(
                dg.define_asset_job(
                    ingest_job_name(spec.slug),
                    selection=dg.AssetSelection.groups(spec.slug),
                    tags={SOURCE_TAG: spec.slug},
                    description=f"{spec.title}: fetch and validate one period (backfills).",
                )
            )
    return jobs


def backfill(
    definitions: dg.Definitions,
    slug: str,
    partition_keys: Sequence[str],
    *,
    instance: dg.DagsterInstance,
    then: Sequence[str] = ("build_warehouse", "publish_exports"),
    run_config: dict | None = None,
    full_refresh: bool = True,
) -> list:
    """Ingest several periods of one source, then rebuild downstream once.

    One run per period (each validated on its own, so a bad period fails alone), then the
    `then` jobs once, rather than a dbt build per period. Stops before `then` when a
    period failed, so the warehouse never mixes a half-done backfill in silently.

    The runs are recorded with the workspace's origin, so the UI lists them under their
    jobs (`pipelines.launch`).
    """
    from pipelines.launch import execute_job

    ingest = definitions.resolve_job_def(ingest_job_name(slug))
    results = []
    for key in partition_keys:
        result = execute_job(
            ingest,
            instance,
            partition_key=key,
            run_config=run_config,
            tags={SOURCE_TAG: slug, "trigger": "backfill"},
        )
        results.append(result)
    if not all(r.success for r in results):
        return results
    for name in then:
        job = definitions.resolve_job_def(name)
        config = dict(run_config or {})
        if full_refresh and job.graph.has_node_named(DBT_OP):
            # Past periods land behind the newest one the incremental models folded in.
            config = build_run_config(config, full_refresh=True)
        results.append(execute_job(job, instance, run_config=config))
    return results


def build_run_config(run_config: dict | None = None, *, full_refresh: bool) -> dict:
    """Run config for a job holding the dbt step, with its `full_refresh` option."""
    config = dict(run_config or {})
    ops = dict(config.get("ops", {}))
    ops[DBT_OP] = {"config": {"full_refresh": full_refresh}}
    config["ops"] = ops
    return config


def partition_keys_between(spec: SourceSpec, first: str, last: str) -> list[str]:
    """Every period of `spec` from `first` to `last` inclusive (keys as the partitions use)."""
    partitions = partitions_def_for(spec)
    if partitions is None:
        raise ValueError(f"{spec.slug}: not a periodic source (no partitioning on its spec)")
    keys = partitions.get_partition_keys()
    missing = [k for k in (first, last) if k not in keys]
    if missing:
        raise ValueError(
            f"{spec.slug}: unknown period(s) {missing}; periods run from {keys[0]} to {keys[-1]}"
            if keys
            else f"{spec.slug}: no period has started yet"
        )
    return keys[keys.index(first) : keys.index(last) + 1]


def mirror_periods(spec: SourceSpec, settings, when=None) -> list[str]:
    """Periods of a periodic source the mirror directory holds a file for, oldest first."""
    import fnmatch

    partitions = partitions_def_for(spec)
    if partitions is None or spec.partitioning is None:
        return []
    source_dir = settings.mirror_dir / spec.slug
    known = set(partitions.get_partition_keys(current_time=when))
    keys = {
        spec.partitioning.key_for_file(f.name)
        for f in (source_dir.iterdir() if source_dir.is_dir() else ())
        if f.is_file() and any(fnmatch.fnmatch(f.name, pat) for pat in spec.mirror_patterns)
    }
    return sorted(keys & known)


def periods_to_ingest(module, settings, when=None) -> list[str]:
    """The periods of a periodic source a plain `tremplin run` should ingest.

    Live mode: the newest period that exists now (today's offers snapshot, this year's
    survey, the last complete quarter). Mirror mode: every period the mirror holds a file
    for that has no published raw table yet, plus the newest one (a mirror directory that
    gains a vintage gets it ingested; an unchanged newest period is skipped cheaply by the
    raw step). Older periods whose mirror files changed in place are a backfill
    (`tremplin backfill`), so a run never re-reads every period of the history.
    """
    from assets.ingest.factory import latest_partition
    from assets.ingest.raw import raw_path

    spec: SourceSpec = module.SPEC
    partitions = partitions_def_for(spec)
    if partitions is None:
        return []
    if settings.mode == "live":
        key = latest_partition(partitions, when)
        return [key] if key else []
    in_mirror = mirror_periods(spec, settings, when)
    if not in_mirror:
        return []
    missing = [
        key
        for key in in_mirror
        if not all(raw_path(settings.raw_dir, spec.slug, t, key).is_file() for t in module.TABLES)
    ]
    return sorted(set(missing) | {in_mirror[-1]})
