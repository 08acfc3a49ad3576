"""Reading XLSX/XLS workbooks as text cells and finding a table by its header row.

INSEE moves title rows and renames sheets between releases; the row of short column codes
is what stays. Every workbook source reads through here, so codes stay text (`dtype=str`)
and a broken file gives the project's ParseError naming the source and file.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assets.ingest import workbook_child
from assets.ingest.raw import ParseError

HEADER_SEARCH_ROWS = 40
# The largest publication read here (BMO 2024) spans 0.75 M cells; pandas reads about a
# million cells a second on the test machine, so this bound keeps any workbook to seconds.
MAX_WORKBOOK_CELLS = 4_000_000
# The child reading a workbook is stopped after this long: the largest publication takes
# about a second there on the loaded test machine.
WORKBOOK_TIMEOUT_S = 60.0
# Imported (it imports nothing heavy) so that the raw tables' code digest covers it too.
CHILD = Path(workbook_child.__file__)


@dataclass(frozen=True)
class Sheet:
    """A data block found in a workbook: its sheet, header row and body."""

    name: str
    header_row: int  # 0-based row index in the sheet
    header: tuple[str, ...]
    body: pd.DataFrame  # rows below the header, columns by position


def cell_text(value: object) -> str:
    """A cell as stripped text; empty for a blank or missing cell."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value).strip()


def read_workbook(
    data: bytes,
    *,
    slug: str,
    file_name: str,
    max_cells: int | None = None,
    timeout: float | None = None,
) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX/XLS as text cells, no header interpretation.

    Calamine reads the workbook in a child process (`workbook_child.py`, started for each
    workbook): on some corrupted XLS files it aborts the whole process (a Rust allocation
    failure is SIGABRT, which no `except` catches), and it could loop. A child that dies,
    or is still reading after `timeout` seconds (`WORKBOOK_TIMEOUT_S` by default, and
    then killed), gives a ParseError naming the source and the file; so does a file
    calamine refuses (its own errors and Rust panics, raised in the child).

    A workbook whose sheets span more than `max_cells` cells (`MAX_WORKBOOK_CELLS` by
    default) is refused before any cell becomes a Python object: a corrupted cell address
    (one flipped byte in an XLS) can put a cell at row 62,500 of a 130-row sheet, and
    pandas then takes minutes over ten million empty cells. The sizes come from
    calamine's own read of each sheet. The cells the child sends back go through pandas'
    calamine reader, so the frames are the ones `pd.read_excel(..., sheet_name=None,
    header=None, dtype=str, engine="calamine")` returns.
    """
    limit = MAX_WORKBOOK_CELLS if max_cells is None else max_cells
    result = _read_in_child(
        data,
        slug=slug,
        file_name=file_name,
        max_cells=limit,
        timeout=WORKBOOK_TIMEOUT_S if timeout is None else timeout,
    )
    kind = result[0]
    if kind == "error":
        _, type_name, message = result
        raise _unreadable(slug, file_name, " ".join(message.split())[:300] or type_name)
    if kind == "too_big":
        sizes = result[1]
        cells = sum(rows * columns for rows, columns in sizes.values())
        name, (rows, columns) = max(sizes.items(), key=lambda item: item[1][0] * item[1][1])
        raise ParseError(
            f"{slug}: {file_name} is not a plausible workbook: its sheets span {cells:,} "
            f"cells (sheet {name!r}: {rows:,} rows x {columns:,} columns), more than the "
            f"{limit:,} expected at most; a corrupted cell address?"
        )
    if not result[1]:
        raise _unreadable(slug, file_name, "no worksheet")
    try:
        return _frames(result[1])
    except Exception as exc:  # noqa: BLE001 - pandas on cells calamine accepted
        what = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise _unreadable(slug, file_name, what) from exc


def _child_argv(max_cells: int, timeout: float) -> list[str]:
    """The command of the child: this interpreter, isolated (`-I`: no PYTHONPATH, no user
    site, neither the current nor the script's directory on `sys.path`, so that no module
    of ours shadows the standard library's), on the script beside this module."""
    return [sys.executable, "-I", str(CHILD), str(max_cells), f"{timeout:g}"]


def _read_in_child(
    data: bytes, *, slug: str, file_name: str, max_cells: int, timeout: float
) -> tuple:
    """The child's answer for `data` (see workbook_child.py), or a ParseError when the
    child died, overran `timeout` or answered nothing readable."""
    # No Rust backtrace: the first line of an abort (e.g. "memory allocation of … bytes
    # failed") says what happened, the backtrace only costs time.
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    process = subprocess.Popen(
        _child_argv(max_cells, timeout),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = process.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise _unreadable(
            slug, file_name, f"the workbook reader was stopped after {timeout:g} s"
        ) from None
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        code = process.returncode
        if code < 0:
            try:
                how = f"died on {signal.Signals(-code).name}"
            except ValueError:
                how = f"died on signal {-code}"
        else:
            how = f"exited with status {code}"
        said = _first_lines(err)
        raise _unreadable(
            slug, file_name, f"the workbook reader {how}{': ' + said if said else ''}"
        )
    try:
        result = pickle.loads(out)
        if result[0] not in ("rows", "too_big", "error"):
            raise ValueError(f"unknown answer {result[0]!r}")
    except Exception as exc:  # noqa: BLE001 - any undecodable answer is the same failure
        raise _unreadable(
            slug, file_name, f"the workbook reader's answer is unreadable: {exc!r}"[:300]
        ) from exc
    return result


def _unreadable(slug: str, file_name: str, what: str) -> ParseError:
    """The project's error for a workbook calamine cannot read: its own errors, a Rust
    panic (PyO3's `PanicException`, a BaseException), a reader that died or hung."""
    return ParseError(
        f"{slug}: {file_name} is not a readable workbook ({what}); expected an XLSX or XLS workbook"
    )


def _first_lines(stderr: bytes, limit: int = 300) -> str:
    """What a dying child said: its first lines, without a backtrace."""
    lines = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(("stack backtrace:", "note:", " ")) or not line.strip():
            continue
        lines.append(line.strip())
        if len(lines) == 2:
            break
    return " ".join(lines)[:limit]


def _frames(sheets: dict[str, list[list]]) -> dict[str, pd.DataFrame]:
    """The child's cells as pandas' calamine reader makes them into frames (same cell
    conversion, same NA strings, text cells), through its `parse` on the cells received."""
    from pandas.io.excel._calamine import CalamineReader

    class Sheet:
        def __init__(self, rows: list[list]):
            self.rows = rows

        def to_python(self, skip_empty_area: bool = False, nrows: int | None = None):
            return self.rows if nrows is None else self.rows[:nrows]

    class Book:
        def get_sheet_by_name(self, name: str) -> Sheet:
            return Sheet(sheets[name])

    class Reader(CalamineReader):
        def __init__(self):  # the workbook was opened by the child
            self.book = Book()

        @property
        def sheet_names(self) -> list[str]:
            return list(sheets)

    return Reader().parse(sheet_name=None, header=None, dtype=str)


def find_sheets(
    workbook: dict[str, pd.DataFrame],
    is_header: Callable[[Sequence[str]], bool],
    *,
    max_rows: int = HEADER_SEARCH_ROWS,
) -> list[Sheet]:
    """The sheets holding a row for which `is_header(cells)` is true, with that row's position.

    Publishers move title rows and rename sheets between releases; the header row of short
    codes is what stays, so the table is located by it.
    """
    found = []
    for name, frame in workbook.items():
        for row in range(min(max_rows, len(frame))):
            cells = tuple(cell_text(v) for v in frame.iloc[row].tolist())
            if is_header(cells):
                body = frame.iloc[row + 1 :].reset_index(drop=True)
                found.append(Sheet(name, row, cells, body))
                break
    return found
