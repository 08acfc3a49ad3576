"""The Spark engine's side of a build: where dbt-spark leaves its tables, how they reach the
DuckDB file the exports read, and how two builds of the same inputs are compared.

dbt-spark (`method: session`, profiles.yml target `spark`) writes every table model as
Parquet under `<spark dir>/warehouse/<schema>.db/<model>/`, with a Derby metastore beside
it. The export code reads one DuckDB file; after a Spark build that file is made of the
Spark-written Parquet, table for table (`load_spark_tables`), so the same export code
publishes what Spark built. `compare_builds` is the parity check of the two engines
(tests/test_spark_parity.py): same columns, same keys, numbers equal to a relative 1e-9.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

SPARK_SCHEMA = "tremplin"  # profiles.yml, target spark: the Spark database of the models
COMPARED_PREFIXES = ("dim_", "fct_", "diag_")
REL_TOL = 1e-9
NOT_BUILT = "not built by Spark"
# dbt's selection for models and seeds without the data tests: what the parity test builds
# in `make test`, and `spark_build --models-only` (data tests are most of Spark's nodes).
WITHOUT_TESTS = ("--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")
# Below this, two numbers are equal whatever their ratio (0 against 1e-17 after a sum taken
# in another order).
ABS_TOL = 1e-12
_NESTED_OR_FLOAT = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "[]", "STRUCT", "MAP", "UNION")


def spark_table_dirs(spark_dir: Path, schema: str = SPARK_SCHEMA) -> dict[str, Path]:
    """Model name -> the folder of Parquet files Spark wrote for it (tables only: views
    have no files)."""
    base = Path(spark_dir) / "warehouse" / f"{schema}.db"
    if not base.is_dir():
        return {}
    return {
        folder.name: folder
        for folder in sorted(base.iterdir())
        if folder.is_dir() and any(folder.glob("*.parquet"))
    }


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_source(folder: Path) -> str:
    return f"read_parquet({_literal(str(folder / '*.parquet'))})"


def load_spark_tables(duckdb_path: Path, spark_dir: Path, schema: str = SPARK_SCHEMA) -> list[str]:
    """Copy every table Spark built into `duckdb_path` (schema main, same names), so the
    exports, `tremplin sql` and the checks read the Spark build like a DuckDB one. Returns
    the table names."""
    folders = spark_table_dirs(spark_dir, schema)
    if not folders:
        raise RuntimeError(f"no Spark tables under {Path(spark_dir) / 'warehouse'}")
    con = duckdb.connect(str(duckdb_path))
    try:
        for name, folder in folders.items():
            con.execute(
                f"create or replace table main.{name} as select * from {parquet_source(folder)}"
            )
    finally:
        con.close()
    return list(folders)


@dataclass
class TableDiff:
    """How one table of the Spark build differs from the DuckDB one."""

    name: str
    rows_duckdb: int = 0
    rows_spark: int = 0
    columns: str = ""  # non-empty when the column names differ
    missing_keys: int = 0  # keys only in the DuckDB table
    extra_keys: int = 0  # keys only in the Spark table
    differing_rows: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.columns or self.missing_keys or self.extra_keys or self.differing_rows)

    def __str__(self) -> str:
        if self.equal:
            return f"{self.name}: {self.rows_duckdb} rows, equal"
        if self.columns == NOT_BUILT:
            return f"{self.name}: {NOT_BUILT}"
        parts = [f"{self.name}: duckdb {self.rows_duckdb} rows, spark {self.rows_spark}"]
        if self.columns:
            parts.append(self.columns)
        parts.append(
            f"{self.missing_keys} keys only in duckdb, {self.extra_keys} only in spark, "
            f"{self.differing_rows} rows differ"
        )
        return "; ".join(parts) + "".join(f"\n    {example}" for example in self.examples)


def same_value(left: Any, right: Any, rel_tol: float = REL_TOL) -> bool:
    """Equal, numbers to `rel_tol` (relative), lists and structs member by member."""
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, Decimal):
        left = float(left)
    if isinstance(right, Decimal):
        right = float(right)
    if isinstance(left, float) or isinstance(right, float):
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return False
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return math.isclose(left, right, rel_tol=rel_tol, abs_tol=ABS_TOL)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            same_value(left[k], right[k], rel_tol) for k in left
        )
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            same_value(a, b, rel_tol) for a, b in zip(left, right, strict=True)
        )
    return left == right


def _sort_key(value: Any) -> Any:
    # Rows sharing a key are paired in this order: floats to 9 significant digits.
    if isinstance(value, float | Decimal):
        return ("n", float(f"{float(value):.9g}"))
    if value is None:
        return ("",)
    if isinstance(value, dict):
        return ("d", tuple((k, _sort_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("l", tuple(_sort_key(v) for v in value))
    return ("v", str(value))


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return con.execute(f"select count(*) from {relation}").fetchone()[0]


def _unmatched_rows(
    con: duckdb.DuckDBPyConnection, duckdb_relation: str, spark_relation: str
) -> tuple[list[tuple], list[tuple]]:
    """The rows of each side with no identical row on the other (`EXCEPT ALL` both ways).

    Most rows of two builds are equal to the bit; set aside by DuckDB, they never reach
    Python, so a national table of millions of rows costs a join, not a Python list (a
    national comparison that fetched every row held 24 GB and was killed). When the two
    sides' types cannot be unified by position, every row goes to the Python comparison.
    """
    left_only = f"select * from {duckdb_relation} except all select * from {spark_relation}"
    right_only = f"select * from {spark_relation} except all select * from {duckdb_relation}"
    try:
        return con.execute(left_only).fetchall(), con.execute(right_only).fetchall()
    except duckdb.Error:
        return (
            con.execute(f"select * from {duckdb_relation}").fetchall(),
            con.execute(f"select * from {spark_relation}").fetchall(),
        )


def compare_relations(
    con: duckdb.DuckDBPyConnection, name: str, duckdb_relation: str, spark_relation: str
) -> TableDiff:
    """Row-for-row comparison; rows are matched on their columns that are neither numbers
    with a fraction nor nested (the table's natural key, with whatever else is exact).

    Identical rows are paired in SQL; the others, paired by key, must be equal with numbers
    to a relative `REL_TOL` (`same_value`).
    """
    diff = TableDiff(name)
    left = con.sql(f"select * from {duckdb_relation} limit 0")
    right = con.sql(f"select * from {spark_relation} limit 0")
    diff.rows_duckdb = _count(con, duckdb_relation)
    diff.rows_spark = _count(con, spark_relation)
    if left.columns != right.columns:
        diff.columns = f"columns differ: duckdb {left.columns}, spark {right.columns}"
        return diff
    exact = [
        i
        for i, kind in enumerate(left.types)
        if not any(marker in str(kind).upper() for marker in _NESTED_OR_FLOAT)
    ]
    groups: dict[tuple, list[list]] = defaultdict(lambda: [[], []])
    for side, rows in enumerate(_unmatched_rows(con, duckdb_relation, spark_relation)):
        for row in rows:
            groups[tuple(str(row[i]) for i in exact)][side].append(row)
    for key, (duck_rows, spark_rows) in groups.items():
        if len(duck_rows) != len(spark_rows):
            diff.missing_keys += max(len(duck_rows) - len(spark_rows), 0)
            diff.extra_keys += max(len(spark_rows) - len(duck_rows), 0)
            if len(diff.examples) < 5:
                diff.examples.append(
                    f"key {key}: {len(duck_rows)} row(s) in duckdb, {len(spark_rows)} in spark"
                )
            continue
        duck_rows.sort(key=_sort_key)
        spark_rows.sort(key=_sort_key)
        for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
            if same_value(duck_row, spark_row):
                continue
            diff.differing_rows += 1
            if len(diff.examples) < 5:
                columns = [
                    f"{column}: {a!r} vs {b!r}"
                    for column, a, b in zip(left.columns, duck_row, spark_row, strict=True)
                    if not same_value(a, b)
                ]
                diff.examples.append(f"key {key}: " + "; ".join(columns)[:600])
    return diff


def compare_builds(
    duckdb_path: Path, spark_dir: Path, names: Iterable[str] | None = None
) -> list[TableDiff]:
    """Every mart and diagnostic table of a DuckDB build against the Spark build's Parquet
    (or the tables `names`). A table Spark did not build counts as differing."""
    folders = spark_table_dirs(spark_dir)
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach {_literal(str(duckdb_path))} as built (read_only)")
        if names is None:
            names = [
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables "
                    "where table_catalog = 'built' and table_schema = 'main' "
                    "and table_type = 'BASE TABLE' order by table_name"
                ).fetchall()
                if row[0].startswith(COMPARED_PREFIXES)
            ]
        diffs = []
        for name in names:
            if name not in folders:
                diffs.append(TableDiff(name, columns=NOT_BUILT))
                continue
            diffs.append(
                compare_relations(con, name, f"built.main.{name}", parquet_source(folders[name]))
            )
        return diffs
    finally:
        con.close()
