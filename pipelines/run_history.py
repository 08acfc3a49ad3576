"""Runs that changed nothing leave Dagster's history once newer ones are kept.

A scheduled refresh that finds nothing new still records a whole run: every dbt model and
test is reported `unchanged` (about 1,100 events on the embedded default) and the SQLite
instance grows by ~7 MB per such run, so an hourly schedule would keep gigabytes of "nothing
happened" a year (docs/BENCHMARK.md, The no-op). Kept for ever: every run that changed
something (a new landed file, a raw table published, a dbt build, an export vintage), every
run that did not succeed, and the newest `keep` successful runs that changed nothing. Older
successful no-op runs are deleted with their events (`DagsterInstance.delete_run`; the
pooled SQLite storage also removes their shard file). What they said is in the runs kept:
the same inputs, the same warehouse and export.

A finished run is classified once and tagged (`tremplin/changed`), so a prune reads only the
events of runs it has not seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

CHANGED_TAG = "tremplin/changed"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pruned:
    deleted: int
    kept_unchanged: int


def _unchanged(metadata: dict) -> bool:
    """A materialization that reports no new work: dbt models, raw tables, the export and
    its report say `unchanged`; a landing step found no new file."""
    flag = metadata.get("unchanged")
    if flag is not None and getattr(flag, "value", flag) is True:
        return True
    new_files = metadata.get("new_files")
    return new_files is not None and getattr(new_files, "value", new_files) == 0


def run_changed(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when the run materialized anything new (or its events cannot say otherwise)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or not _unchanged(dict(materialization.metadata)):
            return True
    return False


def prune_unchanged_runs(instance: dg.DagsterInstance, keep: int) -> Pruned:
    """Delete the successful runs that changed nothing, but the newest `keep` of them."""
    if keep < 1:
        raise ValueError(f"keep={keep}: at least the newest unchanged run stays")
    success = [DagsterRunStatus.SUCCESS]
    # Ids only (newest first): the records are read just for the runs not yet classified.
    successful = instance.get_run_ids(filters=RunsFilter(statuses=success))
    tagged = {
        value: set(
            instance.get_run_ids(filters=RunsFilter(statuses=success, tags={CHANGED_TAG: value}))
        )
        for value in ("true", "false")
    }
    unchanged: list[str] = []  # newest first
    for run_id in successful:
        if run_id in tagged["true"]:
            continue
        if run_id not in tagged["false"]:
            changed = run_changed(instance, run_id)
            instance.add_run_tags(run_id, {CHANGED_TAG: "true" if changed else "false"})
            if changed:
                continue
        unchanged.append(run_id)
    doomed = unchanged[keep:]
    for run_id in doomed:
        instance.delete_run(run_id)
    if doomed:
        log.info(
            "Dagster history: %d older runs that changed nothing deleted, the newest %d kept",
            len(doomed),
            min(keep, len(unchanged)),
        )
    return Pruned(deleted=len(doomed), kept_unchanged=len(unchanged) - len(doomed))
