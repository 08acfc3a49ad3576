"""What the fuzzer found, each named after its mutant, replayed through the real path.

Every test replays a mutant `make fuzz` reported as a failure (its operations are the
replay syntax of `tests/fuzz/run.py --replay`) and checks that it is now refused with the
project's error naming the source and the file, or accepted with a table that meets its
contract.
"""

from __future__ import annotations

import pytest
from fuzz_harness import MIRROR, SourceBench, source_modules
from fuzz_mutants import load_model, mutate, parse_ops

from assets.ingest.raw import ParseError, decode_text

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def benches():
    made: dict[str, SourceBench] = {}

    def bench(slug: str) -> SourceBench:
        if slug not in made:
            made[slug] = SourceBench(next(m for m in source_modules() if m.SPEC.slug == slug))
        return made[slug]

    yield bench
    for made_bench in made.values():
        made_bench.close()


def replay(benches, slug: str, file_name: str, ops: str):
    model = load_model(MIRROR / slug / file_name)
    return benches(slug).run(file_name, mutate(model, parse_ops(ops)))


def test_mutant_reencode_mac_roman_is_refused_naming_the_file(benches):
    """fap225_rome.csv re-encoded in Mac Roman: neither UTF-8 nor Windows-1252 (byte 0x8f
    is undefined there); decoding raised a bare UnicodeDecodeError."""
    verdict = replay(benches, "dares_fap", "fap225_rome.csv", "reencode(29609,140331,149)")
    assert verdict.outcome == "rejected", verdict
    assert "neither UTF-8" in verdict.message and "fap225_rome.csv" in verdict.message


def test_mutant_insert_bytes_undefined_in_windows_1252_is_refused(benches):
    """Junk bytes inserted into a CSV (0x81, 0x8d, 0x8f, 0x90, 0x9d have no Windows-1252
    character): refused naming the file, not a UnicodeDecodeError."""
    verdict = replay(
        benches,
        "dares_fap",
        "Intitulés_FAP2021.csv",
        "insert_bytes(416,10369,10369) insert_bytes(21421,21421,10369)",
    )
    assert verdict.outcome in ("rejected", "accepted"), verdict
    with pytest.raises(ParseError, match=r"dares_fap: x\.csv is neither UTF-8"):
        decode_text(b"code\n\x81\x8d\n", slug="dares_fap", file_name="x.csv")


def test_mutant_json_rename_key_to_an_existing_column_is_refused(benches):
    """A key of departements.json renamed so that, in snake_case, it is another column's
    name (`zone` twice): the frame had duplicate columns and Parquet refused to write it
    (ValueError) instead of the parser refusing the file."""
    verdict = replay(
        benches,
        "etalab_decoupage_administratif",
        "departements.json",
        "json_rename_key(145,983,28665) json_rename_key(37773,2063,645441) "
        "json_rename_key(466,395459,71089)",
    )
    assert verdict.outcome == "rejected", verdict
    assert "more than once" in verdict.message and "departements.json" in verdict.message


def test_mutant_json_rename_key_upper_case_is_refused(benches):
    verdict = replay(
        benches,
        "etalab_decoupage_administratif",
        "regions.json",
        "json_rename_key(1601,34298,318889)",
    )
    assert verdict.outcome == "rejected", verdict
    assert "regions.json" in verdict.message


@pytest.mark.parametrize(
    ("slug", "file_name", "ops"),
    [
        (
            "francetravail_offres",
            "synthetic__offres__2025-11-13__p00000.json.gz",
            "json_null(0,0,0) insert_bytes(1,0,0)",
        ),
        (
            "francetravail_marche_travail",
            "synthetic__stat-demandeurs__DEP__2024.json.gz",
            "json_null(2946,51964,382) flip_bytes(38,22812,816) json_empty_list(7,888379,4043)",
        ),
        (
            "francetravail_marche_travail",
            "synthetic__stat-embauches__DEP__2025.json.gz",
            "json_truncate_list(105,924,351882) flip_bytes(1028,710,13739)",
        ),
    ],
)
def test_mutant_flip_bytes_in_a_gzip_answer_names_the_file(benches, slug, file_name, ops):
    """A corrupted gzip answer: DuckDB's reader said "Failed to decode gzip stream" without
    the file, and Python's gzip raised zlib.error (not OSError): now the ParseError names
    the broken file."""
    verdict = replay(benches, slug, file_name, ops)
    assert verdict.outcome == "rejected", verdict
    assert f"{file_name} is a broken gzip file" in verdict.message


def test_mutant_flip_bytes_moving_an_xls_cell_far_away_is_refused_quickly(benches):
    """One flipped byte in the BIFF of sl_etc_2021T4.xls moves a cell to row 62,500 of the
    Département sheet (130 rows): pandas then read 62,500 x 162 cells as text for 21 s or
    more on the test machine (a worse offset: past the fuzzer's 30 s). `read_workbook`
    now refuses a workbook spanning more cells than any publication, from calamine's
    sheet sizes, before pandas materialises them."""
    import time

    started = time.monotonic()
    verdict = replay(
        benches, "insee_chomage_localise", "sl_etc_2021T4.xls", "flip_bytes(2200,498,131071)"
    )
    assert verdict.outcome == "rejected", verdict
    assert "sl_etc_2021T4.xls is not a plausible workbook" in verdict.message
    assert "62,500 rows x 162 columns" in verdict.message
    assert time.monotonic() - started < 15


def test_mutant_truncate_zero_bytes_making_calamine_panic_is_refused(benches):
    """A truncated XLS with zeroed bytes makes calamine's BIFF reader panic in Rust; PyO3
    raises that as `PanicException`, a BaseException the parsers' `except Exception` let
    through (the fuzz worker died on it). `read_workbook` now refuses it naming the file."""
    verdict = replay(
        benches,
        "insee_chomage_localise",
        "sl_etc_2021T4.xls",
        "truncate_bytes(555,1,2940) zero_bytes(1135,128,505) zero_bytes(1135,128,505)",
    )
    assert verdict.outcome == "rejected", verdict
    assert "sl_etc_2021T4.xls is not a readable workbook" in verdict.message


@pytest.mark.parametrize(
    "ops",
    [
        "duplicate_column(1336,13421,67233) duplicate_column(4161,6373,8944)",
        "duplicate_column(1336,13421,67233) duplicate_column(1336,13421,67233)",
    ],
)
def test_mutant_duplicate_column_of_the_zone_codes_is_refused(benches, ops):
    """The code column duplicated (ZE2020 in the zones sheet, CODGEO in the communes one):
    the body had two columns of one name and filtering on it raised pandas' "cannot
    reindex on an axis with duplicate labels" (ValueError). The parser now refuses a
    header naming a column twice."""
    verdict = replay(benches, "insee_zonage_ze2020", "ZE2020_au_01-01-2023.xlsx", ops)
    assert verdict.outcome == "rejected", verdict
    assert "ZE2020_au_01-01-2023.xlsx, sheet" in verdict.message
    assert "more than once; expected each column once" in verdict.message


def test_mutant_blank_column_rome_in_fap225_gx_and_sql_agree(benches):
    """`make fuzz SEED=18` (dares_fap, fap225_rome.csv): the rome column blanked. GX
    rejected fap2009_rome (690 rows "not unique" on (fap, rome)), the SQL validator
    accepted the same rows: it left out rows with an empty key column, GX counts them
    (empty values equal). The factory checks frames with GX and staged tables with SQL;
    both now count a partly empty key as GX does, and reject this table."""
    verdict = replay(benches, "dares_fap", "fap225_rome.csv", "blank_column(148,0,0)")
    assert verdict.outcome == "rejected", verdict
    assert "fap225_rome.csv" in verdict.message
    assert "column 'fap, rome'" in verdict.message and "expected unique values" in verdict.message


def test_mutant_zero_bytes_making_calamine_abort_is_refused(benches):
    """`make fuzz SEED=18`: zeroed bytes in sl_etc_2021T4.xls make calamine ask for 4 PB;
    the failed allocation is a Rust abort (SIGABRT) that took the fuzz worker down (and
    would take a `tremplin run` down). `read_workbook` reads in a child process now: the
    child dies, the parser raises a ParseError naming the file."""
    verdict = replay(
        benches,
        "insee_chomage_localise",
        "sl_etc_2021T4.xls",
        "zero_bytes(65535,14831,0) zero_bytes(500,23571,673)",
    )
    assert verdict.outcome == "rejected", verdict
    assert (
        "sl_etc_2021T4.xls is not a readable workbook (the workbook reader died on SIGABRT: "
        "memory allocation of" in verdict.message
    )


@pytest.mark.parametrize(
    "ops",
    [
        "zero_bytes(228,48642,17401) zero_bytes(1929,524288,120425)",
        "zero_bytes(228,48642,17401) zero_bytes(1929,228,120425)",
        "zero_bytes(228,48642,17401) zero_bytes(228,228,120425)",
        "zero_bytes(228,48642,228) zero_bytes(228,228,120425)",
    ],
)
def test_mutant_zero_bytes_leaving_no_worksheet_is_refused(benches, ops):
    """`make fuzz SEED=18` after workbooks moved to a child process: zeroed bytes in
    sl_etc_2021T4.xls leave sheets none of which is a worksheet; pandas' reader raised
    ValueError "Sheet name is an empty list", which the in-process read used to turn into
    a ParseError and the first version of the child path let through."""
    verdict = replay(benches, "insee_chomage_localise", "sl_etc_2021T4.xls", ops)
    assert verdict.outcome == "rejected", verdict
    assert "sl_etc_2021T4.xls is not a readable workbook (no worksheet" in verdict.message
