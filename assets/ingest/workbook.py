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


def read_workbook(data: bytes, *, slug: str, file_name: str) -> dict[str, pd.DataFrame]:
    """Every sheet of an XLSX/XLS as text cells, no header interpretation."""
    try:
        return pd.read_excel(
            io.BytesIO(data), sheet_name=None, header=None, dtype=str, engine="calamine"
        )
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        raise ParseError(f"{slug}: {file_name} is not a readable workbook ({exc})") from exc


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
