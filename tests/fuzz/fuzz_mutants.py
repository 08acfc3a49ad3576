"""Publisher mutants of a real published file: what a careless release could look like.

A file is read once into a model (`load_model`): a grid of cells for CSV and workbooks, a
tree for JSON. A mutant is a short list of operations (`Op`: a name and three integers the
operation reads modulo the grid's sizes), so that any mutant is replayed from its list
alone and hypothesis can draw and shrink it. `render` writes the mutated model back in
the file's format (and encoding, separator, compression), then byte-level operations
apply to the bytes.

XLS (BIFF) cannot be written back without a library the project does not ship: an XLS
file gets the byte-level operations and a `resave_as_xlsx` (the publisher switched format
and kept the name), nothing cell-level.
"""

from __future__ import annotations

import copy
import csv
import functools
import gzip
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

GRID_OPS = (
    "blank_cell",
    "text_to_number",
    "number_to_text",
    "lose_leading_zero",
    "pad_spaces",
    "secrecy_mark",
    "decimal_comma",
    "thousands_separator",
    "swap_columns",
    "rename_column",
    "drop_column",
    "duplicate_column",
    "shift_header",
    "truncate_rows",
    "duplicate_rows",
    "append_rows",
    "blank_rows",
    "blank_column",
)
SHEET_OPS = ("rename_sheet", "drop_sheet", "swap_sheets")
TEXT_OPS = ("reencode", "change_separator", "crlf")
JSON_OPS = (
    "json_null",
    "json_retype",
    "json_drop_key",
    "json_rename_key",
    "json_duplicate_item",
    "json_truncate_list",
    "json_empty_list",
    "json_append_item",
    "json_secrecy",
    "json_wrap",
    "json_decimal_comma",
)
GZIP_OPS = ("gunzipped",)
BYTE_OPS = ("flip_bytes", "truncate_bytes", "insert_bytes", "zero_bytes", "empty_file")
XLS_OPS = ("resave_as_xlsx",)

SECRECY_MARKS = ("*", "nd", "-", "s", "n.d.", "NS", "c", "secret")
ENCODINGS = ("cp1252", "latin-1", "utf-16", "utf-8-sig", "utf-8", "mac_roman")
SEPARATORS = (",", ";", "\t", "|")
RENAMES = (
    lambda s: s.upper(),
    lambda s: s.lower(),
    lambda s: s + " ",
    lambda s: " " + s,
    lambda s: s.replace("_", " "),
    lambda s: s + "_2024",
    lambda s: s[:-1] if len(s) > 1 else s + "x",
    lambda s: "Colonne " + s,
    lambda s: s.replace("e", "é"),
    lambda s: "",
)


@dataclass(frozen=True)
class Op:
    name: str
    a: int = 0
    b: int = 0
    c: int = 0

    def __str__(self) -> str:
        return f"{self.name}({self.a},{self.b},{self.c})"


def parse_ops(text: str) -> list[Op]:
    """`blank_cell(1,2,3) swap_columns(0,1,0)` -> ops (the replay syntax of the report)."""
    ops = []
    for token in text.split():
        name, args = token.rstrip(")").split("(")
        a, b, c = (int(x) for x in args.split(","))
        ops.append(Op(name, a, b, c))
    return ops


# ----------------------------------------------------------------------------- models


@dataclass
class Grid:
    """Rows of cells; a cell is None, str, int, float or bool."""

    rows: list[list[Any]]

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    def header_row(self) -> int:
        """The row with the most text cells among the first 40: the header, most likely."""
        best, index = -1, 0
        for i, row in enumerate(self.rows[:40]):
            n = sum(isinstance(v, str) and v.strip() != "" for v in row)
            if n > best:
                best, index = n, i
        return index

    def cell(self, r: int, c: int) -> tuple[int, int] | None:
        if not self.rows:
            return None
        r %= len(self.rows)
        row = self.rows[r]
        if not row:
            return None
        return r, c % len(row)


@dataclass
class Model:
    kind: str  # "csv" | "xlsx" | "xls" | "json"
    name: str
    original: bytes
    sheets: list[tuple[str, Grid]] = field(default_factory=list)
    tree: Any = None
    encoding: str = "utf-8"
    separator: str = ","
    gzipped: bool = False
    # Saved work, filled on first use: the XML of the unmutated rows (`row_cache`), an XLS
    # file's sheets read once for `resave_as_xlsx`, the unmutated rendering, the JSON text.
    _rows: dict | None = field(default=None, repr=False)
    _xls_sheets: list | None = field(default=None, repr=False)
    _rendered: bytes | None = field(default=None, repr=False)
    _tree_text: str | None = field(default=None, repr=False)

    def rows_xml(self) -> dict:
        if self._rows is None:
            self._rows = row_cache(self.xls_sheets() if self.kind == "xls" else self.sheets)
        return self._rows

    def rendered(self) -> bytes:
        """The model written back unmutated (what byte-level operations corrupt)."""
        if self._rendered is None:
            self._rendered = _render(
                self, self.sheets, self.tree, self.encoding, self.separator, False, False, False
            )
        return self._rendered

    def tree_copy(self) -> Any:
        """A deep copy of the JSON tree (parsing its text again: faster than deepcopy)."""
        if self._tree_text is None:
            self._tree_text = json.dumps(self.tree)
        return json.loads(self._tree_text)

    def xls_sheets(self) -> list[tuple[str, Grid]]:
        if self._xls_sheets is None:
            self._xls_sheets = _read_workbook(self.original)
        return self._xls_sheets

    @property
    def ops(self) -> tuple[str, ...]:
        if self.kind == "csv":
            return GRID_OPS + TEXT_OPS + BYTE_OPS
        if self.kind == "xlsx":
            return GRID_OPS + SHEET_OPS + BYTE_OPS
        if self.kind == "json":
            return JSON_OPS + BYTE_OPS + (GZIP_OPS if self.gzipped else ())
        return BYTE_OPS + XLS_OPS


def file_kind(name: str) -> str:
    lower = name.lower()
    for suffix, kind in (
        (".json.gz", "json"),
        (".geojson", "json"),
        (".json", "json"),
        (".csv", "csv"),
        (".xlsx", "xlsx"),
        (".xls", "xls"),
        (".zip", "zip"),
    ):
        if lower.endswith(suffix):
            return kind
    raise ValueError(f"no mutant model for {name}")


def load_model(path: Path) -> Model:
    data = path.read_bytes()
    kind = file_kind(path.name)
    model = Model(kind=kind, name=path.name, original=data)
    if kind == "csv":
        model.encoding = _text_encoding(data)
        text = data.decode(model.encoding)
        model.separator = _separator(text)
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=model.separator))
        model.sheets = [("csv", Grid([[v for v in row] for row in rows]))]
    elif kind == "xlsx":
        model.sheets = _read_workbook(data)
    elif kind == "json":
        model.gzipped = data[:2] == b"\x1f\x8b"
        raw = gzip.decompress(data) if model.gzipped else data
        model.tree = json.loads(raw.decode("utf-8-sig"))
    elif kind == "zip":
        raise ValueError("zip files are mutated through their members")
    return model


def _text_encoding(data: bytes) -> str:
    try:
        data.decode("utf-8-sig")
        return "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _separator(text: str) -> str:
    first = text.split("\n", 1)[0]
    return max(SEPARATORS, key=first.count)


def _read_workbook(data: bytes) -> list[tuple[str, Grid]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    sheets = []
    for name in book.sheet_names:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        grid = Grid([[_plain(v) for v in row] for row in rows])
        sheets.append((name, grid))
    return sheets


def _plain(value: Any) -> Any:
    if value == "" or value is None:
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


# ------------------------------------------------------------------------- mutation


def mutate(model: Model, ops: list[Op]) -> bytes:
    """The mutant's bytes: structural operations on a copy of the model, then bytes."""
    if all(op.name in BYTE_OPS for op in ops):  # the unmutated rendering, made once
        data = model.rendered()
        for op in ops:
            data = _byte_op(data, op)
        return data
    sheets = [(name, Grid([list(r) for r in g.rows])) for name, g in model.sheets]
    tree = model.tree_copy() if model.kind == "json" else None
    encoding, separator, crlf, gunzipped, as_xlsx = (
        model.encoding,
        model.separator,
        False,
        False,
        False,
    )
    byte_ops = []
    for op in ops:
        if op.name in BYTE_OPS:
            byte_ops.append(op)
        elif op.name in GRID_OPS and sheets:
            index = op.c % len(sheets) if model.kind == "xlsx" else 0
            _grid_op(sheets[index][1], op)
        elif op.name in SHEET_OPS and sheets:
            sheets = _sheet_op(sheets, op)
        elif op.name == "reencode":
            encoding = ENCODINGS[op.a % len(ENCODINGS)]
        elif op.name == "change_separator":
            separator = SEPARATORS[op.a % len(SEPARATORS)]
        elif op.name == "crlf":
            crlf = True
        elif op.name in JSON_OPS:
            tree = _json_op(tree, op)
        elif op.name == "gunzipped":
            gunzipped = True
        elif op.name == "resave_as_xlsx":
            as_xlsx = True
    data = _render(model, sheets, tree, encoding, separator, crlf, gunzipped, as_xlsx)
    for op in byte_ops:
        data = _byte_op(data, op)
    return data


def _render(model, sheets, tree, encoding, separator, crlf, gunzipped, as_xlsx) -> bytes:  # noqa: PLR0913
    if model.kind == "csv":
        data = _write_csv(sheets[0][1], encoding, separator, crlf)
    elif model.kind == "xlsx":
        data = write_xlsx(sheets, model.rows_xml())
    elif model.kind == "json":
        data = json.dumps(tree, ensure_ascii=False).encode("utf-8")
        if model.gzipped and not gunzipped:
            data = gzip.compress(data, mtime=0)
    elif as_xlsx:
        data = write_xlsx(model.xls_sheets(), model.rows_xml())
    else:
        data = model.original
    return data


def _numeric_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            float(text)
        except ValueError:
            return None
        return text
    return None


def _grid_op(grid: Grid, op: Op) -> None:  # noqa: C901 - one branch per operation
    rows = grid.rows
    header = grid.header_row()
    width = grid.width
    body = range(header + 1, len(rows))
    name = op.name

    def body_cell() -> tuple[int, int] | None:
        if len(body) == 0:
            return grid.cell(op.a, op.b)
        return grid.cell(body[op.a % len(body)], op.b)

    if name == "blank_cell":
        # Anywhere, header included (a blanked column name).
        spot = grid.cell(op.a, op.b) if op.c % 4 == 0 else body_cell()
        if spot:
            rows[spot[0]][spot[1]] = None if op.c % 2 else ""
    elif name == "text_to_number":
        spot = body_cell()
        if spot:
            text = _numeric_text(rows[spot[0]][spot[1]])
            if text is not None:
                number = float(text)
                rows[spot[0]][spot[1]] = int(number) if number.is_integer() else number
    elif name == "number_to_text":
        spot = body_cell()
        if spot:
            text = _numeric_text(rows[spot[0]][spot[1]])
            if text is not None:
                rows[spot[0]][spot[1]] = text if op.c % 2 else f"'{text}"
    elif name == "lose_leading_zero":
        column = op.b % max(width, 1)
        for r in body:
            row = rows[r]
            everywhere = op.c % 2 == 0 or r == body[op.a % len(body)]
            if everywhere and column < len(row) and isinstance(row[column], str):
                row[column] = row[column].lstrip("0") or "0"
    elif name == "pad_spaces":
        column = op.b % max(width, 1)
        pad = (" ", "  ", "\u00a0", "\t")[op.c % 4]
        for r in range(len(rows)) if op.a % 2 else body:
            row = rows[r]
            if column < len(row) and row[column] not in (None, ""):
                row[column] = f"{pad}{row[column]}{pad}"
    elif name == "secrecy_mark":
        mark = SECRECY_MARKS[op.c % len(SECRECY_MARKS)]
        if op.a % 3 == 0 and len(body):  # a whole column of marks here and there
            column = op.b % max(width, 1)
            for r in body[:: 1 + op.a % 7]:
                if column < len(rows[r]):
                    rows[r][column] = mark
        else:
            spot = body_cell()
            if spot:
                rows[spot[0]][spot[1]] = mark
    elif name in ("decimal_comma", "thousands_separator"):
        column = op.b % max(width, 1)
        sep = (" ", ",", ".", "\u00a0", "\u202f")[op.c % 5]
        for r in body:
            row = rows[r]
            if column >= len(row):
                continue
            text = _numeric_text(row[column])
            if text is None:
                continue
            if name == "decimal_comma":
                row[column] = text.replace(".", ",")
            else:
                whole, _, frac = text.partition(".")
                sign = "-" if whole.startswith("-") else ""
                digits = whole.lstrip("-")
                groups = []
                while len(digits) > 3:
                    groups.insert(0, digits[-3:])
                    digits = digits[:-3]
                groups.insert(0, digits)
                row[column] = sign + sep.join(groups) + (f",{frac}" if frac else "")
    elif name == "swap_columns":
        i, j = op.a % max(width, 1), op.b % max(width, 1)
        for row in rows:
            row.extend([None] * (width - len(row)))
            row[i], row[j] = row[j], row[i]
    elif name == "rename_column":
        if rows:
            row = rows[header]
            if row:
                column = op.a % len(row)
                value = row[column]
                text = "" if value is None else str(value)
                row[column] = RENAMES[op.b % len(RENAMES)](text)
    elif name == "drop_column":
        column = op.a % max(width, 1)
        for row in rows:
            if column < len(row):
                del row[column]
    elif name == "duplicate_column":
        column = op.a % max(width, 1)
        for row in rows:
            if column < len(row):
                row.insert(column + 1, row[column])
    elif name == "blank_column":
        column = op.a % max(width, 1)
        for r in body:
            if column < len(rows[r]):
                rows[r][column] = None
    elif name == "shift_header":
        count = 1 + op.a % 3
        title = ["Source : publication", *([None] * (width - 1))]
        inserted = [list(title) if op.b % 2 else [None] * width for _ in range(count)]
        if op.c % 2 and header > 0:  # or the title rows removed
            del rows[:header]
        else:
            rows[0:0] = inserted
    elif name == "truncate_rows":
        keep = header + 1 + (op.a % max(len(body), 1)) if op.b % 3 else header + 1
        del rows[keep:]
    elif name == "duplicate_rows":
        if len(body):
            start = body[op.a % len(body)]
            count = 1 + op.b % 50
            rows[start:start] = [list(r) for r in rows[start : start + count]]
    elif name == "append_rows":
        kind = op.a % 4
        if kind == 0:  # a total line
            extra = [["Total", *([None] * (width - 1))]]
        elif kind == 1:  # a footnote
            extra = [[None] * width, ["Champ : France entière. Source : publisher.", None]]
        elif kind == 2 and len(body):  # rows repeated at the end
            extra = [list(rows[r]) for r in body[-(1 + op.b % 20) :]]
        else:  # a garbage line
            extra = [[f"x{i}" for i in range(width)]]
        rows.extend(extra)
    elif name == "blank_rows" and len(body):
        at = body[op.a % len(body)]
        rows[at:at] = [[None] * width for _ in range(1 + op.b % 5)]


def _sheet_op(sheets: list[tuple[str, Grid]], op: Op) -> list[tuple[str, Grid]]:
    index = op.a % len(sheets)
    if op.name == "rename_sheet":
        name, grid = sheets[index]
        new = (name.upper(), name + " (2)", "Feuil1", "Sheet1", name.replace(" ", "_"))[op.b % 5][
            :31
        ]
        if new not in {n for n, _ in sheets}:
            sheets[index] = (new, grid)
    elif op.name == "drop_sheet" and len(sheets) > 1:
        del sheets[index]
    elif op.name == "swap_sheets":
        j = op.b % len(sheets)
        sheets[index], sheets[j] = sheets[j], sheets[index]
    return sheets


def _containers(tree: Any) -> list[tuple[Any, Any]]:
    """(container, key) pairs of every value in the tree, breadth-first, capped."""
    found: list[tuple[Any, Any]] = []
    queue = [tree]
    while queue and len(found) < 5000:
        node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found.append((node, key))
            if isinstance(value, dict | list):
                queue.append(value)
    return found


def _json_op(tree: Any, op: Op) -> Any:  # noqa: C901 - one branch per operation
    if op.name == "json_wrap":
        return {"data": tree} if op.a % 2 else [tree]
    if not isinstance(tree, dict | list):
        return tree
    spots = _containers(tree)
    lists = [n for n in [tree] + [c[k] for c, k in spots] if isinstance(n, list)]
    dicts = [c for c, _ in spots if isinstance(c, dict)]
    if op.name in ("json_null", "json_retype", "json_secrecy", "json_decimal_comma") and spots:
        node, key = spots[(op.a * 7919 + op.b) % len(spots)]
        value = node[key]
        if op.name == "json_null":
            node[key] = None if op.c % 2 else ""
        elif op.name == "json_secrecy":
            node[key] = SECRECY_MARKS[op.c % len(SECRECY_MARKS)]
        elif op.name == "json_decimal_comma":
            if isinstance(value, float):
                node[key] = repr(value).replace(".", ",")
        elif isinstance(value, bool):
            node[key] = str(value).lower()
        elif isinstance(value, int | float):
            node[key] = str(value)
        elif isinstance(value, str):
            try:
                number = float(value)
                node[key] = int(number) if number.is_integer() else number
            except ValueError:
                node[key] = [value] if op.c % 2 else {"value": value}
    elif op.name in ("json_drop_key", "json_rename_key") and dicts:
        node = dicts[(op.a * 31 + op.b) % len(dicts)]
        if node:
            key = sorted(node)[op.b % len(node)]
            value = node.pop(key)
            if op.name == "json_rename_key":
                node[RENAMES[op.c % len(RENAMES)](key) or key + "_"] = value
    elif lists:
        target = lists[op.a % len(lists)]
        if op.name == "json_duplicate_item" and target:
            i = op.b % len(target)
            target.insert(i, copy.deepcopy(target[i]))
        elif op.name == "json_truncate_list" and target:
            del target[op.b % len(target) :]
        elif op.name == "json_empty_list":
            target.clear()
        elif op.name == "json_append_item":
            extra: Any = (
                copy.deepcopy(target[-1]) if target and op.c % 3 else ({} if op.c % 2 else None)
            )
            target.append(extra)
    return tree


def _write_csv(grid: Grid, encoding: str, separator: str, crlf: bool) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=separator, lineterminator="\r\n" if crlf else "\n")
    for row in grid.rows:
        writer.writerow(["" if v is None else v for v in row])
    text = out.getvalue()
    return text.encode(encoding, errors="replace")


def _byte_op(data: bytes, op: Op) -> bytes:
    if op.name == "empty_file":
        return b""
    if not data:
        return data
    at = op.a * 65537 % len(data)
    if op.name == "flip_bytes":
        out = bytearray(data)
        for k in range(1 + op.c % 8):
            i = (at + k * (1 + op.b)) % len(out)
            out[i] ^= 1 + (op.b + k) % 255
        return bytes(out)
    if op.name == "truncate_bytes":
        return data[: at if op.b % 2 else len(data) * (1 + op.b % 9) // 10]
    if op.name == "insert_bytes":
        junk = bytes((op.b + i * 37) % 256 for i in range(1 + op.c % 64))
        return data[:at] + junk + data[at:]
    if op.name == "zero_bytes":
        size = 1 + op.c % 4096
        return data[:at] + b"\x00" * min(size, len(data) - at) + data[at + size :]
    return data


# ------------------------------------------------------------------------ xlsx writer


@functools.cache
def _col(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def _cell_body(value: Any) -> str | None:
    """A cell's XML after its reference (`<c r="A1` + this), None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            value = str(value)
        else:
            return f"><v>{value!r}</v></c>"
    text = escape(str(value))
    return f' t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _row_parts(row: list[Any]) -> list[str]:
    """A row's XML split where its row number goes: `str(r).join(parts)` is the row."""
    parts = ['<row r="']
    tail = '">'
    for c, value in enumerate(row):
        body = _cell_body(value)
        if body is not None:
            parts.append(f'{tail}<c r="{_col(c)}')
            tail = f'"{body}'
    parts.append(f"{tail}</row>")
    return parts


def _row_key(row: list[Any]) -> tuple:
    # The types too: 1, 1.0 and True are equal (and hash alike) but are written apart.
    return (tuple(row), tuple(map(type, row)))


def row_cache(sheets: list[tuple[str, Grid]]) -> dict[tuple, list[str]]:
    """The XML parts of every row of `sheets`, by content: a mutant changes a few rows
    and moves others, and `write_xlsx` writes the rows it did not change from here."""
    cache: dict[tuple, list[str]] = {}
    for _, grid in sheets:
        for row in grid.rows:
            key = _row_key(row)
            if key not in cache:
                cache[key] = _row_parts(row)
    return cache


def _member(name: str) -> zipfile.ZipInfo:
    """A workbook member dated 2024-01-01: a mutant's bytes depend on its ops alone."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 1  # noqa: SLF001 - what ZipFile(compresslevel=1) sets per member
    return info


def quoteattr_free(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def write_xlsx(sheets: list[tuple[str, Grid]], cache: dict | None = None) -> bytes:
    """A minimal workbook (inline strings, no styles) that calamine and openpyxl read.

    `cache` (`row_cache` of the unmutated sheets) only saves time: the bytes are the same.
    """
    cache = cache if cache is not None else {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(len(sheets))
        )
        z.writestr(
            _member("[Content_Types].xml"),
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="applicati'
            'on/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" Conten'
            'tType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="appli'
            'cation/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f"{overrides}</Types>",
        )
        z.writestr(
            _member("_rels/.rels"),
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxm'
            'lformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://sch'
            'emas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target='
            '"xl/workbook.xml"/></Relationships>',
        )
        entries = "".join(
            f'<sheet name="{quoteattr_free(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
            for i, (name, _) in enumerate(sheets)
        )
        z.writestr(
            _member("xl/workbook.xml"),
            '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlform'
            'ats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/office'
            f'Document/2006/relationships"><sheets>{entries}</sheets></workbook>',
        )
        rels = "".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocu'
            f'ment/2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
            for i in range(len(sheets))
        )
        z.writestr(
            _member("xl/_rels/workbook.xml.rels"),
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxm'
            f'lformats.org/package/2006/relationships">{rels}</Relationships>',
        )
        for i, (_, grid) in enumerate(sheets):
            parts = [
                '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxm'
                'lformats.org/spreadsheetml/2006/main"><sheetData>'
            ]
            for r, row in enumerate(grid.rows, start=1):
                row_parts = cache.get(_row_key(row)) or _row_parts(row)
                parts.append(str(r).join(row_parts))
            parts.append("</sheetData></worksheet>")
            z.writestr(_member(f"xl/worksheets/sheet{i + 1}.xml"), "".join(parts))
    return out.getvalue()
