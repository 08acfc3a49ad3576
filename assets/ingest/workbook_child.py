"""The child process `read_workbook` reads a workbook in (assets/ingest/workbook.py).

Run as a script, `python -I workbook_child.py MAX_CELLS TIMEOUT_S` (workbook.py imports it
only for its path, and so that the raw tables' code digest covers it):
it reads the workbook's bytes on stdin and writes one pickle on stdout, then exits 0:

* `("rows", {sheet: rows})`: every worksheet's cells as calamine's Python values (what
  pandas' calamine reader gets from `to_python(skip_empty_area=False)`);
* `("too_big", {sheet: (rows, columns)})`: the sheets span more than MAX_CELLS cells,
  so no cell was turned into a Python object;
* `("error", type name, message)`: calamine refused the file, a Rust panic included.

Calamine can also abort the process (a failed allocation on a corrupted XLS is a Rust
abort, SIGABRT) or loop; that takes this process down, not the parent, which reads the
exit status and a timeout (and should the parent be killed first, the child's own alarm
ends it a few seconds after TIMEOUT_S). It imports only the standard library and python_calamine, so
it starts in tens of milliseconds.
"""

from __future__ import annotations

import io
import pickle
import signal
import sys


def read(data: bytes, max_cells: int) -> tuple:
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    sheets = {name: book.get_sheet_by_name(name) for name in book.sheet_names}
    sizes = {
        name: (0, 0) if sheet.end is None else (sheet.end[0] + 1, sheet.end[1] + 1)
        for name, sheet in sheets.items()
    }
    if sum(rows * columns for rows, columns in sizes.values()) > max_cells:
        return ("too_big", sizes)
    # The worksheets pandas' calamine reader lists (chart sheets are left out).
    names = [s.name for s in book.sheets_metadata if s.typ == SheetTypeEnum.WorkSheet]
    if not names:
        return ("error", "", f"no worksheet among its sheets {list(sizes)}")
    return ("rows", {name: sheets[name].to_python(skip_empty_area=False) for name in names})


def main() -> int:
    max_cells, timeout = int(sys.argv[1]), float(sys.argv[2])
    # SIGALRM's default action ends the process, even inside calamine's Rust code.
    signal.alarm(int(timeout) + 5)
    data = sys.stdin.buffer.read()
    try:
        result = read(data, max_cells)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException (PyO3)
        result = ("error", type(exc).__name__, str(exc))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
