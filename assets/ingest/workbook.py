"""Reading XLSX/XLS workbooks as text cells and finding a table by its header row.

INSEE moves title rows and renames sheets between releases; the row of short column codes
is what stays. Every workbook source reads through here, so codes stay text (`dtype=str`)
and a broken file gives the project's ParseError naming the source and file.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from assets.ingest.raw import ParseError

HEADER_SEARCH_ROWS = 40
# The largest publication read here (BMO 2024) spans 0.75 M cells; pandas reads about a
# million cells a second on the test machine, so this bound keeps any workbook to seconds.
MAX_WORKBOOK_CELLS = 4_000_000


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
    data: bytes, *, slug: str, file_name: str, max_cells: int | None = None
) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX/XLS as text cells, no header interpretation.

    A workbook whose sheets span more than `max_cells` cells (`MAX_WORKBOOK_CELLS` by
    default) is refused before pandas turns them into Python objects: a corrupted cell
    address (one flipped byte in an XLS) can put a cell at row 62,500 of a 130-row sheet,
    and pandas then takes minutes over ten million empty cells. The sizes come from
    calamine's own read of each sheet (a fraction of pandas' time).
    """
    limit = MAX_WORKBOOK_CELLS if max_cells is None else max_cells
    try:
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sizes = {name: _sheet_size(book.get_sheet_by_name(name)) for name in book.sheet_names}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - see _unreadable
        raise _unreadable(exc, slug, file_name) from exc
    cells = sum(rows * columns for rows, columns in sizes.values())
    if cells > limit:
        name, (rows, columns) = max(sizes.items(), key=lambda item: item[1][0] * item[1][1])
        raise ParseError(
            f"{slug}: {file_name} is not a plausible workbook: its sheets span {cells:,} "
            f"cells (sheet {name!r}: {rows:,} rows x {columns:,} columns), more than the "
            f"{limit:,} expected at most; a corrupted cell address?"
        )
    try:
        return pd.read_excel(
            io.BytesIO(data), sheet_name=None, header=None, dtype=str, engine="calamine"
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - see _unreadable
        raise _unreadable(exc, slug, file_name) from exc


def _unreadable(exc: BaseException, slug: str, file_name: str) -> ParseError:
    """The project's error for a workbook calamine cannot read. Calamine raises its own
    error types, and on some corrupted XLS files a Rust panic, which PyO3 raises as
    `PanicException`, a BaseException that `except Exception` lets through."""
    what = " ".join(str(exc).split())[:300] or type(exc).__name__
    return ParseError(f"{slug}: {file_name} is not a readable workbook ({what})")


def _sheet_size(sheet) -> tuple[int, int]:
    """(rows, columns) pandas materialises for `sheet`: from A1 to its last cell."""
    if sheet.end is None:
        return 0, 0
    return sheet.end[0] + 1, sheet.end[1] + 1


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
