"""The SQL contract check of large staged tables (`validate_parquet`) reaches the same
verdicts as the Great Expectations path (`validate_frame`) on the same rows."""

import duckdb
import pandas as pd
import pytest

from assets.ingest.validation import TableContract, validate_frame, validate_parquet

CONTRACT = TableContract(
    columns=("offer_id", "rome_code", "contract_type"),
    patterns={"rome_code": r"^[A-N][0-9]{4}$"},
    not_null=("offer_id",),
    accepted={"contract_type": ("CDI", "CDD", "MIS")},
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "offer_id": ["1", "2", None, "4", "5", "6", "7"],
            "rome_code": ["A1101", "ZZ", "ZZ", "ZZ", "Q1", None, "M1805"],
            "contract_type": ["CDI", "CDD", "XXX", "CDI", None, "MIS", "CDI"],
        },
        dtype="string",
    )


def test_sql_check_names_counts_and_samples(tmp_path):
    frame = _frame()
    path = tmp_path / "t.parquet"
    duckdb.from_df(frame).write_parquet(str(path))

    sql = validate_parquet(path, CONTRACT, slug="demo", table="t", source_files=("a.json",))
    gx = validate_frame(frame, CONTRACT, slug="demo", table="t")

    verdicts = {(f.expectation, f.column) for f in sql.failures}
    assert (
        verdicts
        == {(f.expectation, f.column) for f in gx.failures}
        == {
            ("expect_column_values_to_not_be_null", "offer_id"),
            ("expect_column_values_to_match_regex", "rome_code"),
            ("expect_column_values_to_be_in_set", "contract_type"),
        }
    )
    by_column = {f.column: f for f in sql.failures}
    assert "4 offending row(s)" in by_column["rome_code"].message
    assert sorted(by_column["rome_code"].samples) == ["Q1", "ZZ"]
    assert "1 offending row(s)" in by_column["contract_type"].message
    assert by_column["contract_type"].samples == ("XXX",)
    assert sql.rows == 7 and not sql.success
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]  # no spill left behind


def test_clean_table_passes(tmp_path):
    frame = _frame().iloc[[0, 6]]
    path = tmp_path / "t.parquet"
    duckdb.from_df(frame).write_parquet(str(path))
    assert validate_parquet(path, CONTRACT, slug="demo", table="t").success


KEY = TableContract(columns=("fap", "rome"), unique=(("fap", "rome"),))


@pytest.mark.parametrize(
    ("fap", "rome", "unique"),
    [
        # Equal keys but for the rome column, empty in both: duplicates (dares_fap's
        # crosswalk with its rome column blanked, `make fuzz SEED=18`).
        (["A0Z40", "A0Z40", "A1Z40"], [None, None, "A1416"], False),
        # Partly empty keys differing in their filled column: unique (the publication's
        # FAP-2009 families without a ROME code).
        (["A0Z40", "A0Z41", "A1Z40"], [None, None, "A1416"], True),
        # One key with rome empty, one with it filled: unique.
        (["A0Z40", "A0Z40"], [None, "A1416"], True),
        # Empty in every key column: left out, as an empty one-column key is.
        ([None, None, "A1Z40"], [None, None, "A1416"], True),
        # A plain duplicate.
        (["A1Z40", "A1Z40"], ["A1416", "A1416"], False),
    ],
)
def test_a_partly_empty_compound_key_gets_one_verdict_on_both_paths(tmp_path, fap, rome, unique):
    """Great Expectations (frames) and the SQL check (staged tables) count partly empty
    keys alike: empty values equal each other, a wholly empty key is left out."""
    frame = pd.DataFrame({"fap": fap, "rome": rome}, dtype="str")
    path = tmp_path / "t.parquet"
    duckdb.from_df(frame).write_parquet(str(path))

    sql = validate_parquet(path, KEY, slug="demo", table="t")
    gx = validate_frame(frame, KEY, slug="demo", table="t")

    assert sql.success is gx.success is unique, (sql.describe(), gx.describe())
    expected = set() if unique else {("expect_compound_columns_to_be_unique", "fap, rome")}
    assert {(f.expectation, f.column) for f in sql.failures} == expected
    assert {(f.expectation, f.column) for f in gx.failures} == expected


def test_the_sql_uniqueness_failure_counts_rows_and_shows_empty_values(tmp_path):
    frame = pd.DataFrame(
        {"fap": ["A0Z40", "A0Z40", "A0Z40", "B1Z40", "B1Z40"], "rome": [None] * 5},
        dtype="str",
    )
    path = tmp_path / "t.parquet"
    duckdb.from_df(frame).write_parquet(str(path))
    (failure,) = validate_parquet(path, KEY, slug="demo", table="t").failures
    assert "5 offending row(s) with 2 duplicated value(s)" in failure.message
    assert failure.samples == ("A0Z40 | NULL", "B1Z40 | NULL")
