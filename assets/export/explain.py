"""`tremplin explain TABLE KEY [FIELD]`: one exported value, back to the publisher's cells.

For a record of an exported table (and optionally one of its fields) it gathers:

- the field's documentation (the dbt yml description: meaning, formula, unit) with its
  sources and synthetic flag from the column lineage (`field_lineage.json`);
- the intermediate values: the rows of each model on the way that belong to the record
  (filtered, when a field is named, to the columns its lineage passes through);
- the publisher's cells: for each raw row, the source slug, the publisher's URL, the landed
  file and its sha256, the sheet, the row number (`_row_number`, 1 = first data row), the
  column and the value as published.

The queries are dbt analyses (`dbt_project/analyses/explain/*.sql`): dbt parses them, so
every ref is checked against the graph, and this module only swaps each `ref()` for the
relation the manifest names and runs them read-only with DuckDB named parameters taken from
the record. Nothing here builds SQL from values.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assets.export.json_shape import json_path
from assets.export.lineage import field_note, load_field_lineage
from assets.export.sql import quote_ident

ANALYSIS_PREFIX = "explain__"
# Per table: the key's parts, in the order of the key text ("<a>:<b>").
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "local_diagnosis": ("departement_code", "job_group_code"),
    "job_group_info": ("job_group_code",),
    "best_jobs_in_area": ("departement_code", "scope"),
    "hiring_headlines": ("survey_year", "scope", "area_code"),
    "departements": ("departement_code",),
    "regions": ("region_code",),
}
# Per table: which explain queries cover a field, by the field's block (the part before
# `__`; "" for top-level fields), with per-field exceptions.
BLOCK_QUERIES: dict[str, dict[str, tuple[str, ...]]] = {
    "local_diagnosis": {
        "": ("job_group", "departement"),
        "market": ("market",),
        "tension": ("tension",),
        "hiring": ("hiring",),
        "offers_trend": ("offers_trend",),
        "salary": ("salary",),
        "contract_mix": ("contract_mix",),
        "unemployment": ("unemployment_departement",),
        "less_stressful": ("less_stressful",),
    },
    "job_group_info": {
        "": ("job_group",),
        "market": ("market_national",),
        "hiring": ("hiring_national",),
    },
    "best_jobs_in_area": {"": ("best_jobs",)},
    "hiring_headlines": {"": ("hiring_headlines",)},
    "departements": {"": ("departement",), "unemployment": ("unemployment_departement",)},
    "regions": {"": ("region",), "unemployment": ("unemployment_region",)},
}
FIELD_QUERIES: dict[str, dict[str, tuple[str, ...]]] = {
    "local_diagnosis": {
        "job_group_code": ("job_group",),
        "job_group_label": ("job_group",),
        "departement_code": ("departement",),
        "departement_name": ("departement",),
        "region_code": ("departement",),
        "sources__rome_version": ("job_group",),
        "sources__bmo_survey_year": ("hiring",),
        "sources__market_last_quarter_start_date": ("market",),
        "sources__dares_tension_year": ("tension",),
        "sources__offers_last_month_start_date": ("offers_trend",),
        "sources__unemployment_quarter": ("unemployment_departement",),
        "synthetic": ("market", "tension", "offers_trend", "salary", "contract_mix"),
    },
    "job_group_info": {
        "job_titles": ("job_titles",),
        "related_job_groups": ("job_titles",),
        "synthetic": ("market_national",),
    },
    "best_jobs_in_area": {"departement_code": ("departement", "best_jobs")},
}
# Columns kept in a step row whatever the field: they say which row it is.
ROW_KEYS = frozenset(
    {
        "job_group_code", "departement_code", "region_code", "territory_type",
        "territory_code", "survey_year", "bmo_job_code", "job_nomenclature", "bassin_code",
        "contract_type", "month_start_date", "area_type", "area_code", "quarter_label",
        "from_job_group_code", "to_job_group_code", "target_job_group_code",
        "source_job_group_code", "fap2009_code", "job_title_code", "suggestion_rank",
        "period_start_date", "month_number",
    }
)  # fmt: skip


class ExplainError(ValueError):
    """An unknown table, key or field (exit code 2), or explain queries that are missing."""


@dataclass
class Explanation:
    table: str
    key: str
    fields: list[dict]
    steps: list[dict] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "table": self.table,
            "key": self.key,
            "fields": self.fields,
            "steps": self.steps,
            "cells": self.cells,
            "seconds": round(self.seconds, 3),
        }


# --- the queries, from the dbt manifest ----------------------------------------------------

_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*\)\s*\}\}")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def load_queries(manifest_path: Path) -> dict[str, str]:
    """The explain analyses of the manifest, refs swapped for relation names."""
    try:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExplainError(
            f"dbt manifest {manifest_path}: {exc}: run `tremplin manifest`"
        ) from None
    relations = {
        node["name"]: node.get("alias") or node["name"]
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in ("model", "seed")
    }
    queries = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "analysis":
            continue
        if not node["name"].startswith(ANALYSIS_PREFIX):
            continue

        def relation(match: re.Match, name=node["name"]) -> str:
            ref = match.group(1)
            if ref not in relations:
                raise ExplainError(f"analysis {name} refers to unknown model {ref}")
            return quote_ident(relations[ref])

        queries[node["name"][len(ANALYSIS_PREFIX) :]] = _REF.sub(relation, node["raw_code"])
    if "record" not in queries:
        raise ExplainError(
            f"the dbt manifest {manifest_path} has no explain analyses: run `tremplin manifest`"
        )
    return queries


def _run(con, sql: str, params: Mapping[str, object]) -> list[tuple]:
    names = sorted(set(_PARAM.findall(sql)))
    missing = [n for n in names if n not in params]
    if missing:
        raise ExplainError(f"explain query needs {missing}, not in the record")
    return con.execute(sql, {n: params[n] for n in names}).fetchall()


# --- fields --------------------------------------------------------------------------------


def _json_name(column: str) -> str:
    return ".".join(json_path(column))


def resolve_field(table: str, name: str, columns: list[str]) -> str:
    """The Parquet column of FIELD given as a column or as its JSON path."""
    if name in columns:
        return name
    by_json = {_json_name(c): c for c in columns}
    if name in by_json:
        return by_json[name]
    raise ExplainError(f"unknown field {name!r} of {table}; valid fields: " + ", ".join(by_json))


def queries_for(table: str, column: str) -> tuple[str, ...]:
    special = FIELD_QUERIES.get(table, {}).get(column)
    if special:
        return special
    blocks = BLOCK_QUERIES[table]
    block = column.split("__", 1)[0] if "__" in column else ""
    return blocks.get(block, blocks[""])


def parse_key(table: str, key: str) -> dict[str, str]:
    parts = TABLE_KEYS[table]
    values = key.split(":", len(parts) - 1)
    if len(values) != len(parts) or not all(values):
        raise ExplainError(
            f"key {key!r} of {table} must look like " + ":".join(f"<{p}>" for p in parts)
        )
    return dict(zip(parts, values, strict=True))


# --- provenance of the publisher's cells ---------------------------------------------------


class _Landing:
    """Landed files by sha256: the landing area's `current.json` of the source (one read),
    else its `.meta.json` files (older landed files)."""

    def __init__(self, landing_dir: Path):
        self.landing_dir = Path(landing_dir)
        self._by_slug: dict[str, dict[str, dict]] = {}
        self._scanned: set[str] = set()
        self._names: dict[str, dict[str, list[Path]]] = {}

    def find(self, slug: str, sha256: str | None) -> dict:
        found = self._by_slug.get(slug)
        if found is None:
            found = self._by_slug[slug] = self._current(slug)
        if sha256 and sha256 not in found:
            # Landed names carry the first 12 hex digits of their sha256
            # (`<date>__<sha12>__<name>`): read only those metadata files...
            found.update(self._meta_files(slug, self._named(slug).get(sha256[:12], [])))
        if sha256 not in found and slug not in self._scanned:
            # ...and every one only when none matches (a file landed under another name).
            self._scanned.add(slug)
            found.update(self._meta_files(slug))
        return found.get(sha256, {})

    def _named(self, slug: str) -> dict[str, list[Path]]:
        """Metadata files of the slug by the sha256 prefix in their name (one listing)."""
        named = self._names.get(slug)
        if named is None:
            named = self._names[slug] = {}
            folder = self.landing_dir / slug
            for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
                parts = name.split("__")
                if name.endswith(".meta.json") and len(parts) > 2:
                    named.setdefault(parts[1], []).append(folder / name)
        return named

    def _entry(self, slug: str, data_file: str, item: dict) -> dict:
        return {
            "landed_file": str(self.landing_dir / slug / data_file),
            "publisher_url": item.get("upstream_url") or item.get("url"),
        }

    def _current(self, slug: str) -> dict[str, dict]:
        try:
            current = json.loads((self.landing_dir / slug / "current.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return {
            item.get("sha256"): self._entry(slug, item.get("path", ""), item)
            for item in current.get("files", [])
            if isinstance(item, dict)
        }

    def _meta_files(self, slug: str, paths: list[Path] | None = None) -> dict[str, dict]:
        found = {}
        if paths is None:
            paths = sorted((self.landing_dir / slug).glob("*.meta.json"))
        for meta_path in paths:
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found[meta.get("sha256")] = self._entry(slug, meta.get("data_file", ""), meta)
        return found


def _raw_path(raw_dir: Path, slug: str, table: str) -> str | None:
    single = Path(raw_dir) / slug / f"{table}.parquet"
    if single.is_file():
        return str(single)
    folder = Path(raw_dir) / slug / table
    if folder.is_dir() and any(folder.glob("*.parquet")):
        return str(folder / "*.parquet")
    return None


def _publisher_cells(con, queries, cell_rows, raw_dir: Path, landing: _Landing) -> list[dict]:
    wanted: dict[tuple[str, str], list[dict]] = {}
    for relation, payload in cell_rows:
        wanted.setdefault(tuple(relation.split(".", 1)), []).append(payload)
    cells = []
    for (slug, table), payloads in wanted.items():
        path = _raw_path(raw_dir, slug, table)
        parquet_files = sorted({p["parquet"] for p in payloads if p.get("parquet")})
        if path is not None and parquet_files and all(p.get("parquet") for p in payloads):
            # The query named each cell's Parquet file (a periodic table has one per period):
            # read those, not the whole table.
            path = parquet_files
        raw_rows: dict[tuple[str, int], dict] = {}
        if path is not None:
            # One scan of the raw table for all its cells; the exact pairs are kept here.
            wanted_pairs = {(p["file"], int(p["row"])) for p in payloads}
            rows = sorted({row for _, row in wanted_pairs})
            found = _run(
                con,
                queries["raw_rows"],
                {
                    "path": path,
                    "files": sorted({file_name for file_name, _ in wanted_pairs}),
                    "rows": rows,
                    "first_row": rows[0],
                    "last_row": rows[-1],
                },
            )
            for (text,) in found:
                row = json.loads(text)
                pair = (row["_source_file"], int(row["_row_number"]))
                if pair in wanted_pairs:
                    raw_rows[pair] = row
        for p in sorted(payloads, key=lambda p: (p["file"], int(p["row"]))):
            raw = raw_rows.get((p["file"], int(p["row"])), {})
            landed = landing.find(slug, raw.get("_sha256"))
            for column in p.get("columns") or []:
                cells.append(
                    {
                        "source": slug,
                        "table": table,
                        "publisher_url": raw.get("_source_url") or landed.get("publisher_url"),
                        "landed_file": landed.get("landed_file"),
                        "file_name": p["file"],
                        "sha256": raw.get("_sha256"),
                        "sheet": raw.get("source_sheet"),
                        "row_number": int(p["row"]),
                        "column": column,
                        "value": raw.get(column),
                        "label": p.get("label"),
                    }
                )
    return cells


def _with_raw_paths(sql: str, params: Mapping, raw_dir: Path) -> dict | None:
    """`params` plus `$raw__<slug>__<table>`: the raw Parquet a query reads directly (a
    staging view that would parse every file to find a few rows); None when one is missing."""
    out = dict(params)
    for name in set(_PARAM.findall(sql)):
        if not name.startswith("raw__"):
            continue
        slug, _, table = name[len("raw__") :].rpartition("__")
        path = _raw_path(raw_dir, slug, table)
        if path is None:
            return None
        out[name] = path
    return out


# --- explain -------------------------------------------------------------------------------


def _step_columns(lineage_fields: Mapping, columns: list[str]) -> dict[str, set[str]] | None:
    """Per model, the columns the explained fields pass through (None: keep everything)."""
    kept: dict[str, set[str]] = {}
    for column in columns:
        entry = lineage_fields.get(column)
        if entry is None:
            return None
        for model, model_column in entry.get("models", []):
            kept.setdefault(model, set()).add(model_column)
    return kept


def explain(
    con,
    table: str,
    key: str,
    field_name: str | None,
    *,
    manifest_path: Path,
    raw_dir: Path,
    landing_dir: Path,
    models: Mapping | None = None,
    lineage: Mapping | None = None,
) -> Explanation:
    """Explain one record (and one field of it) of an exported table; `con` is a read-only
    DuckDB connection to the warehouse."""
    started = time.perf_counter()
    if table not in TABLE_KEYS:
        raise ExplainError(f"unknown table {table!r}; valid tables: " + ", ".join(TABLE_KEYS))
    parse_key(table, key)
    queries = load_queries(manifest_path)
    lineage = load_field_lineage() if lineage is None else lineage
    table_lineage = lineage.get(table, {})
    doc_columns = {}
    if models is not None:
        from assets.export.tables import EXPORT_TABLES

        model = models.get(EXPORT_TABLES[table])
        doc_columns = dict(model.columns) if model is not None else {}
    known = list(doc_columns) or list(table_lineage)
    column = resolve_field(table, field_name, known) if field_name and known else field_name

    rows = _run(con, queries["record"], {"export_table": table, "key": key})
    if not rows:
        examples = [r[0] for r in _run(con, queries["key_examples"], {"export_table": table})]
        raise ExplainError(
            f"unknown key {key!r} of {table}: keys look like "
            + ":".join(f"<{p}>" for p in TABLE_KEYS[table])
            + (f", e.g. {', '.join(examples)}" if examples else " (the table is empty)")
        )
    record = json.loads(rows[0][1])
    if column is not None and column not in record:
        column = resolve_field(table, column, list(record))
    columns = [column] if column else list(record)

    fields = []
    for name in columns:
        doc = doc_columns.get(name)
        entry = table_lineage.get(name, {})
        fields.append(
            {
                "column": name,
                "json_field": _json_name(name),
                "value": record.get(name),
                "formula": doc.description if doc is not None else "",
                "documented_formula": (doc.meta.get("formula") if doc is not None else None),
                "sources": entry.get("sources", []),
                "synthetic": entry.get("synthetic", False),
                "note": field_note(entry),
                "queries": list(queries_for(table, name)),
            }
        )

    params = {**record}
    if "region_code" not in params and "departement_code" in params:
        params["region_code"] = None
    chosen: list[str] = []
    for name in columns:
        for query in queries_for(table, name):
            if query not in chosen:
                chosen.append(query)
    keep = _step_columns(table_lineage, columns) if column else None

    steps: dict[str, list[dict]] = {}
    cell_rows: list[tuple[str, dict]] = []
    for query in chosen:
        query_params = _with_raw_paths(queries[query], params, raw_dir)
        if query_params is None:
            continue  # a raw table it reads is not there (nothing was ingested)
        for kind, relation, payload in _run(con, queries[query], query_params):
            value = json.loads(payload)
            if kind == "cell":
                if (relation, value) not in cell_rows:
                    cell_rows.append((relation, value))
                continue
            if keep is not None and relation in keep and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k in keep[relation] or k in ROW_KEYS}
            rows_of = steps.setdefault(relation, [])
            if value not in rows_of:
                rows_of.append(value)
    cells = _publisher_cells(con, queries, cell_rows, raw_dir, _Landing(landing_dir))
    return Explanation(
        table=table,
        key=key,
        fields=fields,
        steps=[{"model": m, "rows": r} for m, r in steps.items()],
        cells=cells,
        seconds=time.perf_counter() - started,
    )


# --- text ----------------------------------------------------------------------------------


def _short(value, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def format_explanation(result: Explanation, max_rows: int = 20) -> str:
    lines = [f"{result.table} {result.key}"]
    for f in result.fields:
        lines.append(f"  {f['json_field']} ({f['column']}) = {_short(f['value'], 200)}")
        if f["formula"]:
            lines.append(f"    formula: {f['formula']}")
        if f["documented_formula"]:
            lines.append(f"    formula (meta): {f['documented_formula']}")
        if f["sources"]:
            flag = " (synthetic)" if f["synthetic"] else ""
            lines.append(f"    sources: {', '.join(f['sources'])}{flag}")
    lines.append("intermediate values:")
    for step in result.steps:
        rows = step["rows"]
        lines.append(f"  {step['model']} ({len(rows)} row{'s' if len(rows) != 1 else ''})")
        for row in rows[:max_rows]:
            values = row if isinstance(row, dict) else {"value": row}
            lines.append("    " + "  ".join(f"{k}={_short(v, 40)}" for k, v in values.items()))
        if len(rows) > max_rows:
            lines.append(f"    … {len(rows) - max_rows} more (--json lists them all)")
    lines.append("publisher's cells:")
    last_file = None
    for i, cell in enumerate(result.cells):
        if i >= max_rows * 4:
            lines.append(f"  … {len(result.cells) - i} more (--json lists them all)")
            break
        origin = (cell["source"], cell["landed_file"], cell["sha256"])
        if origin != last_file:
            lines.append(f"  {cell['source']}.{cell['table']}  {cell['publisher_url']}")
            lines.append(f"    landed {cell['landed_file']}  sha256 {cell['sha256']}")
            last_file = origin
        sheet = f"sheet {cell['sheet']}  " if cell["sheet"] else ""
        lines.append(
            f"    {sheet}row {cell['row_number']}  {cell['column']} = "
            f"{_short(cell['value'])}  ({cell['label']})"
        )
    lines.append(f"({result.seconds:.2f} s)")
    return "\n".join(lines)
