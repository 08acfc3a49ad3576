"""Benchmark harness: the generator is deterministic and its files are what the source
modules read; the results table and JSON hold every figure. (The benchmark itself is run
by `make bench`, never by the test suite.)"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from assets.ingest.landing import land_file
from assets.mirror import bench_inputs as gen
from assets.mirror import synthetic_francetravail as synth
from assets.sources import francetravail_bmo as bmo
from assets.sources import francetravail_marche_travail as mt
from assets.sources import francetravail_offres as fo
from pipelines.bench import run
from pipelines.sources import source_modules

TINY = dataclasses.replace(
    synth.SCALES["medium"],
    name="medium",
    rome_sample=6,
    quarters=synth._quarters(2024, 4, 2),
    tension_years=(2025,),
    salary_years=(2025,),
    snapshots=(date(2025, 1, 15), date(2025, 4, 15)),
    offers_per_snapshot=120,
    page_size=50,
    rome_chunk=4,
)


@pytest.fixture(scope="module")
def tiny_scale():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(synth.SCALES, "medium", TINY)
        mp.setitem(gen.BMO_YEARS, "medium", (2019,))
        yield


def _generate(out: Path) -> Path:
    return gen.generate_mirror(out, "medium", workers=1, bmo_rows=300, log=lambda *_: None)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_mirror(tiny_scale, tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("bench") / "medium")


def test_same_seed_same_bytes(tiny_mirror, tmp_path):
    again = _generate(tmp_path / "medium")
    assert _tree(again) == _tree(tiny_mirror)
    assert (tiny_mirror / gen.COMPLETE_MARKER).exists()


def test_every_source_finds_its_files_and_synthetic_ones_are_labelled(tiny_mirror):
    for module in source_modules():
        names = [p.name for p in (tiny_mirror / module.SPEC.slug).iterdir()]
        for pattern in module.SPEC.mirror_patterns:
            assert any(fnmatch.fnmatch(n, pattern) for n in names), (module.SPEC.slug, pattern)
    chunked = sorted((tiny_mirror / mt.SLUG).glob("synthetic__stat-offres__DEP__2025__r*.json.gz"))
    assert [p.name[-11:] for p in chunked] == ["r00.json.gz", "r01.json.gz"]
    provenance = (tiny_mirror / "BENCH_PROVENANCE.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in provenance and "Base_open_data_BMO_2019.xlsx" in provenance


def _land(paths, landing: Path, slug: str):
    return [
        land_file(landing, slug, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


def test_generated_files_parse(tiny_mirror, tmp_path):
    offers = fo.parse(_land(sorted((tiny_mirror / fo.SLUG).glob("*.json.gz")), tmp_path, fo.SLUG))
    table = offers["offers"]
    assert table.rows == 240 and table.partition == "2025-04-15"
    assert set(table.frame["snapshot_date"]) == {"2025-01-15", "2025-04-15"}

    marche = mt.parse(_land(sorted((tiny_mirror / mt.SLUG).glob("*.json.gz")), tmp_path, mt.SLUG))
    indicators = marche["indicators"].frame
    assert indicators["activity_code"].nunique() == 6
    assert set(indicators["period_code"]) >= {"2024T4", "2025T1", "2025"}

    workbooks = sorted((tiny_mirror / bmo.SLUG).glob("Base_open_data_BMO_*.xlsx"))
    projects = bmo.parse(_land(workbooks, tmp_path, bmo.SLUG))["projects"].frame
    assert set(projects["survey_year"]) == {"2019", "2024"}
    synthetic = projects[projects["survey_year"] == "2019"]
    assert len(synthetic) == 300 and set(synthetic["bassin_year"]) == {"2019"}
    assert (
        synthetic["met_masked"].any() and synthetic.loc[synthetic["met_masked"], "met"].isna().all()
    )


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark scale"):
        gen.generate_mirror(tmp_path, "galactic")


def _results() -> dict:
    results = {
        "scale": "medium",
        "git_sha": "abc1234567",
        "timestamp": "2026-11-25T19:00:00Z",
        "inputs": {"files": 12, "bytes": 3 * 2**20},
        "read_floor": {"seconds": 10.0},
        "tremplin": {
            "seconds": 50.0,
            "peak_rss_mb": 900,
            "orchestration_s": 12.0,
            "stages": {"dbt build": {"seconds": 20.0, "peak_rss_mb": 500, "steps": 1}},
        },
        "tremplin_noop": {"seconds": 14.0, "peak_rss_mb": 400},
        "pandas": {"seconds": 600.0, "peak_rss_mb": 5000, "ok": True},
    }
    results["ratios"] = run.ratios(results)
    results["targets"] = run.targets(results)
    return results


def test_ratios_and_targets():
    results = _results()
    assert results["ratios"] == {
        "tremplin_vs_read_floor": 5.0,
        "tremplin_minus_3x_floor_s": 20.0,
        "pandas_vs_tremplin": 12.0,
    }
    assert results["targets"] == {
        run.TARGETS["e2e_vs_floor_plus_30"]: True,
        run.TARGETS["ahead_of_pandas"]: True,
    }
    results["tremplin"]["seconds"] = 61.0
    assert not run.targets(results)[run.TARGETS["e2e_vs_floor_plus_30"]]
    results["tremplin"]["seconds"] = 50.0
    results["tremplin"]["ok"] = False  # a run that stopped early meets nothing
    assert not any(run.targets(results).values())


def test_each_scale_checks_the_targets_of_its_line_in_the_table():
    results = _results()
    results["scale"] = "small"
    results["tremplin"]["seconds"], results["tremplin_noop"]["seconds"] = 39.0, 6.0
    checked = run.targets(results)
    assert checked == {
        run.TARGETS["e2e_embedded"]: True,
        run.TARGETS["noop_embedded"]: False,
        run.TARGETS["ahead_of_pandas"]: True,
    }
    results["targets"] = checked
    table = run.format_table(results)
    assert f"[ ] {run.TARGETS['noop_embedded']}  (6.0 s)" in table
    assert f"[x] {run.TARGETS['e2e_embedded']}  (39.0 s)" in table
    results["scale"] = "national"
    results["tremplin"]["peak_rss_mb"] = 3500
    results["tremplin_noop"]["seconds"] = 9.5
    assert run.targets(results) == {
        run.TARGETS["e2e_vs_floor"]: False,  # 39 s against 3 x 10 s
        run.TARGETS["peak_rss"]: False,
        run.TARGETS["noop_national"]: True,
        run.TARGETS["ahead_of_pandas"]: True,
    }


def test_table_and_json_hold_every_figure(tmp_path):
    results = _results()
    table = run.format_table(results)
    for text in ("read floor", "tremplin run (end to end)", "dbt build", "no-op", "pandas"):
        assert text in table
    assert "pandas_vs_tremplin" in table and "12.0" in table
    path = run.write_results(results, tmp_path)
    assert path.name == "medium-abc1234567-20261125T190000Z.json"
    assert json.loads(path.read_text()) == results


def test_keep_refuses_a_folder_that_holds_something(tmp_path):
    """The kept warehouse must be this run's alone: nothing is measured into a used folder."""
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "warehouse.duckdb").write_text("someone's")
    with pytest.raises(SystemExit, match="is not empty"):
        run.benchmark("small", out_root=tmp_path / "out", keep=tmp_path / "keep")
    assert not (tmp_path / "out").exists()  # refused before generating anything


def test_memory_cap_turns_exhaustion_into_a_memory_error(tmp_path):
    """The pandas baseline runs under a cap: nationally it fails cleanly, saying where."""
    command = [sys.executable, "-c", "import sys; print('start', flush=True); bytearray(2**31)"]
    measured = run.measure(command, {**os.environ}, tmp_path / "log", memory_cap=2**30)
    assert measured.returncode == 1
    assert "MemoryError" in measured.output and "start" in measured.output
    uncapped = run.measure(command, {**os.environ}, tmp_path / "log2")
    assert uncapped.returncode == 0
    failed = {"indicator": "offers_trend", "error": "MemoryError", "seconds": 12.5}
    line = run.pandas_failure(measured, failed, cap=2**31)
    assert line.startswith("MemoryError in offers_trend after 12.5 s (address-space cap 2.0 GB")


def test_a_timeout_ends_the_whole_process_tree(tmp_path):
    """A build past its budget is ended with its children (dbt's JVM), keeping its log."""
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "open(sys.argv[1], 'w').write(str(child.pid)); print('started', flush=True); "
        "time.sleep(60)"
    )
    pid_file = tmp_path / "child.pid"
    measured = run.measure(
        [sys.executable, "-c", script, str(pid_file)], {**os.environ}, tmp_path / "log", timeout=3
    )
    assert measured.timed_out and measured.seconds < 30
    assert "started" in measured.output
    child = int(pid_file.read_text())
    for _ in range(50):  # the grandchild is gone too (reaped by init shortly after)
        if not Path(f"/proc/{child}").exists() or "Z" in _state(child):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"process {child} survived the timeout")
    finished = run.measure(
        [sys.executable, "-c", "print(1)"], {**os.environ}, tmp_path / "l2", timeout=30
    )
    assert not finished.timed_out and finished.returncode == 0


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


DBT_CONSOLE = """\
1 of 1 OK hook: tremplin.on-run-start.0 ........................................ [OK in 21.06s]
1 of 333 OK loaded seed file main.bmo_expected_top_fiches ............... [INSERT 14 in 0.26s]
2 of 333 START sql table model main.fct_hiring_needs ........................... [RUN]
2 of 333 OK created sql table model main.fct_hiring_needs ...................... [OK in 398.50s]
3 of 333 PASS not_null_columns_fct_hiring_needs ................................ [PASS in 1.24s]
"""


def test_a_stopped_build_says_how_far_it_got():
    from pipelines.bench import spark_build

    assert spark_build.progress(DBT_CONSOLE) == {"finished": 3, "of": 333, "finished_s": 400.0}
    assert spark_build.progress("") == {"finished": 0, "of": None, "finished_s": 0.0}
    stopped = {
        "ok": False,
        "timed_out": True,
        "timeout_s": 3600.0,
        "seconds": 3600.4,
        "peak_rss_mb": 5000,
        "outside_nodes_s": 3600.4,
        "slowest": [],
        "progress": spark_build.progress(DBT_CONSOLE),
    }
    done = {"ok": True, "seconds": 120.0, "peak_rss_mb": 2900, "outside_nodes_s": 10.0}
    results = {"duckdb": done, "spark": stopped, "caveat": spark_build.CAVEAT}
    results["parity"] = {"tables": 0, "differing": [], "skipped": "a build did not finish"}
    lines = "\n".join(spark_build.format_rows(results))
    assert "spark (STOPPED at 3600 s)" in lines
    assert "nodes finished: 3 of 333" in lines
    assert "parity: not compared (a build did not finish)" in lines


def test_failed_pandas_baseline_is_reported_with_its_cause():
    results = _results()
    results["pandas"] = {
        "seconds": 358.0,
        "peak_rss_mb": 17000,
        "ok": False,
        "error": "MemoryError in offers_trend after 300 s",
    }
    results["ratios"] = run.ratios(results)
    results["targets"] = run.targets(results)
    table = run.format_table(results)
    assert "pandas baseline (FAILED)" in table
    assert "stopped: MemoryError in offers_trend after 300 s" in table
    assert results["ratios"]["pandas_vs_tremplin"] is None
    # pandas out of memory under the cap never finishes: a tremplin run that does is ahead.
    assert results["targets"][run.TARGETS["ahead_of_pandas"]]
    assert "pandas did not finish: MemoryError in offers_trend" in table
    results["pandas"]["error"] = "killed by signal 9 (out of memory?)"  # no pandas time at all
    assert not run.targets(results)[run.TARGETS["ahead_of_pandas"]]
    results["tremplin"]["ok"] = False
    assert not run.targets(results)[run.TARGETS["ahead_of_pandas"]]


def _sorted_frame(frame, keys):
    return frame.sort_values(keys).reset_index(drop=True)


BASELINE_KEYS = {
    "offers_per_jobseeker": ["rome_code", "departement_code", "quarter"],
    "bmo_shares": ["annee", "metier_code", "departement_code"],
    "offers_trend": ["rome_code", "departement_code", "month"],
}


def test_polars_baseline_gives_the_pandas_numbers(tiny_mirror):
    from pandas.testing import assert_frame_equal

    from pipelines.bench import pandas_baseline, polars_baseline

    for name, build in polars_baseline.INDICATORS:
        keys = BASELINE_KEYS[name]
        expected = getattr(pandas_baseline, name)(tiny_mirror)
        got = build(tiny_mirror).to_pandas()
        assert sorted(got.columns) == sorted(expected.columns), name
        assert len(got) > 0, name
        assert_frame_equal(
            _sorted_frame(got[list(expected.columns)], keys),
            _sorted_frame(expected, keys),
            check_dtype=False,
        )


def test_baselines_give_the_numbers_tremplin_parses(tiny_mirror, tmp_path):
    """The offers per 10 job seekers of both baselines, from the values tremplin's own
    parser lands in the raw layer (what the warehouse is built from)."""
    import pandas as pd

    from pipelines.bench import pandas_baseline, polars_baseline

    marche = mt.parse(_land(sorted((tiny_mirror / mt.SLUG).glob("*.json.gz")), tmp_path, mt.SLUG))
    raw = marche["indicators"].frame
    totals = raw[
        raw["indicator_code"].isin(["DE_1", "OFF_1"])
        & (raw["territory_type"] == "DEP")
        & raw["characteristic_type"].isna()
    ]
    by_indicator = {
        code: {
            (r.activity_code, r.territory_code, r.period_code): (
                None if pd.isna(r.value) else float(r.value)
            )
            for r in totals[totals["indicator_code"] == code].itertuples()
        }
        for code in ("DE_1", "OFF_1")
    }
    seekers, offers = by_indicator["DE_1"], by_indicator["OFF_1"]
    expected = {
        key: 10 * offers[key] / seekers[key]
        if seekers[key] and seekers[key] > 0 and offers[key] is not None
        else None
        for key in seekers.keys() & offers.keys()
    }
    assert expected
    for frame in (
        pandas_baseline.offers_per_jobseeker(tiny_mirror),
        polars_baseline.offers_per_jobseeker(tiny_mirror).to_pandas(),
    ):
        got = {
            (r.rome_code, r.departement_code, r.quarter): r.offers_per_10_jobseekers
            for r in frame.itertuples()
        }
        assert got.keys() == expected.keys()
        for key, ratio in expected.items():
            if ratio is None:
                assert got[key] is None or got[key] != got[key], key  # missing stays missing
            else:
                assert got[key] == pytest.approx(ratio), key


def test_explain_timing_is_a_target_and_a_row():
    results = _results()
    results["explain"] = {
        "calls": [
            {
                "table": "regions",
                "key": "11",
                "field": "unemployment.ratePct",
                "wall_s": 0.6,
                "explain_s": 0.1,
                "cells": 2,
            },
            {
                "table": "local_diagnosis",
                "key": "00:X",
                "field": "market.level",
                "error": "tremplin explain: unknown key",
            },
        ],
        "ok": False,
        "max_wall_s": 0.6,
        "max_explain_s": 0.1,
    }
    results["targets"] = run.targets(results)
    assert results["targets"][run.TARGETS["explain"]] is False
    table = run.format_table(results)
    assert "tremplin explain (max of 2)" in table
    assert "explain local_diagnosis 00:X: tremplin explain: unknown key" in table
    results["explain"]["ok"] = True
    assert run.targets(results)[run.TARGETS["explain"]] is True


def _baseline(compute: float) -> dict:
    return {
        "ok": True,
        "seconds": 10 * compute,
        "peak_rss_mb": 100,
        "indicators": {
            name: {"rows": 1, "seconds": compute, "read_seconds": 0, "compute_seconds": compute / 3}
            for name in ("offers_per_jobseeker", "bmo_shares", "offers_trend")
        },
    }


def test_indicator_step_lines_and_targets():
    from pipelines.bench import indicator_step

    results = _results()
    results["indicator_step"] = {"ok": True, "seconds": 9.0, "models": 40, "models_s": 2.0}
    results["pandas"], results["polars"] = _baseline(30.0), _baseline(1.5)
    figures = indicator_step.comparisons(results)
    assert figures == {
        "pandas": {"compute_s": 30.0, "speedup": 15.0},
        "polars": {"compute_s": 1.5, "speedup": 0.75},
    }
    assert indicator_step.targets(results) == {
        indicator_step.TARGETS["pandas"]: True,
        indicator_step.TARGETS["polars"]: False,
    }
    results["targets"] = {**run.targets(results), **indicator_step.targets(results)}
    table = run.format_table(results)
    assert "dbt models own time (40)" in table and "pandas compute" in table
    assert f"[x] {indicator_step.TARGETS['pandas']}" in table
    assert f"[ ] {indicator_step.TARGETS['polars']}" in table
    results["polars"]["ok"] = False  # a baseline that did not finish has no ratio
    assert indicator_step.comparisons(results)["polars"] == {"compute_s": None, "speedup": None}


def test_indicator_step_builds_the_headline_models_on_the_small_scale(tmp_path):
    """The dbt side of the indicator step, on the raw layer of the embedded mirror."""
    import duckdb
    from dbt_fixtures import write_raw_fixtures

    from pipelines.bench import indicator_step

    write_raw_fixtures(tmp_path / "warehouse" / "raw")
    step = indicator_step.time_dbt_indicators(tmp_path / "warehouse", tmp_path / "step")
    assert step["ok"], step.get("error")
    assert step["models"] >= len(indicator_step.HEADLINE_MODELS) and step["models_s"] > 0
    con = duckdb.connect(str(tmp_path / "step" / "indicators.duckdb"), read_only=True)
    for model in indicator_step.HEADLINE_MODELS.values():
        assert con.execute(f"select count(*) from {model}").fetchall()[0][0] > 0, model
    con.close()
    assert not (tmp_path / "warehouse" / "warehouse.duckdb").exists()


def test_models_only_leaves_the_data_tests_out_of_both_builds(tmp_path, monkeypatch):
    from pipelines.bench import measure, spark_build
    from pipelines.spark_engine import WITHOUT_TESTS

    commands = []

    def fake_measure(command, env, log, timeout=None):
        commands.append(list(command))
        return measure.Measured(seconds=1.0, returncode=0, output="")

    monkeypatch.setattr(measure, "measure", fake_measure)
    monkeypatch.setattr(measure, "settle", lambda: 0.0)
    spark_build.build("duckdb", tmp_path / "raw", tmp_path, models_only=True)
    spark_build.build("spark", tmp_path / "raw", tmp_path)
    only_models, everything = commands
    assert only_models[only_models.index("--target") + 1] == "dev"
    assert only_models[-4:] == list(WITHOUT_TESTS)
    assert "--exclude-resource-type" not in everything
    lines = "\n".join(
        spark_build.format_rows(
            {
                "models_only": True,
                "duckdb": {"ok": True, "seconds": 1.0, "peak_rss_mb": 1, "outside_nodes_s": 0.0},
                "spark": {
                    "ok": True,
                    "seconds": 2.0,
                    "peak_rss_mb": 2,
                    "outside_nodes_s": 0.0,
                    "slowest": [],
                },
                "parity": {"tables": 19, "differing": []},
                "caveat": spark_build.CAVEAT,
            }
        )
    )
    assert "models+seeds, same raw Parquet" in lines
    assert "parity: 19 of 19 mart and diagnostic tables equal" in lines


def test_bench_passes_models_only_to_the_engine_builds(tmp_path, monkeypatch):
    """`make bench ENGINE=spark MODELS_ONLY=1` reaches `engine_builds(models_only=True)`."""
    from pipelines.bench import run

    seen = {}

    class Stop(Exception):
        pass

    def fake_benchmark(scale, **kwargs):
        seen.update(kwargs, scale=scale)
        raise Stop

    monkeypatch.setattr(run, "benchmark", fake_benchmark)
    with pytest.raises(Stop):
        run.main(["--scale", "national", "--engine", "spark", "--models-only"])
    assert seen["scale"] == "national" and seen["engine"] == "spark" and seen["models_only"]
    seen.clear()
    with pytest.raises(Stop):
        run.main(["--scale", "small", "--engine", "spark"])
    assert seen["models_only"] is False
