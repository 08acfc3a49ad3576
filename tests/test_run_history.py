"""Runs that changed nothing are pruned from a real Dagster instance (deploy/dagster.yaml's
pooled SQLite storage), keeping every run that changed something or did not succeed."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import prune_history
from pipelines.run_history import CHANGED_TAG, prune_unchanged_runs, run_changed

ROOT = Path(__file__).resolve().parents[1]


class Outcome(dg.Config):
    """What the step reports: a rebuild, nothing new, or a landing with `new_files` files."""

    unchanged: bool = True
    new_files: int = 0
    fail: bool = False


@dg.asset
def model(config: Outcome) -> dg.MaterializeResult:
    if config.fail:
        raise RuntimeError("the build failed")
    return dg.MaterializeResult(metadata={"unchanged": config.unchanged})


@dg.asset
def landing(config: Outcome) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"mode": "mirror", "new_files": config.new_files})


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.from_config(str(home))


def _run(instance: dg.DagsterInstance, asset=model, **outcome) -> str:
    config = {"ops": {asset.key.to_python_identifier(): {"config": outcome}}}
    result = dg.materialize([asset], instance=instance, run_config=config, raise_on_error=False)
    return result.run_id


def _shard(instance: dg.DagsterInstance, run_id: str) -> Path:
    return Path(instance.event_log_storage.path_for_shard(run_id))


def test_older_unchanged_runs_go_and_everything_else_stays(instance):
    changed = _run(instance, unchanged=False)
    old = [_run(instance) for _ in range(4)]
    failed = _run(instance, fail=True)
    newest = _run(instance)
    assert all(_shard(instance, run_id).exists() for run_id in old)

    pruned = prune_unchanged_runs(instance, keep=2)

    # Unchanged, newest first: newest, old[3] (kept), old[2], old[1], old[0] (deleted).
    assert pruned.deleted == 3
    assert pruned.kept_unchanged == 2
    remaining = {record.dagster_run.run_id for record in instance.get_run_records()}
    assert remaining == {changed, failed, old[3], newest}
    for run_id in old[:3]:
        assert not _shard(instance, run_id).exists()
        assert not instance.all_logs(run_id)  # (reading a run creates an empty shard)
    # What the kept runs say is still there: the latest materialization, the failure.
    latest = instance.get_latest_materialization_event(model.key)
    assert latest is not None and latest.run_id == newest
    assert instance.get_run_by_id(failed).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(changed).tags[CHANGED_TAG] == "true"
    assert instance.get_run_by_id(newest).tags[CHANGED_TAG] == "false"

    # A second prune finds nothing more to delete; a new no-op pushes out the oldest kept.
    assert prune_unchanged_runs(instance, keep=2).deleted == 0
    _run(instance)
    assert prune_unchanged_runs(instance, keep=2).deleted == 1
    assert instance.get_run_by_id(old[3]) is None
    assert instance.get_run_by_id(changed) is not None


def test_a_landing_counts_as_changed_when_it_brought_files(instance):
    assert run_changed(instance, _run(instance, landing, new_files=1))
    assert not run_changed(instance, _run(instance, landing, new_files=0))
    assert run_changed(instance, _run(instance, unchanged=False))


def test_keep_must_leave_the_newest(instance):
    with pytest.raises(ValueError, match="keep=0"):
        prune_unchanged_runs(instance, keep=0)


def test_the_cli_prunes_after_a_run_and_reports_it(instance, monkeypatch, capsys):
    from assets.foundation.settings import get_settings

    for _ in range(3):
        _run(instance)
    monkeypatch.setenv("TREMPLIN_KEEP_UNCHANGED_RUNS", "1")
    prune_history(instance, get_settings())
    assert "2 older runs that changed nothing deleted" in capsys.readouterr().out
    assert len(instance.get_run_records()) == 1
    # An ephemeral instance (no DAGSTER_HOME) has no history to prune.
    with dg.DagsterInstance.ephemeral() as ephemeral:
        prune_history(ephemeral, get_settings())


def test_the_setting_refuses_zero(monkeypatch):
    from assets.foundation.settings import get_settings

    monkeypatch.setenv("TREMPLIN_KEEP_UNCHANGED_RUNS", "0")
    with pytest.raises(ValueError, match="TREMPLIN_KEEP_UNCHANGED_RUNS"):
        get_settings()
