"""The synthetic France Travail mirror: deterministic, in the spec's exact shape, and
buildable by dbt staging for both API sources."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import jsonschema
import pytest

from assets.foundation.settings import PROJECT_ROOT
from assets.ingest.landing import land_file
from assets.ingest.raw import raw_path, write_parquet_atomically
from assets.mirror.synthetic_francetravail import generate, main
from assets.sources import francetravail_marche_travail as mt
from assets.sources import francetravail_offres as fo

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
SPECS = {
    mt.SLUG: FIXTURES / mt.SLUG / "openapi_marche_travail_v1.json",
    fo.SLUG: FIXTURES / fo.SLUG / "openapi_offres_emploi_v2.json",
}


def digest_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.gz"))}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    assert main(["--scale", "small", "--out", str(out)]) == 0
    return out


def test_same_seed_same_bytes_and_the_committed_mirror_is_current(generated, tmp_path):
    generate(tmp_path, "small")
    assert digest_tree(tmp_path) == digest_tree(generated)
    for slug in (mt.SLUG, fo.SLUG):
        committed = {p.name: p.read_bytes() for p in (MIRROR / slug).glob("synthetic__*")}
        assert committed == {p.name: p.read_bytes() for p in (generated / slug).iterdir()}, (
            f"warehouse/mirror/{slug} is stale: regenerate it with "
            "python -m assets.mirror.synthetic_francetravail --scale small --out warehouse/mirror"
        )


def test_another_seed_gives_other_values(generated, tmp_path):
    generate(tmp_path, "small", seed=7)
    name = f"{mt.SLUG}/synthetic__stat-demandeurs__DEP__2025.json.gz"
    assert (tmp_path / name).read_bytes() != (generated / name).read_bytes()


def test_regeneration_replaces_old_synthetic_files_only(generated, tmp_path):
    out = tmp_path / fo.SLUG
    out.mkdir()
    (out / "synthetic__offres__1999-01-01__p00000.json.gz").write_bytes(b"old")
    (out / "PROVENANCE.md").write_text("kept")
    generate(tmp_path, "small")
    assert not (out / "synthetic__offres__1999-01-01__p00000.json.gz").exists()
    assert (out / "PROVENANCE.md").read_text() == "kept"


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, "huge")


def strict_keys(instance, schema, components, where="") -> list[str]:
    """Keys of `instance` that the spec's schema does not declare (recursively)."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    problems = []
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key not in props:
                problems.append(f"{where}.{key}")
            else:
                problems += strict_keys(value, props[key], components, f"{where}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for item in instance[:50]:
            problems += strict_keys(item, schema["items"], components, f"{where}[]")
    return problems


@pytest.mark.parametrize(
    ("slug", "pattern", "schema_name"),
    [
        (mt.SLUG, "synthetic__stat-*.json.gz", "IndicateurRetour"),
        (mt.SLUG, "synthetic__salaire-*.json.gz", "IndicateurRetour"),
        (mt.SLUG, "synthetic__rechercherActivitesRomeFap.json.gz", "ListeRomeFap"),
        (fo.SLUG, "synthetic__offres__*.json.gz", "ResultatRecherche"),
    ],
)
def test_files_have_the_exact_shape_of_the_spec(generated, slug, pattern, schema_name):
    spec = json.loads(SPECS[slug].read_text(encoding="utf-8"))
    components = spec["components"]["schemas"]
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    files = sorted((generated / slug).glob(pattern))
    assert files
    for path in files[:6]:
        document = json.loads(gzip.decompress(path.read_bytes()))
        jsonschema.validate(document, schema)
        assert strict_keys(document, components[schema_name], components) == [], path.name


def test_the_real_page_has_the_shape_the_generator_imitates():
    spec = json.loads(SPECS[fo.SLUG].read_text(encoding="utf-8"))
    schema = {"$ref": "#/components/schemas/ResultatRecherche", "components": spec["components"]}
    page = json.loads((FIXTURES / fo.SLUG / "offres_2025-11-13_page0.json").read_text())
    jsonschema.validate(page, schema)


# ----------------------------------------------------------------------- dbt staging


def _dbt() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


@pytest.mark.slow
def test_dbt_staging_builds_for_both_sources(tmp_path: Path):
    raw_dir = tmp_path / "raw"
    for module in (mt, fo):
        source_dir = MIRROR / module.SLUG
        files = [
            land_file(
                tmp_path / "landing",
                module.SLUG,
                p.name,
                p,
                url=p.as_uri(),
                upstream_url=None,
                mode="mirror",
            )
            for p in sorted(source_dir.glob("synthetic__*"))
        ]
        for table, parsed in module.parse(files).items():
            target = raw_path(raw_dir, module.SLUG, table, parsed.partition)
            write_parquet_atomically(parsed.frame, target)
    env = {
        **os.environ,
        "TREMPLIN_RAW_DIR": str(raw_dir),
        "TREMPLIN_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "DO_NOT_TRACK": "1",
    }
    completed = subprocess.run(
        [
            _dbt(),
            "build",
            "--select",
            f"staging.{mt.SLUG}",
            f"staging.{fo.SLUG}",
            f"source:{mt.SLUG}",
            f"source:{fo.SLUG}",
            "--project-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--profiles-dir",
            str(PROJECT_ROOT / "dbt_project"),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert all(r["status"] in ("success", "pass") for r in results), [
        (r["unique_id"], r["status"]) for r in results if r["status"] not in ("success", "pass")
    ]
    assert any("null_iff_masked" in r["unique_id"] for r in results)
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.sql(
            "select count(*), count(*) filter (where is_masked), bool_and(is_synthetic), "
            "min(period_start_date), max(period_start_date) "
            "from stg_francetravail_marche_travail__indicators"
        ).fetchall()
        assert rows[0][:3] == (128_430, rows[0][1], True) and rows[0][1] > 0
        assert str(rows[0][3]) == "2024-01-01" and str(rows[0][4]) == "2025-04-01"
        offers = con.sql(
            "select count(*), count(distinct departement_code), min(snapshot_date), "
            "bool_and(is_synthetic), count(*) filter (where created_at is null) "
            "from stg_francetravail_offres__offers"
        ).fetchall()
        assert offers == [(6000, 101, date(2025, 11, 13), True, 0)]
        assert con.sql(
            "select count(*) from stg_francetravail_marche_travail__rome_fap"
        ).fetchall() == [(1747,)]
