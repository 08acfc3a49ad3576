"""`read_workbook`: text cells of every sheet, and the project's error for a broken or
implausibly large workbook (assets/ingest/workbook.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.ingest.raw import ParseError
from assets.ingest.workbook import MAX_WORKBOOK_CELLS, read_workbook

MIRROR = Path(__file__).resolve().parents[1] / "warehouse" / "mirror"
XLS = MIRROR / "insee_chomage_localise" / "sl_etc_2021T4.xls"
BMO = MIRROR / "francetravail_bmo" / "Base_open_data_BMO_2024.xlsx"


def test_a_real_workbook_is_read_as_text_cells():
    sheets = read_workbook(XLS.read_bytes(), slug="s", file_name=XLS.name)
    assert {"Département", "Région"} <= set(sheets)
    assert sheets["Département"].shape == (108, 162)
    assert all(str(dtype) in ("object", "str") for dtype in sheets["Région"].dtypes)


def test_the_largest_publication_is_well_under_the_bound():
    sheets = read_workbook(BMO.read_bytes(), slug="s", file_name=BMO.name)
    cells = sum(frame.shape[0] * frame.shape[1] for frame in sheets.values())
    assert cells * 4 < MAX_WORKBOOK_CELLS


def test_a_workbook_past_the_bound_is_refused_naming_source_file_and_sheet():
    with pytest.raises(ParseError) as caught:
        read_workbook(XLS.read_bytes(), slug="insee_x", file_name=XLS.name, max_cells=10_000)
    message = str(caught.value)
    assert message.startswith(f"insee_x: {XLS.name} is not a plausible workbook")
    assert "sheet 'Département': 108 rows x 162 columns" in message
    assert "more than the 10,000 expected at most" in message


def test_bytes_that_are_no_workbook_are_refused_naming_the_file():
    with pytest.raises(ParseError, match=r"^s: f\.xlsx is not a readable workbook"):
        read_workbook(b"PK\x03\x04 not really a zip", slug="s", file_name="f.xlsx")
