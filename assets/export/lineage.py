"""Which sources feed each exported field, computed from the dbt graph and column lineage.

`compute_field_lineage` reads a *compiled* dbt manifest (`dbt compile`: the models' SQL with
every ref resolved), follows each exported column down the models with sqlglot's column
lineage, and stops at the staging models: each one reads exactly one source family (the
slug of its `source()`), which the dbt graph says. What comes out, per exported field:

- `sources`: the source families whose values reach the field (seeds are listed as
  `seed:<name>`);
- `synthetic` / `synthetic_sources`: whether (and which of) them are synthetic in the
  embedded mirror (SourceSpec.synthetic);
- `models`: the models and columns the value passes through, top first (what
  `tremplin explain` prints as intermediate values);
- for a `<block>__level` field, `levels`: the string values the SQL can give it (the
  literals of the CASE branches and constants along the lineage).

Column lineage follows values, not join or filter conditions: a field computed from a
fiche's code is "ROME" even if the row exists only where a market cell does.

The result is committed as `field_lineage.json` next to this module (`tremplin docs
--exports` rewrites it with EXPORTS.md); the export reads it to say per field, in the JSON
Schema descriptions, EXPORTS.md and the export manifest, whether the value depends on
synthetic data. `tests/test_field_lineage.py` recomputes it and fails on any difference.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from assets.export.sql import split_relation
from assets.export.tables import EXPORT_TABLES

FIELD_LINEAGE_PATH = Path(__file__).with_name("field_lineage.json")
LEVEL_SUFFIX = "__level"
SOURCES_NOTE = "Sources (column lineage): {slugs}."
SYNTHETIC_NOTE = "Synthetic in the embedded mirror: depends on {slugs}."


class LineageError(RuntimeError):
    """The compiled manifest cannot be read, or a column cannot be traced."""


# --- reading the compiled manifest ---------------------------------------------------------


def _load_nodes(compiled_manifest: Path) -> tuple[dict, dict]:
    try:
        manifest = json.loads(Path(compiled_manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LineageError(f"compiled dbt manifest {compiled_manifest}: {exc}") from None
    by_relation = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") in ("model", "seed"):
            by_relation[node.get("alias") or node["name"]] = node
    sources = {key: node.get("source_name") for key, node in manifest.get("sources", {}).items()}
    return by_relation, sources


class _Graph:
    """Compiled models, their column lists and their qualified SQL, read lazily."""

    def __init__(self, compiled_manifest: Path):
        self.nodes, self.sources = _load_nodes(compiled_manifest)
        self.schema: dict[str, dict[str, str]] = {}
        self._qualified: dict = {}
        self._lineage_cache: dict = {}
        self._derive_schema()

    def topological(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()
        key_to_relation = {n["unique_id"]: r for r, n in self.nodes.items()}

        def visit(relation: str) -> None:
            if relation in seen:
                return
            seen.add(relation)
            for dep in self.nodes[relation]["depends_on"].get("nodes", []):
                if dep in key_to_relation:
                    visit(key_to_relation[dep])
            order.append(relation)

        for relation in sorted(self.nodes):
            visit(relation)
        return order

    def _parse(self, relation: str):
        import sqlglot
        from sqlglot import exp

        code = self.nodes[relation].get("compiled_code")
        if not code:
            raise LineageError(f"{relation} has no compiled SQL: run `dbt compile`")
        expression = sqlglot.parse_one(code, dialect="duckdb")
        for table in expression.find_all(exp.Table):
            # "<database>"."main"."<model>" -> <model>: the schema is keyed by relation name.
            table.set("catalog", None)
            table.set("db", None)
        return expression

    def _derive_schema(self) -> None:
        from sqlglot.optimizer.qualify import qualify

        for relation in self.topological():
            node = self.nodes[relation]
            if node["resource_type"] == "seed":
                self.schema[relation] = {c: "unknown" for c in node.get("columns", {})}
                continue
            if not node.get("compiled_code"):
                continue
            columns: list[str] = []
            try:
                expression = self._parse(relation)
                qualified = qualify(
                    expression.copy(),
                    schema=self.schema,
                    dialect="duckdb",
                    validate_qualify_columns=False,
                )
                self._qualified[relation] = qualified
                columns = list(qualified.named_selects)
            except Exception:  # noqa: BLE001 - a source-level star: fall back below
                try:
                    columns = list(self._parse(relation).named_selects)
                except Exception:  # noqa: BLE001
                    columns = []
            if not columns or "*" in columns:
                columns = list(node.get("columns", {}))
            self.schema[relation] = {c: "unknown" for c in columns}

    def is_staging(self, relation: str) -> bool:
        node = self.nodes[relation]
        return any(d.startswith("source.") for d in node["depends_on"].get("nodes", []))

    def source_families(self, relation: str) -> set[str]:
        node = self.nodes[relation]
        return {
            self.sources.get(d) or d.split(".")[2]
            for d in node["depends_on"].get("nodes", [])
            if d.startswith("source.")
        }

    def lineage(self, relation: str, column: str):
        """sqlglot's lineage tree of one output column of one model (cached)."""
        from sqlglot.lineage import lineage

        key = (relation, column)
        if key not in self._lineage_cache:
            expression = self._qualified.get(relation)
            if expression is None:
                raise LineageError(f"{relation} could not be qualified for lineage")
            try:
                self._lineage_cache[key] = lineage(
                    column, expression, self.schema, dialect="duckdb"
                )
            except Exception as exc:  # noqa: BLE001 - sqlglot raises several kinds
                raise LineageError(f"{relation}.{column}: {exc}") from None
        return self._lineage_cache[key]


# --- walking the lineage -------------------------------------------------------------------


def _value_literals(expression) -> set[str]:
    """String constants an expression can evaluate to (CASE branches, COALESCE arguments),
    not the ones it only compares with."""
    from sqlglot import exp

    if isinstance(expression, exp.Literal):
        return {expression.this} if expression.is_string else set()
    if isinstance(expression, (exp.Alias, exp.Paren, exp.Cast, exp.TryCast)):
        return _value_literals(expression.this)
    if isinstance(expression, exp.Case):
        values = set()
        for branch in expression.args.get("ifs") or []:
            values |= _value_literals(branch.args.get("true"))
        if expression.args.get("default") is not None:
            values |= _value_literals(expression.args["default"])
        return values
    if isinstance(expression, exp.If):
        values = _value_literals(expression.args.get("true"))
        if expression.args.get("false") is not None:
            values |= _value_literals(expression.args["false"])
        return values
    if isinstance(expression, exp.Coalesce):
        values = _value_literals(expression.this)
        for arg in expression.expressions:
            values |= _value_literals(arg)
        return values
    return set()


class _Tracer:
    def __init__(self, graph: _Graph):
        self.graph = graph
        self._memo: dict[tuple[str, str], dict] = {}

    def trace(self, relation: str, column: str) -> dict:
        """{'sources', 'models', 'literals'} of one column of one model."""
        key = (relation, column)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = {"sources": set(), "models": [], "literals": set()}  # cycle guard
        graph = self.graph
        node = graph.nodes[relation]
        result: dict = {"sources": set(), "models": [(relation, column)], "literals": set()}
        if node["resource_type"] == "seed":
            result["sources"].add(f"seed:{relation}")
        elif graph.is_staging(relation):
            result["sources"] |= graph.source_families(relation)
            # A staging star over the parquet file cannot be traced: the family is known.
            with contextlib.suppress(LineageError):
                self._walk(graph.lineage(relation, column), result, descend=False)
        else:
            self._walk(graph.lineage(relation, column), result, descend=True)
        self._memo[key] = result
        return result

    def _walk(self, root, result: dict, descend: bool) -> None:
        from sqlglot import exp

        for item in root.walk():
            result["literals"] |= _value_literals(item.expression)
            if not (descend and isinstance(item.expression, exp.Table)):
                continue
            upstream = item.expression.name
            column = item.name.split(".")[-1].strip('"')
            if upstream not in self.graph.nodes or column == "*":
                continue
            below = self.trace(upstream, column)
            result["sources"] |= below["sources"]
            result["literals"] |= below["literals"]
            for step in below["models"]:
                if step not in result["models"]:
                    result["models"].append(step)


def _is_level(column: str) -> bool:
    """`<block>__level` and the other level fields of a block (`hiring__difficult_level`,
    `market__prior_level`, `offers_trend__active_months_level`)."""
    return "__" in column and (column.endswith(LEVEL_SUFFIX) or column.endswith("_level"))


def compute_field_lineage(
    compiled_manifest: Path,
    synthetic_sources: Iterable[str],
    tables: Mapping[str, str] = EXPORT_TABLES,
) -> dict:
    """{table: {column: {sources, synthetic, models[, levels]}}} for every exported column."""
    graph = _Graph(compiled_manifest)
    tracer = _Tracer(graph)
    # Models top first (downstream before upstream), whatever order sqlglot walked them in.
    rank = {relation: i for i, relation in enumerate(graph.topological())}
    synthetic_sources = set(synthetic_sources)
    out: dict = {}
    for table, relation in tables.items():
        model = split_relation(relation)[1]
        if model not in graph.nodes:
            continue
        fields = {}
        for column in graph.schema.get(model, {}):
            traced = tracer.trace(model, column)
            entry = {
                "sources": sorted(traced["sources"]),
                "synthetic": bool(traced["sources"] & synthetic_sources),
                "synthetic_sources": sorted(traced["sources"] & synthetic_sources),
                "models": [
                    [m, c]
                    for m, c in sorted(set(traced["models"]), key=lambda mc: (-rank[mc[0]], mc))
                    if m != model
                ],
            }
            if _is_level(column):
                entry["levels"] = sorted(traced["literals"])
            fields[column] = entry
        out[table] = fields
    return out


# --- the committed file and what the export does with it -----------------------------------


def dump_field_lineage(lineage: Mapping) -> str:
    return json.dumps(lineage, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_field_lineage(lineage: Mapping, target: Path | None = None) -> Path:
    target = Path(target or FIELD_LINEAGE_PATH)
    target.write_text(dump_field_lineage(lineage), encoding="utf-8")
    return target


def load_field_lineage(path: Path | None = None) -> dict:
    """The committed lineage; {} when the file is missing or unreadable."""
    try:
        return json.loads(Path(path or FIELD_LINEAGE_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def field_note(entry: Mapping | None) -> str:
    """The sentence the docs and the schemas append to a field's description."""
    if not entry:
        return ""
    sources = [s for s in entry.get("sources", []) if not s.startswith("seed:")]
    if not sources:
        return ""
    note = SOURCES_NOTE.format(slugs=", ".join(sources))
    if entry.get("synthetic"):
        note += " " + SYNTHETIC_NOTE.format(slugs=", ".join(entry.get("synthetic_sources", [])))
    return note


def annotate_models(models: Mapping, lineage: Mapping | None = None, tables=EXPORT_TABLES):
    """The manifest's ModelDocs with each exported column's lineage note appended to its
    description and `sources` / `synthetic` (and `levels`) in its meta."""
    lineage = load_field_lineage() if lineage is None else lineage
    annotated = dict(models)
    for table, relation in tables.items():
        model_name = split_relation(relation)[1]
        model = models.get(model_name)
        fields = lineage.get(table)
        if model is None or not fields:
            continue
        columns = {}
        for name, column in model.columns.items():
            entry = fields.get(name)
            if entry is None:
                columns[name] = column
                continue
            note = field_note(entry)
            description = column.description
            if note and note not in description:
                description = f"{description} {note}".strip()
            meta = {
                **column.meta,
                "sources": list(entry.get("sources", [])),
                "synthetic": bool(entry.get("synthetic")),
            }
            if "levels" in entry:
                meta["levels"] = list(entry["levels"])
            columns[name] = replace(column, description=description, meta=meta)
        annotated[model_name] = replace(model, columns=columns)
    return annotated


def manifest_fields(lineage: Mapping, tables: Iterable[str]) -> dict:
    """Per exported table and field, its sources and synthetic flag (export manifest)."""
    return {
        table: {
            column: {"sources": entry["sources"], "synthetic": entry["synthetic"]}
            for column, entry in lineage.get(table, {}).items()
        }
        for table in tables
        if table in lineage
    }
