"""What the dbt manifest says about the models the export publishes.

The dbt yml files are the one place where the diagnostic fields are documented (meaning,
unit, source, formula, level). The export reads those descriptions from
`dbt_project/target/manifest.json` (written by `dbt parse`, no warehouse needed) so the
JSON Schemas and `docs/EXPORTS.md` say exactly what the yml says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    description: str
    data_type: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelDoc:
    name: str
    description: str
    columns: dict[str, ColumnDoc]  # in the yml's order
    meta: dict = field(default_factory=dict)


class ManifestError(RuntimeError):
    """The dbt manifest is missing or not what `dbt parse` writes."""


def default_manifest_path() -> Path:
    from assets.foundation.settings import DBT_PROJECT_DIR

    return DBT_PROJECT_DIR / "target" / "manifest.json"


def load_models(manifest_path: Path) -> dict[str, ModelDoc]:
    """Models of the manifest by relation name (the alias, else the model name)."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        nodes = manifest["nodes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ManifestError(
            f"dbt manifest {manifest_path} is unreadable ({exc}): run `tremplin manifest`"
        ) from None
    models = {}
    for node in nodes.values():
        if node.get("resource_type") != "model":
            continue
        relation = node.get("alias") or node["name"]
        columns = {
            name: ColumnDoc(
                name=name,
                description=(column.get("description") or "").strip(),
                data_type=column.get("data_type"),
                meta=dict(column.get("meta") or {}),
            )
            for name, column in (node.get("columns") or {}).items()
        }
        models[relation] = ModelDoc(
            name=node["name"],
            description=(node.get("description") or "").strip(),
            columns=columns,
            meta=dict(node.get("meta") or {}),
        )
    return models
