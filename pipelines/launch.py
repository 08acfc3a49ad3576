"""Runs started by `tremplin` that belong to their job in the Dagster UI.

`JobDefinition.execute_in_process` records a run with no code origin: the UI lists it under
/runs, but its Jobs pages, the Overview timeline and the asset pages only show runs whose
origin is the repository of a loaded code location (they filter on the run's
`.dagster/repository` label). `execute_job` records the run the way the UI or a schedule
does, with the origin of the `workspace.yaml` code location the UI loads, and then runs it
here, in this process, on the in-process executor, as `execute_in_process` would: the
steps, the event log and the result are the same; only the run record gains its origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import dagster as dg

from assets.foundation.settings import PROJECT_ROOT

WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
# The attribute of `pipelines.definitions` that holds the Definitions (`@dg.definitions`).
DEFINITIONS_ATTRIBUTE = "defs"
# Every CLI run executes its steps one after the other in this process, like
# `execute_in_process`; the jobs' default executor would start a process per step.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@dataclass(frozen=True)
class RunResult:
    """What the CLI reads of a finished run (the attributes of `execute_in_process`'s result)."""

    run_id: str
    success: bool
    dagster_run: Any
    all_events: list
    job_def: dg.JobDefinition

    def get_asset_materialization_events(self) -> list:
        return [e for e in self.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]


@cache
def repository_origin():
    """The origin of the repository of the workspace's code location, as the UI loads it."""
    from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
    from dagster._core.remote_origin import RemoteRepositoryOrigin
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    origins = WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)]).create_origins()
    if len(origins) != 1:
        raise RuntimeError(f"{WORKSPACE_FILE} should load one code location, not {len(origins)}")
    return RemoteRepositoryOrigin(
        code_location_origin=origins[0], repository_name=SINGLETON_REPOSITORY_NAME
    )


def repository_label() -> str:
    """`<repository>@<code location>`: the label the UI's Jobs pages filter runs on."""
    return repository_origin().get_label()


def _job_code_origin(job_name: str):
    """Where a run worker would load the job from: the module the workspace names."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    target = repository_origin().code_location_origin.loadable_target_origin
    repository = ReconstructableRepository.for_module(
        target.module_name, DEFINITIONS_ATTRIBUTE, target.working_directory
    )
    return repository.get_python_origin().get_job_origin(job_name)


def execute_job(
    job_def: dg.JobDefinition,
    instance: dg.DagsterInstance,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partition_key: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunResult:
    """Record a run of `job_def` with the workspace's origin and execute it in process.

    `on_event` sees every Dagster event as it happens (the console's progress display).
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run_iterator
    from dagster._core.execution.execute_in_process import merge_run_tags
    from dagster._core.storage.dagster_run import DagsterRunStatus

    config = {**(run_config or {}), **IN_PROCESS}
    if partition_key and job_def.partitioned_config and not run_config:
        config = {
            **job_def.partitioned_config.get_run_config_for_partition_key(partition_key),
            **config,
        }
    selection = set(asset_selection) if asset_selection else None
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=config,
        tags=merge_run_tags(job_def, partition_key, tags, asset_selection, instance, config),
        asset_selection=selection,
        remote_job_origin=repository_origin().get_job_origin(job_def.name),
        job_code_origin=_job_code_origin(job_def.name),
    )
    events = []
    for event in execute_run_iterator(InMemoryJob(job_def), run, instance):
        events.append(event)
        if on_event is not None:
            on_event(event)
    finished = instance.get_run_by_id(run.run_id)
    return RunResult(
        run_id=run.run_id,
        success=finished is not None and finished.status == DagsterRunStatus.SUCCESS,
        dagster_run=finished,
        all_events=events,
        job_def=job_def,
    )
