"""Field lineage: the sources, synthetic flags and level values of every exported field, read
from the dbt SQL (compiled) by column lineage, and the docs that must agree with them:
docs/EXPORTS.md, the yml descriptions, the JSON Schemas and the export manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from diag_warehouse import make_warehouse

from assets.dbt_manifest import default_manifest_path, load_models
from assets.export.docs import render_exports_doc
from assets.export.lineage import (
    annotate_models,
    compute_field_lineage,
    dump_field_lineage,
    load_field_lineage,
)
from assets.export.tables import EXPORT_TABLES
from assets.foundation.settings import PROJECT_ROOT

# What a yml "Source: ..." sentence names -> the source families it means.
NAMED_SOURCES = {
    "'Marché du travail' API": {"francetravail_marche_travail"},
    "offers snapshots": {"francetravail_offres"},
    "BMO": {"francetravail_bmo"},
    "DARES tension": {"dares_tensions"},
    "INSEE": {"insee_chomage_localise", "insee_chomage_zone_emploi"},
    "ROME 4": {"francetravail_rome"},
}


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The lineage of the SQL as it is now (dbt compile into a scratch directory)."""
    from pipelines.dbt import compile_models
    from pipelines.sources import source_modules

    synthetic = [m.SPEC.slug for m in source_modules() if m.SPEC.synthetic]
    return compute_field_lineage(compile_models(tmp_path_factory.mktemp("lineage")), synthetic)


@pytest.fixture(scope="module")
def models() -> dict:
    return load_models(default_manifest_path())


def test_committed_field_lineage_is_the_one_the_sql_gives(computed: dict) -> None:
    committed = load_field_lineage()
    differing = [
        f"{table}.{column}"
        for table in sorted(set(computed) | set(committed))
        for column in sorted(set(computed.get(table, {})) | set(committed.get(table, {})))
        if computed.get(table, {}).get(column) != committed.get(table, {}).get(column)
    ]
    assert not differing, f"assets/export/field_lineage.json is stale for {differing[:10]}: " + (
        "run `tremplin docs --exports`"
    )
    assert dump_field_lineage(computed) == dump_field_lineage(committed)


def test_exports_md_regenerates_without_a_diff() -> None:
    expected = render_exports_doc(default_manifest_path())
    current = (PROJECT_ROOT / "docs" / "EXPORTS.md").read_text(encoding="utf-8")
    assert current == expected, "docs/EXPORTS.md is stale: run `tremplin docs --exports`"


def test_every_exported_table_and_column_has_a_lineage(computed: dict, models: dict) -> None:
    for table, relation in EXPORT_TABLES.items():
        assert set(computed[table]) == set(models[relation].columns), table
    # Every value column of the diagnostic tables reaches at least one source.
    sourceless = [
        f"{table}.{column}"
        for table, fields in computed.items()
        for column, entry in fields.items()
        if not entry["sources"] and column != "synthetic"
    ]
    # Counts and constant labels (a scope literal, a count(*)) trace to no source column.
    assert all(re.search(r"(count|scope|synthetic)$", name) for name in sourceless), sourceless


def test_each_level_field_documents_exactly_the_values_its_sql_gives(
    computed: dict, models: dict
) -> None:
    """The yml description of a level field lists its values in backticks; they must be the
    string values the SQL can give it (CASE branches and constants along its lineage)."""
    wrong = []
    checked = 0
    for table, fields in computed.items():
        for column, entry in fields.items():
            if "levels" not in entry:
                continue
            checked += 1
            description = models[EXPORT_TABLES[table]].columns[column].description
            documented = set(re.findall(r"`([a-z][a-z0-9_]*)`", description))
            if documented != set(entry["levels"]):
                wrong.append(f"{table}.{column}: SQL {entry['levels']}, doc {sorted(documented)}")
    assert checked >= 15
    assert not wrong, "\n".join(wrong)


def test_the_known_level_disagreements_are_gone(computed: dict) -> None:
    assert computed["regions"]["unemployment__level"]["levels"] == ["region"]
    assert computed["departements"]["unemployment__level"]["levels"] == ["departement"]
    assert computed["job_group_info"]["market__level"]["levels"] == ["france"]
    assert set(computed["local_diagnosis"]["less_stressful__level"]["levels"]) == set(
        computed["local_diagnosis"]["market__level"]["levels"]
    )


def test_named_sources_and_synthetic_notes_agree_with_the_lineage(
    computed: dict, models: dict
) -> None:
    wrong = []
    for table, fields in computed.items():
        columns = models[EXPORT_TABLES[table]].columns
        for column, entry in fields.items():
            for sentence in re.findall(r"Source: ([^.]*)", columns[column].description):
                named = set().union(*(s for k, s in NAMED_SOURCES.items() if k in sentence))
                if not named:
                    wrong.append(f"{table}.{column}: unknown source in {sentence!r}")
                elif not named & set(entry["sources"]):
                    wrong.append(f"{table}.{column}: names {sorted(named)}, SQL {entry['sources']}")
                if "synthetic" in sentence and not entry["synthetic"]:
                    wrong.append(f"{table}.{column}: says synthetic, the lineage is not")
                if "(real" in sentence and named & set(entry["synthetic_sources"]):
                    wrong.append(f"{table}.{column}: says real, a named source is synthetic")
    assert not wrong, "\n".join(wrong)


def test_units_are_documented(models: dict) -> None:
    wrong = []
    for relation in EXPORT_TABLES.values():
        for column in models[relation].columns.values():
            text = column.description
            if column.name.endswith("_pct") and "0-100" not in text and "_pct" not in text:
                wrong.append(f"{relation}.{column.name}: a _pct column says 0-100")
            if column.name.endswith("_eur") and "euro" not in text:
                wrong.append(f"{relation}.{column.name}: a _eur column says euros")
    assert not wrong, "\n".join(wrong)


def test_fields_of_the_api_mirror_are_flagged_synthetic(computed: dict) -> None:
    fields = computed["local_diagnosis"]
    synthetic = {c for c, e in fields.items() if e["synthetic"]}
    assert len(synthetic) >= 39
    for block in ("market__", "salary__", "contract_mix__", "offers_trend__"):
        values = [
            c
            for c in fields
            if c.startswith(block)
            and not c.endswith("level")
            # a ROME code: value lineage follows the code, not the join on the API cell
            and c != "market__source_job_group_code"
        ]
        assert values and set(values) <= synthetic, block
    for real in ("hiring__recruitment_projects", "tension__dares_index", "unemployment__rate_pct"):
        assert not fields[real]["synthetic"], real
    assert fields["tension__difficult_hiring_pct"]["synthetic_sources"] == [
        "francetravail_marche_travail"
    ]
    assert "francetravail_bmo" in fields["hiring__difficult_pct_shrunk"]["sources"]
    assert computed["hiring_headlines"]["recruitment_projects"]["sources"] == ["francetravail_bmo"]


def test_schema_descriptions_and_the_export_manifest_carry_the_lineage(tmp_path: Path) -> None:
    from assets.export.publish import publish_export

    warehouse = make_warehouse(tmp_path / "warehouse.duckdb")
    result = publish_export(
        warehouse,
        tmp_path / "exports",
        tables={"local_diagnosis": "diag_local_diagnosis"},
        dbt_manifest=default_manifest_path(),
    )
    schema = json.loads((result.path / "local_diagnosis.schema.json").read_text("utf-8"))
    documented = annotate_models(load_models(default_manifest_path()))["diag_local_diagnosis"]
    level = schema["properties"]["market"]["properties"]["level"]["description"]
    assert level == documented.columns["market__level"].description
    assert "Synthetic in the embedded mirror: depends on francetravail_marche_travail" in level
    manifest = json.loads((result.path / "manifest.json").read_text("utf-8"))
    assert manifest["fields"]["local_diagnosis"]["market__level"]["synthetic"] is True
    assert manifest["fields"]["local_diagnosis"]["tension__dares_index"] == {
        "sources": ["dares_tensions"],
        "synthetic": False,
    }
