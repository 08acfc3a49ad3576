"""The SQL contract check of large staged tables (`validate_parquet`) reaches the same
verdicts as the Great Expectations path (`validate_frame`) on the same rows."""

import duckdb
import pandas as pd

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
