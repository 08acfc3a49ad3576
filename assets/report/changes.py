"""What changed since the previous vintage, as `tremplin diff` reports it.

The previous vintage is the one listed just before this one in its exports directory
(published or held, by name order). The comparison itself is the export's
(`assets/export/diff.py`); this module only trims it for a page.
"""

from __future__ import annotations

from pathlib import Path

from assets.export.diff import diff_exports
from assets.export.errors import ExportError
from assets.export.vintages import list_vintages

FIELDS_SHOWN = 6


def previous_vintage(vintage_dir: Path) -> Path | None:
    vintage_dir = Path(vintage_dir).resolve()
    names = list_vintages(vintage_dir.parent)
    if vintage_dir.name not in names:
        return None
    index = names.index(vintage_dir.name)
    return vintage_dir.parent / names[index - 1] if index > 0 else None


def _example(example: dict) -> str:
    if "delta" in example:
        return f"{example['key']}: {_short(example['old'])} → {_short(example['new'])}"
    return str(example["key"])


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def changes_since_previous(vintage_dir: Path) -> dict:
    """{"previous": name or None, "tables": [...]} (rows per table, fields that changed
    most); "error" says why nothing could be compared."""
    previous = previous_vintage(vintage_dir)
    if previous is None:
        return {"previous": None, "tables": [], "error": None}
    try:
        report = diff_exports(previous, Path(vintage_dir), top=1)
    except (ExportError, OSError, ValueError) as exc:
        return {"previous": previous.name, "tables": [], "error": str(exc)}
    except Exception as exc:  # duckdb errors on a damaged file: say so, keep the report
        return {"previous": previous.name, "tables": [], "error": f"{type(exc).__name__}: {exc}"}
    tables = []
    for name, table in report["tables"].items():
        fields = sorted(table["fields"], key=lambda f: (-f["changed"], f["field"]))
        tables.append(
            {
                "table": name,
                "rows_old": table["rows_old"],
                "rows_new": table["rows_new"],
                "added": table["added"],
                "removed": table["removed"],
                "changed_rows": table["changed_rows"],
                "fields": [
                    {
                        "field": f["field"],
                        "changed": f["changed"],
                        "example": _example(f["examples"][0]) if f["examples"] else "",
                    }
                    for f in fields[:FIELDS_SHOWN]
                ],
                "more_fields": max(0, len(fields) - FIELDS_SHOWN),
                "fields_added": table["fields_added"],
                "fields_removed": table["fields_removed"],
            }
        )
    for name in report["tables_added"]:
        tables.append({"table": name, "only_in": "new"})
    for name in report["tables_removed"]:
        tables.append({"table": name, "only_in": "old"})
    return {"previous": previous.name, "tables": tables, "error": None}
