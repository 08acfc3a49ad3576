"""`tremplin sql` reads the warehouse and nothing else on the machine (docs/RELIABILITY.md).

A small warehouse is built here the way dbt builds the real one: a staging view over a raw
Parquet file under `<warehouse>/raw/` and a table. The views keep working; reading any other
file, installing or loading an extension, or undoing the settings is refused with a message
that says why.
"""

from __future__ import annotations

import duckdb
import pytest

from pipelines import cli


@pytest.fixture
def warehouse(env, tmp_path):
    raw = tmp_path / "warehouse" / "raw" / "geo"
    raw.mkdir(parents=True)
    parquet = raw / "regions.parquet"
    con = duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb"))
    con.execute(
        f"copy (select '11' as code, 'Île-de-France' as label) to '{parquet}' (format parquet)"
    )
    con.execute(f"create view stg_regions as select * from '{parquet}'")
    con.execute("create table dim_region as select * from stg_regions")
    con.close()
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\nhunter2\n")
    return tmp_path


def test_views_over_raw_parquet_still_work(warehouse, capsys):
    assert cli.main(["sql", "select s.label from stg_regions s join dim_region using (code)"]) == 0
    assert "Île-de-France" in capsys.readouterr().out


@pytest.mark.parametrize(
    "query",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/hostname')",
        "select * from '{outside}'",
        "select * from glob('/*')",
        "select * from read_parquet('{raw}/../../outside.csv')",
        "with leak as (select * from read_csv('{outside}')) select * from leak",
    ],
)
def test_files_outside_the_warehouse_are_refused(warehouse, query, capsys):
    query = query.format(outside=warehouse / "outside.csv", raw=warehouse / "warehouse" / "raw")
    assert cli.main(["sql", query]) == 1
    err = capsys.readouterr().err
    assert "Permission Error" in err
    assert "tremplin sql reads the warehouse only" in err
    assert "hunter2" not in err


@pytest.mark.parametrize("query", ["load httpfs", "install httpfs"])
def test_extensions_are_refused(warehouse, query, capsys):
    assert cli.main(["sql", query]) == 2
    assert "only reads" in capsys.readouterr().err


def test_extension_autoload_is_off(warehouse, capsys):
    assert cli.main(["sql", "select * from read_csv('https://127.0.0.1:9/x.csv')"]) == 1
    assert "tremplin sql reads the warehouse only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "query",
    [
        "set enable_external_access = true",
        "set allowed_directories = ['/']",
        "set lock_configuration = false",
    ],
)
def test_settings_cannot_be_undone(warehouse, query, capsys):
    # SET is refused by the statement check before it runs; the lock is the second wall.
    assert cli.main(["sql", query]) == 2
    from pipelines.resources import connect_confined

    con = connect_confined()
    try:
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            con.execute(query)
    finally:
        con.close()


def test_writable_cte_is_refused(warehouse, capsys):
    code = cli.main(["sql", "with t as (insert into dim_region values ('99', 'x')) select 1"])
    assert code in (1, 2)
    con = duckdb.connect(str(warehouse / "warehouse" / "warehouse.duckdb"), read_only=True)
    assert con.sql("select count(*) from dim_region").fetchall() == [(1,)]
    con.close()
