"""`tremplin diff`: what changed between two export vintages, table by table.

Both vintages are read from their Parquet files (flat snake_case, exact types) with an
in-memory DuckDB, never from the warehouse, so any two published or held vintages can be
compared, also after the warehouse moved on. Rows are matched by key: `diagnosis_key` when
the table has it, else its first column, extended with the next plain columns while that is
not unique (up to four), else whole rows are compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from assets.export.errors import ExportError, NothingToCompare
from assets.export.json_shape import json_path, json_value
from assets.export.sql import quote_ident
from assets.export.vintages import LATEST, MANIFEST, list_vintages

KEY_COLUMN = "diagnosis_key"
MAX_KEY_COLUMNS = 4
EXAMPLES = 5
_NUMERIC = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
}


def resolve_vintage(exports_dir: Path, name: str) -> Path:
    """A vintage name (or `latest`, or a directory path) -> its directory."""
    exports_dir = Path(exports_dir)
    candidate = exports_dir / name if "/" not in name else Path(name)
    if not (candidate / MANIFEST).is_file():
        known = ", ".join(list_vintages(exports_dir)[-5:]) or "none"
        raise ExportError(f"no export vintage {name!r} in {exports_dir} (latest ones: {known})")
    return candidate.resolve()


def default_pair(exports_dir: Path) -> tuple[Path, Path]:
    """The vintage before `latest`, and `latest`."""
    exports_dir = Path(exports_dir)
    new = resolve_vintage(exports_dir, LATEST)
    vintages = list_vintages(exports_dir)
    older = vintages[: vintages.index(new.name)] if new.name in vintages else []
    if not older:
        raise NothingToCompare(
            f"{exports_dir}: latest ({new.name}) has no earlier vintage to compare"
        )
    return exports_dir / older[-1], new


def _manifest(directory: Path) -> dict:
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{directory / MANIFEST}: unreadable export manifest: {exc}") from None


def view_columns(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """Column name -> DuckDB type name, in order."""
    return {row[0]: str(row[1]) for row in con.execute(f"describe {view}").fetchall()}


def is_numeric(kind: str) -> bool:
    return kind in _NUMERIC or kind.startswith("DECIMAL")


def _is_plain(kind: str) -> bool:
    return not any(mark in kind for mark in ("[", "STRUCT", "MAP", "UNION"))


def _unique(con: duckdb.DuckDBPyConnection, view: str, key: list[str]) -> bool:
    row = ", ".join(quote_ident(c) for c in key)
    total, distinct = con.execute(
        f"select count(*), count(distinct row({row})) from {view}"
    ).fetchone()
    return total == distinct


def choose_key(
    con: duckdb.DuckDBPyConnection, old: dict[str, str], new: dict[str, str]
) -> list[str]:
    """Key columns unique in both vintages' `old_t` / `new_t` views; [] when none is found."""
    common = [c for c in new if c in old and old[c] == new[c] and _is_plain(new[c])]
    if KEY_COLUMN in common:
        candidates = [KEY_COLUMN]
    elif common and common[0] == next(iter(new)):
        candidates = common[:MAX_KEY_COLUMNS]
    else:
        return []
    for size in range(1, len(candidates) + 1):
        key = candidates[:size]
        if _unique(con, "old_t", key) and _unique(con, "new_t", key):
            return key
    return []


def _join(key: list[str]) -> str:
    return " and ".join(f"o.{quote_ident(c)} is not distinct from n.{quote_ident(c)}" for c in key)


def _key_text(values: tuple) -> str:
    return "/".join("null" if v is None else str(v) for v in values)


def key_changes(con: duckdb.DuckDBPyConnection, key: list[str]) -> dict:
    """Rows of `old_t` / `new_t` and the keys added and removed (counts and examples)."""
    rows_old = con.execute("select count(*) from old_t").fetchone()[0]
    rows_new = con.execute("select count(*) from new_t").fetchone()[0]
    if key:
        cols = ", ".join(quote_ident(c) for c in key)
        keys = ", ".join(f"a.{quote_ident(c)}" for c in key)

        def side(a: str, b: str) -> tuple[int, list[str]]:
            query = f"select {keys} from {a} a anti join {b} o on " + " and ".join(
                f"a.{quote_ident(c)} is not distinct from o.{quote_ident(c)}" for c in key
            )
            count = con.execute(f"select count(*) from ({query})").fetchone()[0]
            examples = con.execute(f"{query} order by {cols} limit {EXAMPLES}").fetchall()
            return count, [_key_text(row) for row in examples]

        added, added_examples = side("new_t", "old_t")
        removed, removed_examples = side("old_t", "new_t")
    else:  # no key: whole rows, as multisets
        added = con.execute(
            "select count(*) from (select * from new_t except all select * from old_t)"
        ).fetchone()[0]
        removed = con.execute(
            "select count(*) from (select * from old_t except all select * from new_t)"
        ).fetchone()[0]
        added_examples, removed_examples = [], []
    return {
        "key": key,
        "rows_old": rows_old,
        "rows_new": rows_new,
        "added": added,
        "removed": removed,
        "added_examples": added_examples,
        "removed_examples": removed_examples,
    }


def _field_changes(
    con: duckdb.DuckDBPyConnection,
    key: list[str],
    old: dict[str, str],
    new: dict[str, str],
    top: int,
) -> tuple[int, list[dict]]:
    """Changed rows, and per common field the changed values (most changed first)."""
    fields = [c for c in new if c in old and c not in key]
    if not key or not fields:
        return 0, []

    def expr(side: str, column: str) -> str:
        ref = f"{side}.{quote_ident(column)}"
        return ref if old[column] == new[column] else f"cast({ref} as varchar)"

    distinct = {c: f"{expr('o', c)} is distinct from {expr('n', c)}" for c in fields}
    counts = ", ".join(f"count(*) filter (where {cond})" for cond in distinct.values())
    any_change = " or ".join(f"({cond})" for cond in distinct.values())
    joined = f"from old_t o join new_t n on {_join(key)}"
    row = con.execute(f"select count(*) filter (where {any_change}), {counts} {joined}").fetchone()
    changed_rows, per_field = row[0], dict(zip(fields, row[1:], strict=True))
    keys = ", ".join(f"n.{quote_ident(c)}" for c in key)
    results = []
    for column in sorted(fields, key=lambda c: (-per_field[c], c)):
        if not per_field[column]:
            continue
        numeric = is_numeric(old[column]) and is_numeric(new[column])
        o, n = f"o.{quote_ident(column)}", f"n.{quote_ident(column)}"
        if numeric:
            query = (
                f"select {keys}, {o}, {n}, cast({n} as double) - cast({o} as double) {joined} "
                f"where {o} is not null and {n} is not null and {o} <> {n} "
                f"order by abs(cast({n} as double) - cast({o} as double)) desc, {keys} "
                f"limit {top}"
            )
        else:
            query = (
                f"select {keys}, {expr('o', column)}, {expr('n', column)}, null {joined} "
                f"where {distinct[column]} order by {keys} limit {top}"
            )
        examples = []
        for values in con.execute(query).fetchall():
            *key_values, before, after, delta = values
            examples.append(
                {
                    "key": _key_text(tuple(key_values)),
                    "old": json_value(before),
                    "new": json_value(after),
                    **({"delta": json_value(delta)} if numeric else {}),
                }
            )
        results.append(
            {
                "field": column,
                "json_field": ".".join(json_path(column)),
                "changed": per_field[column],
                "numeric": numeric,
                "examples": examples,
            }
        )
    return changed_rows, results


def diff_exports(old_dir: Path, new_dir: Path, *, top: int = 3) -> dict:
    """A JSON-ready summary of what changed from `old_dir` to `new_dir` (export vintages)."""
    old_dir, new_dir = Path(old_dir), Path(new_dir)
    old_manifest, new_manifest = _manifest(old_dir), _manifest(new_dir)
    old_tables, new_tables = old_manifest["tables"], new_manifest["tables"]
    report: dict[str, Any] = {
        "old": old_manifest["vintage"],
        "new": new_manifest["vintage"],
        "tables_added": sorted(set(new_tables) - set(old_tables)),
        "tables_removed": sorted(set(old_tables) - set(new_tables)),
        "tables": {},
    }
    con = duckdb.connect()
    try:
        for name in sorted(set(old_tables) & set(new_tables)):
            open_pair(con, old_dir, new_dir, old_tables[name], new_tables[name])
            old_cols, new_cols = view_columns(con, "old_t"), view_columns(con, "new_t")
            key = choose_key(con, old_cols, new_cols)
            table = key_changes(con, key)
            table["changed_rows"], table["fields"] = _field_changes(
                con, key, old_cols, new_cols, top
            )
            table["fields_added"] = [c for c in new_cols if c not in old_cols]
            table["fields_removed"] = [c for c in old_cols if c not in new_cols]
            report["tables"][name] = table
    finally:
        con.close()
    return report


def open_pair(
    con: duckdb.DuckDBPyConnection, old_dir: Path, new_dir: Path, old: dict, new: dict
) -> None:
    """Views `old_t` and `new_t` over one table's Parquet file in each vintage."""
    for view, directory, entry in (("old_t", old_dir, old), ("new_t", new_dir, new)):
        path = str(Path(directory) / entry["files"]["parquet"]["path"]).replace("'", "''")
        con.execute(f"create or replace view {view} as select * from read_parquet('{path}')")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:+.6g}"
    return f"{value:+}" if isinstance(value, int) else str(value)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def format_diff(report: dict) -> str:
    """The report as text for a terminal."""
    lines = [f"export diff {report['old']} -> {report['new']}"]
    for name in report["tables_added"]:
        lines.append(f"table {name}: only in {report['new']}")
    for name in report["tables_removed"]:
        lines.append(f"table {name}: only in {report['old']}")
    for name, table in report["tables"].items():
        key = ", ".join(table["key"]) or "whole rows"
        lines.append("")
        lines.append(
            f"{name} (key {key}): {table['rows_old']} -> {table['rows_new']} rows, "
            f"{table['added']} added, {table['removed']} removed, "
            f"{table['changed_rows']} changed"
        )
        for label in ("added", "removed"):
            if table[f"{label}_examples"]:
                more = table[label] - len(table[f"{label}_examples"])
                suffix = f" (+{more} more)" if more > 0 else ""
                lines.append(f"  {label}: {', '.join(table[f'{label}_examples'])}{suffix}")
        for label in ("fields_added", "fields_removed"):
            if table[label]:
                lines.append(f"  {label.replace('_', ' ')}: {', '.join(table[label])}")
        if not table["fields"] and not (table["added"] or table["removed"]):
            lines.append("  no change")
        for field in table["fields"]:
            examples = "; ".join(
                f"{e['key']}: {_show(e['old'])} -> {_show(e['new'])}"
                + (f" ({_number(e['delta'])})" if "delta" in e else "")
                for e in field["examples"]
            )
            heading = "largest" if field["numeric"] else "e.g."
            lines.append(
                f"  {field['field']:<40} {field['changed']:>8} changed   {heading} {examples}"
            )
    return "\n".join(lines)
