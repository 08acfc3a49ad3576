"""The parity comparison of two builds (`pipelines.spark_engine.compare_relations`), on
small DuckDB tables: no Spark needed. The Spark parity test relies on it to say "equal"."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.spark_engine import compare_relations

LEFT = """
    create table left_t as select departement_code, job_group_code, share::double as share,
        parts::struct(k varchar, v double)[] as parts from (values
        ('75', 'A1101', 0.1::double + 0.2::double, [{'k': 'x', 'v': 1.0::double / 3}]),
        ('75', 'A1102', 2.5, []),
        ('13', 'A1101', 1e-20, [{'k': 'y', 'v': 7.0}]),
        ('13', 'A1102', 4.0, [{'k': 'z', 'v': 0.5}])
    ) t(departement_code, job_group_code, share, parts)
"""


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(LEFT)
    # The same rows in another order, two doubles off in their last bits (as after a sum
    # taken in another order) and a near-zero value at another near-zero.
    connection.execute(
        """
        create table right_t as select departement_code, job_group_code,
            share::double as share, parts::struct(k varchar, v double)[] as parts from (values
            ('13', 'A1102', 4.0, [{'k': 'z', 'v': 0.5}]),
            ('13', 'A1101', 0.0, [{'k': 'y', 'v': 7.0}]),
            ('75', 'A1102', 2.5, []),
            ('75', 'A1101', 0.3, [{'k': 'x', 'v': 0.3333333333333333::double + 1e-16::double}])
        ) t(departement_code, job_group_code, share, parts)
        """
    )
    yield connection
    connection.close()


def test_the_same_rows_in_another_order_and_last_bits_are_equal(con) -> None:
    diff = compare_relations(con, "t", "left_t", "right_t")
    assert diff.equal, str(diff)
    assert (diff.rows_duckdb, diff.rows_spark) == (4, 4)


def test_a_number_off_beyond_the_tolerance_is_one_differing_row(con) -> None:
    con.execute(
        "update right_t set share = 2.5 * (1 + 1e-7) where job_group_code = 'A1102' "
        "and departement_code = '75'"
    )
    diff = compare_relations(con, "t", "left_t", "right_t")
    assert (diff.differing_rows, diff.missing_keys, diff.extra_keys) == (1, 0, 0)
    assert "share: 2.5 vs 2.50000025" in diff.examples[0]


def test_a_member_of_a_list_of_structs_that_differs_is_found(con) -> None:
    con.execute(
        "update right_t set parts = [{'k': 'z', 'v': 0.75}] where departement_code = '13' "
        "and job_group_code = 'A1102'"
    )
    diff = compare_relations(con, "t", "left_t", "right_t")
    assert diff.differing_rows == 1 and not diff.equal


def test_missing_and_extra_keys_are_counted(con) -> None:
    con.execute("delete from right_t where departement_code = '13' and job_group_code = 'A1101'")
    con.execute("insert into right_t values ('2A', 'A1101', 1.0, [])")
    diff = compare_relations(con, "t", "left_t", "right_t")
    assert (diff.missing_keys, diff.extra_keys, diff.differing_rows) == (1, 1, 0)
    assert str(diff).startswith("t: duckdb 4 rows, spark 4")


def test_rows_sharing_a_key_are_paired_by_value(con) -> None:
    # Two rows per key whose doubles differ only in their last bits: paired by value, not
    # by the order either engine returned them in.
    con.execute("insert into left_t values ('75', 'A1102', 9.0, []), ('75', 'A1102', 1.1, [])")
    con.execute(
        "insert into right_t values ('75', 'A1102', 1.1::double + 2e-16::double, []), "
        "('75', 'A1102', 9.0, [])"
    )
    assert compare_relations(con, "t", "left_t", "right_t").equal


def test_renamed_columns_are_reported_without_comparing_rows(con) -> None:
    con.execute("alter table right_t rename share to share_pct")
    diff = compare_relations(con, "t", "left_t", "right_t")
    assert diff.columns.startswith("columns differ") and not diff.equal


def test_types_a_set_operation_cannot_unify_are_compared_in_python(con) -> None:
    con.execute(
        "create table text_t as select departement_code, job_group_code, "
        "share::varchar as share, parts from left_t"
    )
    con.execute(
        "create table list_t as select departement_code, job_group_code, "
        "[share] as share, parts from left_t"
    )
    diff = compare_relations(con, "t", "text_t", "list_t")
    # the text column is part of the DuckDB side's exact key: no row finds its pair
    assert (diff.missing_keys, diff.extra_keys) == (4, 4) and not diff.equal
