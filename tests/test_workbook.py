"""`read_workbook`: text cells of every sheet, read by calamine in a child process, and
the project's error for a broken, implausibly large or crashing workbook, or a reader
that hangs (assets/ingest/workbook.py)."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from assets.ingest import workbook
from assets.ingest.raw import ParseError
from assets.ingest.workbook import MAX_WORKBOOK_CELLS, read_workbook

MIRROR = Path(__file__).resolve().parents[1] / "warehouse" / "mirror"
XLS = MIRROR / "insee_chomage_localise" / "sl_etc_2021T4.xls"
BMO = MIRROR / "francetravail_bmo" / "Base_open_data_BMO_2024.xlsx"
FAP_TREE = MIRROR / "dares_fap2021_rome" / "Dares_Arborescence_FAP2021.xlsx"
ZONE = MIRROR / "insee_chomage_zone_emploi" / "chomage-zone-t1-2003-t2-2022.xlsx"


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


@pytest.mark.parametrize("path", [XLS, FAP_TREE, ZONE], ids=lambda p: p.name)
def test_the_frames_are_pandas_own_read_of_the_workbook(path):
    """The child sends calamine's cells, pandas' calamine reader makes the frames: the
    same frames as `pd.read_excel` in the process (same cell conversion, NA strings)."""
    data = path.read_bytes()
    expected = pd.read_excel(
        io.BytesIO(data), sheet_name=None, header=None, dtype=str, engine="calamine"
    )
    got = read_workbook(data, slug="s", file_name=path.name)
    assert list(got) == list(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame)


def _child(monkeypatch, code: str) -> None:
    """Replace the workbook reader by a child running `code` (after reading its stdin)."""
    script = f"import os, sys, time; sys.stdin.buffer.read(); {code}"
    monkeypatch.setattr(workbook, "_child_argv", lambda *_: [sys.executable, "-c", script])


def test_a_reader_that_aborts_is_a_parse_error_not_the_end_of_the_process(monkeypatch):
    _child(monkeypatch, "sys.stderr.write('memory allocation of 9 bytes failed\\n'); os.abort()")
    with pytest.raises(ParseError) as caught:
        read_workbook(XLS.read_bytes(), slug="insee_x", file_name=XLS.name)
    assert str(caught.value) == (
        f"insee_x: {XLS.name} is not a readable workbook (the workbook reader died on "
        "SIGABRT: memory allocation of 9 bytes failed); expected an XLSX or XLS workbook"
    )


def test_a_reader_that_hangs_is_stopped_at_the_timeout(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    _child(monkeypatch, f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        read_workbook(XLS.read_bytes(), slug="insee_x", file_name=XLS.name, timeout=2)
    assert time.monotonic() - started < 30  # the child sleeps 60 s: stopped, not awaited
    assert str(caught.value) == (
        f"insee_x: {XLS.name} is not a readable workbook (the workbook reader was stopped "
        "after 2 s); expected an XLSX or XLS workbook"
    )
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)


def test_a_reader_that_answers_nonsense_is_a_parse_error(monkeypatch):
    _child(monkeypatch, "sys.stdout.write('not a pickle')")
    with pytest.raises(ParseError, match=r"^s: f\.xls is not a readable workbook \(the "):
        read_workbook(b"\xd0\xcf\x11\xe0", slug="s", file_name="f.xls")


def test_a_workbook_without_worksheet_is_a_parse_error(monkeypatch):
    _child(monkeypatch, "import pickle; sys.stdout.buffer.write(pickle.dumps(('rows', {})))")
    with pytest.raises(ParseError, match=r"^s: f\.xls is not a readable workbook \(no "):
        read_workbook(b"\xd0\xcf\x11\xe0", slug="s", file_name="f.xls")


def test_the_real_child_survives_a_rust_abort(monkeypatch):
    """The bytes of `make fuzz SEED=18`'s mutant of sl_etc_2021T4.xls that made calamine
    abort the process (a failed allocation of 4 PB): the child dies, the caller does not."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fuzz"))
    from fuzz_mutants import load_model, mutate, parse_ops

    ops = parse_ops("zero_bytes(65535,14831,0) zero_bytes(500,23571,673)")
    data = mutate(load_model(XLS), ops)
    with pytest.raises(ParseError) as caught:
        read_workbook(data, slug="insee_x", file_name=XLS.name)
    assert str(caught.value).startswith(
        f"insee_x: {XLS.name} is not a readable workbook (the workbook reader died on "
        "SIGABRT: memory allocation of"
    )
