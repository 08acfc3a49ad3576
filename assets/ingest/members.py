"""Reading landed files and the entries of a landed zip through one interface.

`iter_members` sees through a publisher's zip, so a parser works whether the mirror holds
the CSVs or the zip that contains them.
"""

from __future__ import annotations

import fnmatch
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from assets.ingest.http import FetchError
from assets.ingest.landing import LandedFile


def iter_members(
    files: Iterable[LandedFile], pattern: str
) -> Iterator[tuple[str, Callable[[], BinaryIO], LandedFile]]:
    """Yield (name, opener, landed file) for each landed file or zip entry matching `pattern`.

    Zip entries are matched and named by their basename, so a parser asking for
    `unix_referentiel_code_rome_v*_utf8.csv` gets the same name whether the CSV landed
    alone or inside the publisher's zip. A zip holding an absolute or `..` entry is refused
    as a whole before anything is yielded from it.
    """
    for landed in files:
        if fnmatch.fnmatch(landed.file_name, pattern):
            yield landed.file_name, _file_opener(landed.path), landed
        if landed.file_name.lower().endswith(".zip"):
            for entry, basename in _zip_entries(landed):
                if fnmatch.fnmatch(basename, pattern):
                    yield basename, _zip_opener(landed, entry), landed


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return path.open("rb")

    return opener


def _zip_entries(landed: LandedFile) -> list[tuple[str, str]]:
    try:
        with zipfile.ZipFile(landed.path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FetchError(
            f"{landed.slug}: {landed.file_name} ({landed.path}) is not a readable zip: {exc}"
        ) from None
    entries = []
    for info in infos:
        name = info.filename
        normalised = name.replace("\\", "/")
        parts = PurePosixPath(normalised).parts
        if normalised.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise FetchError(
                f"{landed.slug}: zip {landed.file_name} ({landed.path}) holds an unsafe entry "
                f"{name!r} (absolute path or '..'); refusing the archive"
            )
        if info.is_dir():
            continue
        entries.append((name, normalised.rsplit("/", 1)[-1]))
    return entries


def _zip_opener(landed: LandedFile, entry: str) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        try:
            zf = zipfile.ZipFile(landed.path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FetchError(
                f"{landed.slug}: {landed.file_name} ({landed.path}) is not a readable zip: {exc}"
            ) from None
        try:
            # The entry stream keeps the archive file open until the stream is closed.
            return zf.open(entry)  # type: ignore[return-value]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FetchError(
                f"{landed.slug}: cannot read entry {entry!r} of zip {landed.file_name} "
                f"({landed.path}): {exc}"
            ) from None
        finally:
            zf.close()

    return opener
