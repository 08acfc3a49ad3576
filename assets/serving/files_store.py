"""The embedded read store: the API over a vintage's files, no database needed.

A `Snapshot` is one verified vintage. Its JSON Lines files are memory-mapped and indexed
once (key -> line, filter value -> lines, in key order), so a lookup returns the exported
line itself, byte for byte, without parsing or re-serialising anything. `FilesStore`
follows `exports/latest`: each request asks for the current snapshot, which costs one
`readlink`; a new vintage is loaded and verified in a background thread while the old one
keeps answering, then replaces it in one assignment. A request keeps the snapshot it
started with, so it never mixes two vintages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import mmap
import os
import threading
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from assets.export.errors import ExportError
from assets.export.json_shape import json_path
from assets.export.vintages import LATEST, MANIFEST, verify_export
from assets.serving.tables import SERVED_TABLES, ServedTable

log_ = logging.getLogger(__name__)


class StoreUnavailableError(RuntimeError):
    """No vintage can be served (nothing published yet, or the database is unreachable)."""


@dataclass
class TableIndex:
    """One table's JSON Lines: where each record is, in key order, and the filter values."""

    spec: ServedTable
    data: mmap.mmap | bytes
    starts: array  # byte offset of the record at each position (key order)
    ends: array
    by_key: dict[str, int]  # one-column key -> position
    columns: dict[str, list]  # filter param -> value at each position
    groups: dict[str, dict[object, list[int]]]  # filter param -> value -> positions

    def line(self, position: int) -> bytes:
        return self.data[self.starts[position] : self.ends[position]]

    def record(self, key: str) -> bytes | None:
        position = self.by_key.get(key)
        return None if position is None else self.line(position)

    def page(
        self, filters: Mapping[str, object], limit: int, offset: int
    ) -> tuple[list[bytes], bool]:
        """Records matching every filter, in key order: `limit` of them from `offset`, and
        whether more follow."""
        if len(filters) > 1:
            lists = [self.groups[param].get(value, []) for param, value in filters.items()]
            smallest = min(lists, key=len)
            checks = [(self.columns[p], v) for p, v in filters.items()]
            positions = (p for p in smallest if all(col[p] == v for col, v in checks))
        else:  # one filter or none: the positions are a list to slice
            ((param, value),) = filters.items() if filters else ((None, None),)
            group = self.groups[param].get(value, []) if filters else range(len(self.starts))
            window = group[offset : offset + limit + 1]
            return [self.line(p) for p in window[:limit]], len(window) > limit
        chosen = []
        for index, position in enumerate(positions):
            if index < offset:
                continue
            if len(chosen) == limit:
                return chosen, True
            chosen.append(self.line(position))
        return chosen, False


@dataclass
class Snapshot:
    """One vintage, as the API serves it: manifest, schemas and indexed tables."""

    vintage: str
    directory: Path
    manifest: dict
    manifest_bytes: bytes
    schemas: dict[str, dict]
    tables: dict[str, TableIndex]
    loaded_at: dt.datetime
    backend: str = "files"
    extra: dict = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return etag_for(self.manifest)


def etag_for(manifest: Mapping) -> str:
    """Weak ETag of every response of a vintage: its content hash (the records are
    immutable within a vintage, and equal as JSON in both back ends)."""
    content = str(manifest.get("content_sha256") or manifest.get("vintage") or "")
    return 'W/"' + hashlib.sha256(content.encode()).hexdigest()[:24] + '"'


def _fields(
    spec: ServedTable, schema: dict
) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """The key fields and the filter fields, each with whether the schema says integer."""
    properties = schema.get("properties", {})

    def is_integer(field: str) -> bool:
        kind = properties.get(field, {}).get("type")
        return "integer" in (kind if isinstance(kind, list) else [kind])

    keys = [json_path(column)[0] for column in spec.key]
    return [(k, is_integer(k)) for k in keys], [
        (f.param, is_integer(f.param)) for f in spec.filters
    ]


def _rows_from_duckdb(path: Path, data, keys, params) -> list[tuple] | None:
    """(key tuple, start, end, filter values) per line, key order, read by DuckDB (which
    releases the GIL: a server indexing a new vintage keeps answering). None when the line
    boundaries it implies do not fall on the file's own (then the caller parses lines)."""
    import duckdb
    import numpy as np

    fields = [*keys, *params]
    selects = [
        f"try_cast(f[{n}] as bigint)" if integer else f"f[{n}]"
        for n, (_, integer) in enumerate(fields, start=1)
    ]
    # One parse per record (a list of JSON paths); the paths are a parameter.
    query = (
        "select line, bytes"
        + "".join(f", {select}" for select in selects)
        + " from (select row_number() over () - 1 as line, strlen(json::varchar) as bytes, "
        "json_extract_string(json, $paths) as f from read_json_objects($path, "
        "format = 'newline_delimited', maximum_object_size = 268435456))"
    )
    values = {"path": str(path), "paths": ["$." + name for name, _ in fields]}
    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        table = con.execute(query, values).fetchnumpy()
    finally:
        con.close()
    names = list(table)
    lines, lengths = table[names[0]], table[names[1]].astype(np.int64)
    if len(lines) and not np.array_equal(lines, np.arange(len(lines))):
        return None
    ends = np.cumsum(lengths + 1) - 1
    starts = ends - lengths
    size = path.stat().st_size
    if len(lengths) and int(ends[-1]) + 1 != size:
        return None
    data = np.frombuffer(data, dtype=np.uint8)
    if len(lengths) and not (np.all(data[starts] == ord("{")) and np.all(data[ends] == 10)):
        return None
    key_columns = [table[n].tolist() for n in names[2 : 2 + len(keys)]]
    filter_columns = [table[n].tolist() for n in names[2 + len(keys) :]]
    for columns, fields in ((key_columns, keys), (filter_columns, params)):
        for index, (_, integer) in enumerate(fields):
            if integer:
                columns[index] = [None if v is None else int(v) for v in columns[index]]
    rows = list(
        zip(
            zip(*key_columns, strict=True),
            starts.tolist(),
            ends.tolist(),
            zip(*filter_columns, strict=True) if filter_columns else [()] * len(lengths),
            strict=True,
        )
    )
    return rows


def _rows_from_python(path: Path, data, keys, params) -> list[tuple]:
    rows = []
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        if end > start:
            try:
                record = orjson.loads(data[start:end])
            except orjson.JSONDecodeError as exc:
                raise ExportError(f"{path}: byte {start}: not a JSON record: {exc}") from None
            rows.append(
                (
                    tuple(record.get(f) for f, _ in keys),
                    start,
                    end,
                    tuple(record.get(p) for p, _ in params),
                )
            )
        start = end + 1
    return rows


def _index_table(spec: ServedTable, path: Path, schema: dict) -> TableIndex:
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    keys, params = _fields(spec, schema)
    rows = _rows_from_duckdb(path, data, keys, params) if size else []
    if rows is None:
        rows = _rows_from_python(path, data, keys, params)
    # Key order, the same as PostgreSQL's `order by` on the key (collation "C").
    rows.sort(key=lambda row: tuple(("" if v is None else v) for v in row[0]))
    by_key = {}
    if spec.key_field is not None:
        by_key = {row[0][0]: position for position, row in enumerate(rows)}
        if len(by_key) != len(rows):
            raise ExportError(f"{path}: {spec.key_field} is not unique")
    columns = {p: [row[3][i] for row in rows] for i, (p, _) in enumerate(params)}
    groups: dict[str, dict[object, list[int]]] = {}
    for param, values in columns.items():
        group = groups.setdefault(param, {})
        for position, value in enumerate(values):
            group.setdefault(value, []).append(position)
    return TableIndex(
        spec=spec,
        data=data,
        starts=array("q", (row[1] for row in rows)),
        ends=array("q", (row[2] for row in rows)),
        by_key=by_key,
        columns=columns,
        groups=groups,
    )


def load_snapshot(vintage_dir: Path, *, verify: bool = True) -> Snapshot:
    """Verify a vintage against its manifest (sha256 and rows) and index its tables."""
    vintage_dir = Path(vintage_dir).resolve()
    manifest = verify_export(vintage_dir) if verify else None
    manifest_bytes = (vintage_dir / MANIFEST).read_bytes()
    manifest = manifest or orjson.loads(manifest_bytes)
    tables, schemas = {}, {}
    for spec in SERVED_TABLES:
        entry = manifest["tables"].get(spec.table)
        if entry is None:
            continue
        schemas[spec.table] = orjson.loads(
            (vintage_dir / entry["files"]["schema"]["path"]).read_bytes()
        )
        tables[spec.table] = _index_table(
            spec, vintage_dir / entry["files"]["jsonl"]["path"], schemas[spec.table]
        )
    return Snapshot(
        vintage=manifest["vintage"],
        directory=vintage_dir,
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        schemas=schemas,
        tables=tables,
        loaded_at=dt.datetime.now(dt.UTC),
    )


class FilesStore:
    """The snapshot `exports/latest` points to, reloaded in the background when it moves."""

    backend = "files"

    def __init__(self, exports_dir: Path, *, log: logging.Logger | None = None) -> None:
        self.exports_dir = Path(exports_dir)
        self.log = log or log_
        self._snapshot: Snapshot | None = None
        self._target: str | None = None  # the `latest` target the snapshot came from
        self._loading: str | None = None
        self._failed: str | None = None  # a target that failed to load; not retried
        self._lock = threading.Lock()

    def _latest_target(self) -> str | None:
        try:
            return os.readlink(self.exports_dir / LATEST)
        except OSError:
            return None

    def _load(self, target: str) -> None:
        try:
            snapshot = load_snapshot(self.exports_dir / target)
        except (ExportError, OSError, ValueError, KeyError) as exc:
            self.log.error("cannot serve vintage %s: %s; keeping the previous one", target, exc)
            with self._lock:
                self._failed, self._loading = target, None
            return
        with self._lock:
            self._snapshot, self._target, self._loading = snapshot, target, None
        self.log.info("serving vintage %s from %s", snapshot.vintage, snapshot.directory)

    def start(self) -> Snapshot:
        """Load `latest` now (the server waits for its first vintage)."""
        target = self._latest_target()
        if target is None:
            raise StoreUnavailableError(f"no export published at {self.exports_dir / LATEST}")
        self._load(target)
        if self._snapshot is None:
            raise StoreUnavailableError(f"vintage {target} cannot be served (see the log)")
        return self._snapshot

    def snapshot(self) -> Snapshot:
        """The snapshot to answer one request with; starts loading a newer `latest`."""
        target = self._latest_target()
        current = self._snapshot
        if target is not None and target != self._target:
            with self._lock:
                start = target not in (self._loading, self._failed)
                if start:
                    self._loading = target
            if start:
                if current is None:
                    self._load(target)
                    current = self._snapshot
                else:
                    threading.Thread(target=self._load, args=(target,), daemon=True).start()
        if current is None:
            raise StoreUnavailableError(f"no vintage to serve at {self.exports_dir / LATEST}")
        return current

    # The API's read interface, shared with the PostgreSQL store (pg_store.py).
    async def current(self) -> Snapshot:
        return self.snapshot()

    async def record(self, table: str, key: str) -> tuple[Snapshot, bytes | None, bool]:
        """(snapshot, the exported line or None, whether the table is in the vintage)."""
        snapshot = self.snapshot()
        index = snapshot.tables.get(table)
        return snapshot, (index.record(key) if index else None), index is not None

    async def page(
        self, table: str, filters: Mapping[str, object], limit: int, offset: int
    ) -> tuple[Snapshot, list[bytes] | None, bool]:
        snapshot = self.snapshot()
        index = snapshot.tables.get(table)
        if index is None:
            return snapshot, None, False
        items, more = index.page(filters, limit, offset)
        return snapshot, items, more

    async def close(self) -> None:
        return None

    def wait_for(self, vintage: str, timeout_s: float = 60.0) -> Snapshot:
        """Block until `vintage` is served (tests, the bench)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            snapshot = self.snapshot()
            if snapshot.vintage == vintage:
                return snapshot
            time.sleep(0.02)
        raise TimeoutError(f"vintage {vintage} not served after {timeout_s} s")
