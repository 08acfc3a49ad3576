"""`int_offers__offers` is incremental: a new snapshot is folded in without re-reading the
older ones, and the result equals a full rebuild on the same snapshots.

Real dbt runs on the raw tables the real parsers make from the embedded mirror; a second
snapshot is derived from the embedded one (some offers gone, some new, one re-dated).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from dbt_fixtures import write_raw_fixtures
from dbt_runner import run_dbt_build

MODEL = "int_offers__offers"
SELECT = [f"+{MODEL}", "stg_francetravail_offres__offers"]
FIRST, SECOND = "2025-11-13", "2025-12-01"


def offers_dir(work: Path) -> Path:
    return work / "raw" / "francetravail_offres" / "offers"


def add_second_snapshot(work: Path) -> None:
    """Every third offer is gone, the first 50 of each page come again under new ids, the
    second of each page now says it was created earlier (the earliest date is kept)."""
    first = offers_dir(work) / f"{FIRST}.parquet"
    second = offers_dir(work) / f"{SECOND}.parquet"
    con = duckdb.connect()
    try:
        con.execute(
            f"""
            copy (
                select * replace (
                    '{SECOND}' as snapshot_date,
                    case when _row_number = 2 then '2020-01-02T00:00:00Z' else created_at end
                        as created_at
                )
                from read_parquet('{first}') where _row_number % 3 <> 0
                union all
                select * replace (
                    offer_id || 'N' as offer_id, '{SECOND}' as snapshot_date,
                    '2025-11-30T10:00:00Z' as created_at
                )
                from read_parquet('{first}') where _row_number <= 50
            ) to '{second}' (format parquet)
            """
        )
    finally:
        con.close()


def rows(work: Path) -> set[tuple]:
    con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    try:
        return set(con.execute(f"select * from {MODEL}").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A warehouse built on the first snapshot, then incrementally on the second."""
    work = tmp_path_factory.mktemp("incremental")
    write_raw_fixtures(work / "raw")
    first = run_dbt_build(work, SELECT)
    assert first.returncode == 0, first.stdout + first.stderr
    before = rows(work)
    add_second_snapshot(work)
    second = run_dbt_build(work, SELECT)
    assert second.returncode == 0, second.stdout + second.stderr
    return work, before


def test_an_incremental_build_equals_a_full_rebuild(built, tmp_path):
    work, before = built
    full = tmp_path / "full"
    shutil.copytree(work / "raw", full / "raw")
    done = run_dbt_build(full, SELECT, extra=("--full-refresh",))
    assert done.returncode == 0, done.stdout + done.stderr
    incremental = rows(work)
    assert incremental == rows(full)
    added = {r[0] for r in incremental} - {r[0] for r in before}
    assert added and all(offer.endswith("N") for offer in added)
    snapshots = {(r[5], r[6]) for r in incremental}
    assert (FIRST, FIRST) in {(str(a), str(b)) for a, b in snapshots}  # gone in the second
    assert (FIRST, SECOND) in {(str(a), str(b)) for a, b in snapshots}


def test_the_older_snapshot_is_not_read_again(built, tmp_path):
    """Emptying the first snapshot changes nothing incrementally: it is not re-read."""
    work, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    first = offers_dir(copy) / f"{FIRST}.parquet"
    con = duckdb.connect()
    try:
        con.execute(
            f"copy (select * from read_parquet('{first}') where false) to '{first}.new' "
            "(format parquet)"
        )
    finally:
        con.close()
    Path(f"{first}.new").replace(first)
    kept = rows(copy)
    # The staging view is rebuilt too: it holds the path of the raw folder it reads.
    done = run_dbt_build(copy, SELECT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(copy) == kept
    rebuilt = run_dbt_build(copy, SELECT, extra=("--full-refresh",))
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert len(rows(copy)) < len(kept)
