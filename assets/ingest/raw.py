"""Shared helpers of the parse step: reading publishers' CSVs, provenance, raw parquet.

Raw parquet is published with a write-then-rename so that a reader (dbt) sees either the
previous good file or the new validated one, never a half-written file.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from assets.foundation.files import write_atomically
from assets.ingest.landing import LandedFile

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ("_source_file", "_source_url", "_fetched_at", "_sha256", "_row_number")


class ParseError(RuntimeError):
    """A landed file cannot be read as the publication it claims to be."""


@dataclass(frozen=True)
class ParsedTable:
    """A raw table ready for validation, with the landed files it came from."""

    table: str
    frame: pd.DataFrame
    source_files: tuple[LandedFile, ...]
    # Set for tables that accumulate (e.g. one snapshot per day): the frame is published
    # as raw/<slug>/<table>/<partition>.parquet beside the earlier partitions.
    partition: str | None = None


def snake_case(name: str) -> str:
    """`chefLieu` -> `chef_lieu`, `Code métier BMO` -> `code_metier_bmo`."""
    import unicodedata

    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    name = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
    return name.lower()


def decode_text(data: bytes, *, slug: str, file_name: str) -> str:
    """Decode a publisher's text file: UTF-8 (BOM tolerated), else Windows-1252.

    Some files are Latin-1 despite a `_utf8` name; strict UTF-8 decoding fails on them at
    the first accented byte, so the fallback is reliable and logged.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4096]:
        raise ParseError(
            f"{slug}: {file_name} looks like UTF-16 or binary data (BOM or NUL bytes); "
            "expected UTF-8 or Windows-1252 text"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        log.warning(
            "%s: %s is not valid UTF-8 (byte %d); reading it as Windows-1252",
            slug,
            file_name,
            exc.start,
        )
        try:
            return data.decode("cp1252", errors="strict")
        except UnicodeDecodeError as cp_exc:
            raise ParseError(
                f"{slug}: {file_name} is neither UTF-8 (byte {exc.start}) nor Windows-1252 "
                f"text (byte 0x{data[cp_exc.start]:02x} at {cp_exc.start}); expected UTF-8 or "
                "Windows-1252 text"
            ) from cp_exc


def read_csv_text(text: str, *, slug: str, file_name: str, sep: str = ",") -> pd.DataFrame:
    """Every column as text, empty fields as NULL, header names in snake_case."""
    if not text.strip():
        raise ParseError(f"{slug}: {file_name} is empty (expected a CSV header and rows)")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            quotechar='"',
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise ParseError(f"{slug}: {file_name} is not a readable CSV ({exc})") from exc
    frame.columns = [snake_case(str(c)) for c in frame.columns]
    return frame


def add_provenance(frame: pd.DataFrame, landed: LandedFile) -> pd.DataFrame:
    """The landed file's provenance on every row; a table whose headers name one column
    twice (`Zone` and `zone `, once normalised) is refused: no table can hold both."""
    names = [str(c) for c in frame.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ParseError(
            f"{landed.slug}: {landed.file_name} names the column(s) {twice} more than once "
            "(headers compared in snake_case); expected each column once"
        )
    frame = frame.copy()
    frame["_source_file"] = landed.file_name
    frame["_source_url"] = landed.upstream_url or landed.url
    frame["_fetched_at"] = pd.Timestamp(landed.fetched_at).tz_convert("UTC").tz_localize(None)
    frame["_sha256"] = landed.sha256
    frame["_row_number"] = pd.Series(range(1, len(frame) + 1), index=frame.index, dtype="int64")
    return frame


def write_parquet_atomically(frame: pd.DataFrame, target: Path) -> Path:
    """Write `frame` to `target` through a temporary file in the same directory."""
    write_atomically(target, lambda tmp: frame.to_parquet(tmp, index=False))
    return target


def raw_path(raw_dir: Path, slug: str, table: str, partition: str | None = None) -> Path:
    if partition:
        return raw_dir / slug / table / f"{partition}.parquet"
    return raw_dir / slug / f"{table}.parquet"


def rejected_path(raw_dir: Path, slug: str, table: str, partition: str | None = None) -> Path:
    name = f"{table}__{partition}" if partition else table
    return raw_dir / slug / "_rejected" / f"{name}.parquet"
