"""The Dagster side of the export: the asset that publishes the diagnostic tables after
the dbt build (with its publication-gate check), and what the manifest says about the
sources. It sits above publish.py and gate.py, and wires them together.
"""

from __future__ import annotations

from pathlib import Path

from assets.export.publish import export_fingerprint, exporter_identity, publish_export
from assets.export.tables import tables_to_export


def source_entries(modules, landing_dir: Path) -> list[dict]:
    """What the manifest says about each source: its spec and the landed files used."""
    from assets.ingest.landing import current_files

    entries = []
    for module in modules:
        spec = module.SPEC
        files = current_files(landing_dir, spec.slug)
        entries.append(
            {
                "slug": spec.slug,
                "publisher": spec.publisher,
                "title": spec.title,
                "licence": spec.licence,
                "synthetic": spec.synthetic,
                "mode": files[0].mode if files else None,
                "files": [
                    {
                        "file_name": f.file_name,
                        "sha256": f.sha256,
                        "bytes": f.size,
                        "upstream_url": f.upstream_url,
                        "fetched_at": f.fetched_at,
                    }
                    for f in files
                ],
            }
        )
    return entries


def build_export_asset(modules):
    """The Dagster asset that publishes the diagnostic tables after the dbt build.

    A vintage held by the publication gate is not a data failure, it waits for a human: the
    asset materialises (metadata `published: false`, the reasons), logs a warning, and its
    check `publication_gate` fails with WARN severity, which the UI shows and which
    `tremplin run` turns into exit code 3.
    """
    import dagster as dg

    from assets.dbt_manifest import default_manifest_path
    from assets.export.gate import GATE_CHECK, GatePolicy
    from assets.foundation.settings import get_settings

    manifest_path = default_manifest_path()
    tables = tables_to_export(manifest_path)
    key = dg.AssetKey(["exports", "diagnostic_tables"])
    identity = exporter_identity()

    @dg.asset(
        key=key,
        group_name="exports",
        deps=[dg.AssetKey([relation]) for relation in tables.values()],
        kinds={"parquet", "json"},
        pool="warehouse",
        check_specs=[
            dg.AssetCheckSpec(
                GATE_CHECK,
                asset=key,
                description="The new vintage passed the publication gate and is `latest` "
                "(WARN when held for `tremplin accept`).",
            )
        ],
        description="Diagnostic tables for the product: Parquet + JSON Lines + JSON Schema "
        "per table and a manifest, under warehouse/exports/<vintage>/; `latest` is switched "
        "atomically unless the publication gate holds the vintage.",
    )
    def diagnostic_tables(context):
        settings = get_settings()
        sources = source_entries(modules, settings.landing_dir)
        selected = tables_to_export(manifest_path, log=context.log)
        synthetic = any(s["synthetic"] for s in sources)
        gate = GatePolicy.from_settings(settings)
        result = publish_export(
            settings.duckdb_path,
            settings.exports_dir,
            tables=selected,
            sources=sources,
            synthetic=synthetic,
            log=context.log,
            dbt_manifest=manifest_path,
            gate=gate,
            inputs_fingerprint=export_fingerprint(
                settings.duckdb_path,
                selected,
                sources=sources,
                synthetic=synthetic,
                dbt_manifest=manifest_path,
                gate=gate,
                identity=identity,
            ),
        )
        description = (
            f"vintage {result.vintage} held, latest unchanged: {'; '.join(result.hold_reasons)}"
            if result.held
            else f"latest is {result.vintage}"
        )
        return dg.MaterializeResult(
            metadata={
                "vintage": result.vintage,
                "path": str(result.path),
                "changed": result.changed,
                "unchanged": result.unchanged_inputs,
                "published": not result.held,
                "hold_reasons": dg.MetadataValue.json(list(result.hold_reasons)),
                "rows": dg.MetadataValue.json(result.row_counts),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=GATE_CHECK,
                    passed=not result.held,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=description,
                    metadata={"vintage": result.vintage},
                )
            ],
        )

    return diagnostic_tables
