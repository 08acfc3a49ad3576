"""The publication gate: suspicious vintages are written, held, reviewed and accepted."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from diag_warehouse import make_warehouse, run_sql

from assets.export.gate import GatePolicy
from assets.export.publish import publish_export
from assets.export.vintages import held_vintages, verify_export
from assets.foundation.settings import (
    DEFAULT_GATE_HEADLINES,
    HeadlineThreshold,
    get_settings,
    parse_gate_headlines,
)
from pipelines import cli

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
OFFERS = HeadlineThreshold("local_diagnosis", "market__offers_per_10_job_seekers", "median", 25)
POLICY = GatePolicy(max_dropped_pct=5.0, headlines=(OFFERS,))


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_warehouse(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path))
    for name in (
        "TREMPLIN_DUCKDB_PATH",
        "TREMPLIN_GATE_MAX_DROPPED_PCT",
        "TREMPLIN_GATE_HEADLINES",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def publish(state: Path, hours: int, policy: GatePolicy = POLICY):
    return publish_export(
        state / "warehouse.duckdb",
        state / "exports",
        now=NOW + dt.timedelta(hours=hours),
        gate=policy,
    )


def latest(state: Path) -> str:
    return os.readlink(state / "exports" / "latest")


def test_dropping_keys_holds_the_vintage_until_accepted(state: Path, capsys) -> None:
    first = publish(state, 0)
    assert not first.held and latest(state) == first.vintage  # nothing to compare with
    run_sql(
        state / "warehouse.duckdb", "delete from diag_local_diagnosis where departement_code = '2A'"
    )

    held = publish(state, 1)

    assert held.held and held.changed
    assert latest(state) == first.vintage
    assert len(held.hold_reasons) == 1
    reason = held.hold_reasons[0]
    assert reason.startswith("local_diagnosis: 1 of 4 keys (diagnosis_key) (25.0 %) are gone")
    assert "more than the 5 % allowed (TREMPLIN_GATE_MAX_DROPPED_PCT); e.g. 2A:M1805" in reason
    verify_export(held.path)  # built and complete, only not promoted
    record = json.loads((held.path / "publication.json").read_text())
    assert record["status"] == "held" and record["compared_with"] == first.vintage
    assert record["reasons"] == [reason]
    assert held_vintages(state / "exports") == [held.path]

    # The same content again mints nothing new: the held vintage is reported again.
    again = publish(state, 2)
    assert again.held and not again.changed and again.vintage == held.vintage
    assert again.hold_reasons == held.hold_reasons
    assert sorted(p.name for p in (state / "exports").iterdir() if not p.name.startswith(".")) == [
        first.vintage,
        held.vintage,
        "latest",
    ]

    assert cli.main(["accept", held.vintage]) == 0
    out = capsys.readouterr().out
    assert f"latest -> {held.vintage} (was {first.vintage})" in out
    assert latest(state) == held.vintage
    # Accepting it again says so instead of pretending to switch.
    assert cli.main(["accept", held.vintage]) == 0
    assert f"{held.vintage} is already latest: nothing changed" in capsys.readouterr().out
    assert json.loads((held.path / "publication.json").read_text())["status"] == "accepted"
    assert held_vintages(state / "exports") == []
    verify_export(state / "exports" / "latest")


def test_a_drop_within_the_allowed_share_is_published(state: Path) -> None:
    publish(state, 0)
    run_sql(
        state / "warehouse.duckdb", "delete from diag_local_diagnosis where departement_code = '2A'"
    )
    result = publish(state, 1, GatePolicy(max_dropped_pct=25.0, headlines=(OFFERS,)))
    assert not result.held and latest(state) == result.vintage
    assert not (result.path / "publication.json").exists()


def test_a_missing_table_holds_the_vintage(state: Path) -> None:
    first = publish(state, 0)
    tables = {"regions": "diag_regions", "departements": "diag_departements"}
    result = publish_export(
        state / "warehouse.duckdb", state / "exports", tables=tables, now=NOW, gate=POLICY
    )
    assert result.held and latest(state) == first.vintage
    assert any(r.startswith("local_diagnosis: table missing") for r in result.hold_reasons)


def test_a_headline_moving_too_much_holds_and_absent_fields_are_skipped(state: Path) -> None:
    policy = GatePolicy(
        max_dropped_pct=5.0,
        headlines=(
            OFFERS,
            HeadlineThreshold("local_diagnosis", "not_built_yet", "mean", 10),
            HeadlineThreshold("missing_table", "x", "mean", 10),
            HeadlineThreshold("local_diagnosis", "market__confidence", "mean", 10),
        ),
    )
    first = publish(state, 0, policy)
    # Median of 0.8, 1.9, 3.2 is 1.9; +20 % stays within the 25 % allowed.
    run_sql(
        state / "warehouse.duckdb",
        "update diag_local_diagnosis set market__offers_per_10_job_seekers = 2.28 "
        "where diagnosis_key = '01:A1203'",
    )
    within = publish(state, 1, policy)
    assert not within.held and latest(state) == within.vintage

    run_sql(
        state / "warehouse.duckdb",
        "update diag_local_diagnosis set market__offers_per_10_job_seekers = 3.0 "
        "where diagnosis_key = '01:A1203'",
    )
    decision = policy.evaluate(state / "exports" / "latest", _build_unpromoted(state))
    assert decision.held
    assert decision.reasons == [
        "local_diagnosis.market__offers_per_10_job_seekers (median): moved from 2.28 to 3 "
        "(+31.6 %), more than the 25 % allowed (TREMPLIN_GATE_HEADLINES)"
    ]
    assert any(
        "not_built_yet (mean): field not in both vintages, skipped" in n for n in decision.notes
    )
    assert any("missing_table.x: table not in both vintages, skipped" in n for n in decision.notes)
    assert any("market__confidence (mean): not numeric" in n for n in decision.notes)
    assert first.vintage != within.vintage


def _build_unpromoted(state: Path) -> Path:
    """A new vintage of the current warehouse, written but held by an impossible rule."""
    always = HeadlineThreshold("regions", "offers_count", "mean", -1)  # any move at all
    run_sql(state / "warehouse.duckdb", "update diag_regions set offers_count = offers_count + 1")
    result = publish(state, 5, GatePolicy(headlines=(always,)))
    assert result.held
    return result.path


def test_settings_read_the_gate_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TREMPLIN_GATE_MAX_DROPPED_PCT", raising=False)
    monkeypatch.delenv("TREMPLIN_GATE_HEADLINES", raising=False)
    settings = get_settings()
    assert settings.gate_max_dropped_pct == 5.0
    assert settings.gate_headlines == DEFAULT_GATE_HEADLINES
    assert GatePolicy.from_settings(settings).headlines == DEFAULT_GATE_HEADLINES

    monkeypatch.setenv("TREMPLIN_GATE_MAX_DROPPED_PCT", "2.5")
    monkeypatch.setenv(
        "TREMPLIN_GATE_HEADLINES", "local_diagnosis.market__offers_per_10_job_seekers:mean:10; "
    )
    settings = get_settings()
    assert settings.gate_max_dropped_pct == 2.5
    assert settings.gate_headlines == (
        HeadlineThreshold("local_diagnosis", "market__offers_per_10_job_seekers", "mean", 10.0),
    )
    assert parse_gate_headlines("") == ()
    for bad in ("regions.offers_count:max:10", "regions:mean:10", "regions.x:mean:lots"):
        with pytest.raises(ValueError, match="TREMPLIN_GATE_HEADLINES"):
            parse_gate_headlines(bad)
    monkeypatch.setenv("TREMPLIN_GATE_MAX_DROPPED_PCT", "150")
    with pytest.raises(ValueError, match="TREMPLIN_GATE_MAX_DROPPED_PCT"):
        get_settings()


def test_accept_refuses_unknown_and_damaged_vintages(state: Path, capsys) -> None:
    first = publish(state, 0)
    assert cli.main(["accept", "20990101T000000Z"]) == 1
    assert "no vintage '20990101T000000Z'" in capsys.readouterr().err
    run_sql(
        state / "warehouse.duckdb", "delete from diag_local_diagnosis where departement_code = '2A'"
    )
    held = publish(state, 1)
    jsonl = held.path / "regions.jsonl"
    jsonl.write_bytes(jsonl.read_bytes().replace(b'"94"', b'"93"'))
    assert cli.main(["accept", held.vintage]) == 1
    assert "regions.jsonl: expected sha256" in capsys.readouterr().err
    assert latest(state) == first.vintage


def test_tremplin_export_exits_3_when_the_gate_holds(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The Dagster asset reports the hold as a WARN check; the CLI turns it into exit 3."""
    import dagster as dg

    import pipelines.definitions
    from assets.export.asset import build_export_asset

    def small_definitions() -> dg.Definitions:
        return dg.Definitions(
            assets=[build_export_asset([])],
            jobs=[dg.define_asset_job("publish_exports", selection=dg.AssetSelection.all())],
        )

    monkeypatch.setattr(pipelines.definitions, "build_definitions", small_definitions)
    monkeypatch.setenv("TREMPLIN_GATE_HEADLINES", "")
    assert cli.main(["export"]) == 0
    published = latest(state)
    run_sql(state / "warehouse.duckdb", "delete from diag_regions where region_code = '84'")
    capsys.readouterr()

    assert cli.main(["export"]) == cli.EXIT_HELD == 3

    captured = capsys.readouterr()
    assert "the new export is HELD" in captured.out
    assert "regions: 1 of 3 keys (rome_code, region_code) (33.3 %) are gone" in captured.err
    assert f"tremplin accept {held_vintages(state / 'exports')[0].name}" in captured.err
    assert latest(state) == published
    (held,) = held_vintages(state / "exports")
    assert cli.main(["accept", held.name]) == 0
    assert latest(state) == held.name


def test_a_latest_that_cannot_be_read_holds_the_new_vintage(state: Path) -> None:
    first = publish(state, 0)
    (first.path / "regions.parquet").write_bytes(b"not parquet")
    run_sql(state / "warehouse.duckdb", "update diag_regions set offers_count = 1")
    result = publish(state, 1)
    assert result.held and latest(state) == first.vintage
    assert result.hold_reasons[0].startswith(f"cannot compare with latest ({first.vintage})")
