"""The code location loads offline, and its asset graph is the one we mean to ship.

The snapshot of asset keys and checks makes a rename visible in review: a renamed raw
table or model changes what analysts and the product read.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from assets.foundation.settings import PROJECT_ROOT
from pipelines.definitions import build_definitions

EXPECTED_ASSETS = {
    "francetravail_rome/landing",
    "francetravail_rome/referentiel_code_rome",
    "francetravail_rome/referentiel_appellation",
    "francetravail_rome/cr_gd_dp",
    "francetravail_rome/grand_domaine",
    "francetravail_rome/domaine_professionnel",
    "francetravail_rome/rubrique_mobilite",
    "francetravail_rome/texte",
    "francetravail_rome/arborescence_secteur_naf",
    "francetravail_rome/type_referentiel",
    "etalab_decoupage_administratif/landing",
    "etalab_decoupage_administratif/departements",
    "etalab_decoupage_administratif/regions",
    "francetravail_bmo/landing",
    "francetravail_bmo/projects",
    "insee_chomage_localise/landing",
    "insee_chomage_localise/rates",
    "insee_chomage_zone_emploi/landing",
    "insee_chomage_zone_emploi/txcho_ze",
    "insee_chomage_zone_emploi/txcho_parties_reg",
    "insee_zonage_ze2020/landing",
    "insee_zonage_ze2020/zones",
    "insee_zonage_ze2020/composition_communale",
    "dares_fap/landing",
    "dares_fap/fap2021",
    "dares_fap/fap2009_rome",
    "dares_fap2021_rome/landing",
    "dares_fap2021_rome/rome_qualif_fap341",
    "dares_fap2021_rome/fap2021_tree",
    "dares_tensions/landing",
    "dares_tensions/tensions",
    "dares_tensions/evol_tensions",
    "francetravail_marche_travail/landing",
    "francetravail_marche_travail/indicators",
    "francetravail_marche_travail/rome_fap",
    "francetravail_offres/landing",
    "francetravail_offres/offers",
    "int_job_classification__rome_to_fap",
    "dim_job_group",
    "dim_job_title",
    "dim_departement",
    "dim_region",
    "fct_job_group_mobility",
    "diag_job_groups",
    "diag_departements",
    "diag_regions",
    "diag_best_jobs_in_area",
    "diag_job_group_info",
    "diag_local_diagnosis",
    "fct_contract_mix",
    "fct_hiring_needs",
    "fct_less_stressful_job_groups",
    "fct_market_tension",
    "fct_offers_trend",
    "fct_salary",
    "fct_unemployment",
    "int_job_classification__bmo_to_rome",
    "int_bmo__cells",
    "int_bmo__cell_bounds",
    "diag_hiring_headlines",
    "bmo_published_headlines",
    "bmo_expected_top_fiches",
    "fap2009_rome_supplement",
    "insee_published_unemployment",
    "int_market__api_cells",
    "int_market__job_group_departement",
    "int_market__rome_fap_tension",
    "int_offers__active_months",
    "int_offers__offers",
    "exports/diagnostic_tables",
    "exports/report",
}


def asset_keys(defs: dg.Definitions) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get_all_asset_keys()}


def test_definitions_hold_the_expected_graph():
    defs = build_definitions()
    keys = asset_keys(defs)
    assert keys >= EXPECTED_ASSETS
    staging = {k for k in keys if k.startswith("stg_")}
    assert "stg_francetravail_rome__referentiel_code_rome" in staging
    assert "stg_etalab_decoupage_administratif__departements" in staging
    unexpected = keys - EXPECTED_ASSETS - staging
    assert not unexpected, f"new or renamed assets: {sorted(unexpected)}"
    for job in ("refresh_all", "ingest_sources", "build_warehouse", "publish_exports"):
        assert defs.resolve_job_def(job)


def test_every_raw_table_has_a_blocking_contract_check():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    raw_tables = {
        k for k in EXPECTED_ASSETS if "/" in k and not k.endswith("/landing") and "exports" not in k
    }
    assert {(t, "contract") for t in raw_tables} <= checks
    # dbt tests arrive as checks too (keys, patterns, relationships).
    assert any(asset == "dim_departement" for asset, _ in checks)


def test_code_location_loads_as_dagster_loads_it():
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
