"""Ingestion contracts: what a raw table must look like before dbt may read it.

A contract is plain data (`TableContract`); it is checked with Great Expectations 1.x on
the parsed pandas frame, before the frame is published as raw parquet. GX is imported
lazily because its import alone costs seconds and hundreds of MB.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SAMPLE_SIZE = 5
# DuckDB memory of the SQL contract check of a staged table (it spills past it).
VALIDATION_MEMORY = "1000MB"


@dataclass(frozen=True)
class TableContract:
    """Expectations on one raw table.

    `columns`: columns that must be present (others are allowed: publishers add columns).
    `patterns`: column -> full-match regex for the non-null values (codes).
    `not_null` / `unique`: key columns. `min_rows`: a floor that catches a truncated file.
    `accepted`: column -> allowed values (non-null).

    A `unique` key may be partly empty (a national row of DARES' tensions has no région
    nor département; a FAP-2009 family without a ROME code has none): an empty key column
    is one more value, equal to itself, so two rows whose keys are equal but for empty
    columns, empty in both, are duplicates. Only a row whose key is empty in every column
    is left out (as an empty value is by a one-column key). Both checks, Great
    Expectations' `expect_compound_columns_to_be_unique` (`ignore_row_if=
    "all_values_are_missing"`) and `validate_parquet` (SQL `group by`), count so.
    """

    columns: tuple[str, ...]
    min_rows: int = 1
    patterns: Mapping[str, str] = field(default_factory=dict)
    not_null: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    accepted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """One failed expectation, worded for the person reading the run log."""

    expectation: str
    column: str | None
    message: str
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    slug: str
    table: str
    source_files: tuple[str, ...]
    rows: int
    failures: tuple[Failure, ...]

    @property
    def success(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        files = ", ".join(self.source_files) or "(no file)"
        if self.success:
            return f"{self.slug}.{self.table}: {self.rows} rows from {files} meet the contract"
        lines = [f"{self.slug}.{self.table} from {files} breaks its contract:"]
        for failure in self.failures:
            lines.append(f"  - {failure.message}")
        return "\n".join(lines)


class ValidationError(RuntimeError):
    """Raised by callers that want an exception rather than a report."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.describe())
        self.report = report


def _expectations(contract: TableContract, present: set[str]) -> list:
    import great_expectations.expectations as gxe

    exps: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(contract.columns), exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=contract.min_rows),
    ]
    # Column-level expectations only on columns that exist; a missing column is already
    # reported once, by the column-set expectation, with its name.
    for column in contract.not_null:
        if column in present:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    for column, regex in contract.patterns.items():
        if column in present:
            exps.append(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=regex))
    for column, values in contract.accepted.items():
        if column in present:
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    for key in contract.unique:
        if not set(key) <= present:
            continue
        if len(key) == 1:
            exps.append(gxe.ExpectColumnValuesToBeUnique(column=key[0]))
        else:
            # GX's default, spelled out: it is the rule `validate_parquet` applies too.
            exps.append(
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=list(key), ignore_row_if="all_values_are_missing"
                )
            )
    return exps


def _failure(result, contract: TableContract) -> Failure:
    config = result.expectation_config
    kind = config.type
    kwargs = config.kwargs
    column = kwargs.get("column")
    detail = result.result or {}
    samples = tuple(
        "NULL" if pd.isna(v) else str(v) for v in (detail.get("partial_unexpected_list") or [])
    )[:SAMPLE_SIZE]
    count = detail.get("unexpected_count")
    if kind == "expect_table_columns_to_match_set":
        missing = sorted((detail.get("details") or {}).get("mismatched", {}).get("missing", []))
        return Failure(
            kind,
            ", ".join(missing) or None,
            f"missing column(s) {missing}; expected at least {list(contract.columns)}, "
            f"found {detail.get('observed_value')}",
        )
    if kind == "expect_table_row_count_to_be_between":
        return Failure(
            kind,
            None,
            f"{detail.get('observed_value')} rows, expected at least {contract.min_rows}",
        )
    if kind == "expect_column_values_to_match_regex":
        what = f"values matching {kwargs.get('regex')}"
    elif kind == "expect_column_values_to_not_be_null":
        what = "no empty value"
    elif kind == "expect_column_values_to_be_in_set":
        what = f"values among {sorted(kwargs.get('value_set', []))}"
    elif kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        column = column or ", ".join(kwargs.get("column_list", []))
        what = "unique values"
    else:
        what = kind
    return Failure(
        kind,
        column,
        f"column {column!r}: {count} offending row(s), expected {what}; sample: {list(samples)}",
        samples,
    )


def validate_frame(
    df: pd.DataFrame,
    contract: TableContract,
    *,
    slug: str,
    table: str,
    source_files: tuple[str, ...] = (),
) -> ValidationReport:
    """Run the contract on `df` with Great Expectations; never raises on bad data."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GX logs every internal registration at INFO; keep the run log readable.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # No data docs site: the contract's report is ours. By default an ephemeral context
    # sets up a temporary docs site (and says so in the log) for every validation.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(f"{slug}")
        .add_dataframe_asset(table)
        .add_batch_definition_whole_dataframe("all_rows")
    )
    suite = gx.ExpectationSuite(name=f"{slug}__{table}")
    for expectation in _expectations(contract, set(df.columns)):
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{slug}__{table}", data=batch_definition, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    failures = tuple(_failure(r, contract) for r in result.results if not r.success)
    return ValidationReport(slug, table, tuple(source_files), len(df), failures)


# ------------------------------------------------------------------- tables at scale
#
# The largest raw tables (millions of offers, tens of millions of indicator values) are
# never held as pandas frames: their parser writes them straight to a staged Parquet file
# with DuckDB (`StagedTable`), and their contract is checked by SQL over that file
# (`validate_parquet`), on every row, with the same expectations and the same report as
# the Great Expectations path. GX is kept for the tables that fit in memory; against
# DuckDB it cannot run (upstream issue #11579) and on 11 M rows in pandas it would need
# minutes and gigabytes for the regex expectations alone.


@dataclass(frozen=True)
class StagedTable:
    """A parsed raw table already written to Parquet (`path`), waiting for validation.

    The factory validates it with `validate_parquet` and publishes it by renaming the
    file. `frame` reads it into pandas, for tests and small inputs only.
    """

    table: str
    path: object  # pathlib.Path of the staged parquet
    source_files: tuple
    partition: str | None = None
    rows: int = 0

    @property
    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.path)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def validate_parquet(
    path,
    contract: TableContract,
    *,
    slug: str,
    table: str,
    source_files: tuple[str, ...] = (),
) -> ValidationReport:
    """`contract` checked by DuckDB SQL on every row of a Parquet file; never raises."""
    import duckdb

    con = duckdb.connect()
    spill = Path(path).with_name(f".{Path(path).name}.validate")
    try:
        # Bounded like the parsers: past the limit, grouping spills beside the file.
        con.execute(f"set memory_limit = '{VALIDATION_MEMORY}'")
        con.execute("set temp_directory = ?", [str(spill)])
        con.execute("set preserve_insertion_order = false")
        quoted = str(path).replace("'", "''")
        con.execute(f"create view t as select * from read_parquet('{quoted}')")
        present = [r[0] for r in con.execute("describe t").fetchall()]
        rows = con.execute("select count(*) from t").fetchone()[0]
        failures: list[Failure] = []
        missing = [c for c in contract.columns if c not in present]
        if missing:
            failures.append(
                Failure(
                    "expect_table_columns_to_match_set",
                    ", ".join(missing),
                    f"missing column(s) {missing}; expected at least {list(contract.columns)}, "
                    f"found {present}",
                )
            )
        if rows < contract.min_rows:
            failures.append(
                Failure(
                    "expect_table_row_count_to_be_between",
                    None,
                    f"{rows} rows, expected at least {contract.min_rows}",
                )
            )

        def report(kind: str, column: str, count, samples, what: str) -> None:
            if count:
                samples = tuple(samples or ())
                failures.append(
                    Failure(
                        kind,
                        column,
                        f"column {column!r}: {int(count)} offending row(s), expected {what}; "
                        f"sample: {list(samples)}",
                        samples,
                    )
                )

        def offending(kind: str, column: str, condition: str, what: str, params=()) -> None:
            col = _quote(column)
            count, samples = con.execute(
                f"select count(*), (list(distinct coalesce(cast({col} as varchar), 'NULL')))"
                f"[1:{SAMPLE_SIZE}] from t where {condition}",
                list(params),
            ).fetchone()
            report(kind, column, count, samples, what)

        def offending_values(kind: str, column: str, condition: str, what: str, params) -> None:
            """`offending` for a condition on the value `v` alone: the distinct values are
            counted first and tested once each (for accepted sets: a handful of values
            repeated millions of times)."""
            col = _quote(column)
            count, samples = con.execute(
                f"select sum(n), (list(cast(v as varchar) order by v))[1:{SAMPLE_SIZE}] "
                f"from (select {col} as v, count(*) as n from t where {col} is not null "
                f"group by {col}) where {condition}",
                list(params),
            ).fetchone()
            report(kind, column, count, samples, what)

        for column in contract.not_null:
            if column in present:
                offending(
                    "expect_column_values_to_not_be_null",
                    column,
                    f"{_quote(column)} is null",
                    "no empty value",
                )
        # Patterns are tried row by row: pattern columns include numbers with tens of
        # millions of distinct values, which grouping would hold in memory (6 GB).
        for column, regex in contract.patterns.items():
            if column in present:
                offending(
                    "expect_column_values_to_match_regex",
                    column,
                    f"{_quote(column)} is not null and not regexp_full_match("
                    f"cast({_quote(column)} as varchar), ?)",
                    f"values matching {regex}",
                    [regex],
                )
        for column, values in contract.accepted.items():
            if column in present:
                offending_values(
                    "expect_column_values_to_be_in_set",
                    column,
                    "not list_contains(?, cast(v as varchar))",
                    f"values among {sorted(values)}",
                    [list(values)],
                )
        for key in contract.unique:
            if not set(key) <= set(present):
                continue
            # `group by` puts empty values together, as GX's pandas `duplicated` does; a
            # row whose key is empty in every column is left out (see TableContract).
            cols = ", ".join(_quote(c) for c in key)
            shown = ", ".join(f"coalesce(cast({_quote(c)} as varchar), 'NULL')" for c in key)
            duplicates, count, samples = con.execute(
                f"select sum(n), count(*), (list(k order by k))[1:{SAMPLE_SIZE}] from ("
                f"select concat_ws(' | ', {shown}) as k, count(*) as n from t "
                f"where {' or '.join(f'{_quote(c)} is not null' for c in key)} "
                f"group by {cols} having count(*) > 1)"
            ).fetchone()
            if count:
                samples = tuple(samples or ())
                failures.append(
                    Failure(
                        "expect_compound_columns_to_be_unique"
                        if len(key) > 1
                        else "expect_column_values_to_be_unique",
                        ", ".join(key),
                        f"column {', '.join(key)!r}: {int(duplicates)} offending row(s) with "
                        f"{count} duplicated value(s), expected unique values; "
                        f"sample: {list(samples)}",
                        samples,
                    )
                )
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return ValidationReport(slug, table, tuple(source_files), rows, tuple(failures))
