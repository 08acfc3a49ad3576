"""Publish a verified export vintage to PostgreSQL, switch readers to it, roll back, keep N.

`publish_vintage` refuses a vintage the publication gate holds or that fails its manifest
check (`tremplin check`), loads it into its own schema in one transaction (bulk COPY of the
Parquet columns and of the JSON Lines records, joined on the key, then the primary key,
the API's indexes and ANALYZE), and switches the `tremplin` views to it in another short
transaction. Publishing the vintage that is already live changes nothing. The statements
are in pg_sql.py.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from assets.export.errors import ExportError
from assets.export.json_shape import json_path
from assets.export.vintages import LATEST, read_publication, verify_export
from assets.serving import pg_sql as q
from assets.serving.tables import SERVED_BY_NAME

log_ = logging.getLogger(__name__)

COPY_BATCH_ROWS = 50_000
COPY_WORKERS = 2
SWITCH_ATTEMPTS = 8
SWITCH_LOCK_TIMEOUT_MS = 2000
RETENTION_LOCK_TIMEOUT_MS = 2000
DEFAULT_KEEP = 3

_SCALAR_TYPES = {
    "VARCHAR": 'text collate "C"',
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "UUID": "uuid",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


class PublishError(RuntimeError):
    """The vintage cannot be published; the database and its readers are unchanged."""


@dataclass(frozen=True)
class PublishResult:
    vintage: str
    previous: str | None
    loaded: bool  # the vintage's schema was (re)loaded now
    switched: bool  # readers were switched to it now
    dropped: tuple[str, ...] = ()  # vintages removed by retention
    rows: dict[str, int] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)


def vintage_order(name: str) -> tuple[str, int]:
    """`20250301T120000Z` < `...Z-2` < `...Z-10`, as the export names them."""
    base, _, suffix = name.partition("-")
    return base, int(suffix) if suffix.isdigit() else 1


def _loaded(con: psycopg.Connection) -> dict[str, str]:
    """Loaded vintage -> content hash, oldest first."""
    rows = con.execute(q.LOADED_VINTAGES).fetchall()
    return {row[0]: row[2] for row in sorted(rows, key=lambda row: vintage_order(row[0]))}


def schema_for(vintage: str) -> str:
    """`20261203T114951Z-2` -> `vintage_20261203t114951z_2` (a plain PostgreSQL name)."""
    return "vintage_" + re.sub(r"[^a-z0-9_]", "_", vintage.lower())


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL column type of a Parquet column (as DuckDB reads it); lists, structs
    and maps become jsonb (snake_case, as in Parquet)."""
    text = duckdb_type.upper()
    if text in _SCALAR_TYPES:
        return _SCALAR_TYPES[text]
    match = _DECIMAL.match(text)
    if match:
        return f"numeric({match.group(1)}, {match.group(2)})"
    if text.endswith("]") or text.startswith(("STRUCT", "MAP", "UNION")):
        return "jsonb"
    return "text"


def resolve_vintage_dir(exports_dir: Path, vintage: str | None) -> Path:
    exports_dir = Path(exports_dir)
    name = vintage or LATEST
    if "/" in name or name.startswith(".") or not (exports_dir / name).is_dir():
        raise PublishError(f"no vintage {name!r} in {exports_dir}")
    return (exports_dir / name).resolve()


def check_publishable(vintage_dir: Path) -> dict:
    """The manifest of a vintage that may be published; PublishError otherwise."""
    publication = read_publication(vintage_dir)
    if publication.get("status") == "held":
        reasons = "; ".join(publication.get("reasons", [])) or "no reason recorded"
        raise PublishError(
            f"vintage {vintage_dir.name} is held by the publication gate ({reasons}); "
            f"review it and `tremplin accept {vintage_dir.name}` first"
        )
    try:
        return verify_export(vintage_dir)
    except ExportError as exc:
        raise PublishError(f"vintage {vintage_dir.name} fails `tremplin check`: {exc}") from None


def connect(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise PublishError(f"cannot connect to PostgreSQL: {exc}") from None


def _ensure_admin(con: psycopg.Connection) -> None:
    with con.transaction():
        con.execute(q.ADMIN_DDL)
        con.execute(q.CREATE_READ_SCHEMA)


def _columns(duck: duckdb.DuckDBPyConnection, parquet: Path) -> list[tuple[str, str]]:
    rows = duck.execute("describe select * from read_parquet(?)", [str(parquet)]).fetchall()
    return [(row[0], row[1]) for row in rows]


def _row_csv_batches(
    duck: duckdb.DuckDBPyConnection,
    parquet: Path,
    jsonl: Path,
    columns: list[tuple[str, str]],
    key: list[str],
) -> Iterator[bytes]:
    """The rows to COPY, as CSV: the Parquet columns (nested values as JSON text, the rest
    as DuckDB writes them) and the JSON Lines record with the same key, joined by DuckDB
    (the two files need not list the rows in one order). pyarrow writes NULL unquoted and
    '' quoted, which COPY tells apart; the record keeps its exported text."""
    import pyarrow.csv as pacsv

    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    selects = []
    for name, duck_type in columns:
        target = pg_type(duck_type)
        if target == "jsonb":
            selects.append(f"to_json(f.{quoted(name)})::varchar")
        elif target in ("date", "time", "timestamp", "timestamptz", "uuid") or (
            target.startswith("numeric")
        ):
            selects.append(f"f.{quoted(name)}::varchar")
        else:
            selects.append(f"f.{quoted(name)}")
    types = dict(columns)
    join = " and ".join(
        f"f.{quoted(k)} = try_cast(json_extract_string(j.json, $k{i}) as {types[k]})"
        for i, k in enumerate(key)
    )
    params = {"parquet": str(parquet), "jsonl": str(jsonl)}
    params |= {f"k{i}": "$." + json_path(k)[0] for i, k in enumerate(key)}
    # Column names come from the file itself and are quoted; paths and JSON paths are
    # parameters.
    reader = duck.sql(
        f"select {', '.join(selects)}, j.json::varchar from read_parquet($parquet) f "
        "join read_json_objects($jsonl, format = 'newline_delimited', "
        f"maximum_object_size = 16777216) j on {join}",
        params=params,
    ).to_arrow_reader(COPY_BATCH_ROWS)
    options = pacsv.WriteOptions(include_header=False)
    for batch in reader:
        sink = io.BytesIO()
        pacsv.write_csv(batch, sink, write_options=options)
        yield sink.getvalue()


def _set_compression(con: psycopg.Connection) -> None:
    """lz4 for the records' TOAST (PostgreSQL 14+ built with lz4): 40 % faster than pglz
    on the national local_diagnosis; pglz where it is not available."""
    try:
        with con.transaction():
            con.execute(q.TOAST_LZ4)
    except psycopg.Error:
        pass


def _copy_worker(dsn: str, statement: sql.Composed, blocks: queue.Queue, errors: list) -> None:
    """COPY the CSV blocks of the queue until None, on a connection of its own: two of them
    run beside DuckDB, so PostgreSQL parses the jsonb on both cores."""
    try:
        with psycopg.connect(dsn, autocommit=True) as con:
            _set_compression(con)
            with con.cursor().copy(statement) as copy:
                while (block := blocks.get()) is not None:
                    copy.write(block)
    except BaseException as exc:  # reported by the caller
        errors.append(exc)
        while blocks.get() is not None:  # let the producer finish
            pass


def _load_table(
    con: psycopg.Connection,
    dsn: str,
    duck: duckdb.DuckDBPyConnection,
    schema: str,
    name: str,
    directory: Path,
    entry: dict,
) -> int:
    parquet = directory / entry["files"]["parquet"]["path"]
    jsonl = directory / entry["files"]["jsonl"]["path"]
    columns = _columns(duck, parquet)
    spec = SERVED_BY_NAME.get(name)
    key = list(spec.key) if spec else [columns[0][0]]
    types = {column: pg_type(duck_type) for column, duck_type in columns}
    missing = [k for k in key if k not in types]
    if missing:
        raise PublishError(f"{name}: key column(s) {missing} not in {parquet.name}")
    table = sql.Identifier(schema, name)
    con.execute(
        q.CREATE_TABLE.format(
            table=table,
            columns=sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c, _ in columns
            ),
        )
    )
    phases = {"start": time.monotonic()}
    workers = COPY_WORKERS if entry["rows"] > COPY_BATCH_ROWS else 1
    queues = [queue.Queue(maxsize=2) for _ in range(workers)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_copy_worker, args=(dsn, q.COPY_ROWS.format(table=table), blocks, errors)
        )
        for blocks in queues
    ]
    for thread in threads:
        thread.start()
    try:
        for number, block in enumerate(_row_csv_batches(duck, parquet, jsonl, columns, key)):
            if errors:
                break
            queues[number % workers].put(block)
    finally:
        for blocks in queues:
            blocks.put(None)
        for thread in threads:
            thread.join()
    phases["copy"] = time.monotonic()
    if errors:
        raise errors[0]
    with con.transaction():
        count = con.execute(q.COUNT_ROWS.format(table=table)).fetchone()[0]
        if count != entry["rows"]:
            raise PublishError(
                f"{name}: {entry['rows']} rows in the manifest, {count} rows where the Parquet "
                f"and JSON Lines files agree on the key {key}"
            )
        con.execute(q.MAINTENANCE_MEMORY)
        con.execute(
            q.ADD_PRIMARY_KEY.format(
                table=table, columns=sql.SQL(", ").join(map(sql.Identifier, key))
            )
        )
        con.execute(q.RECORD_NOT_NULL.format(table=table))
        indexed = list(key)
        for number, index in enumerate(spec.indexes if spec else ()):
            con.execute(
                q.CREATE_INDEX.format(
                    name=sql.Identifier(f"{name}_i{number}"),
                    table=table,
                    columns=sql.SQL(", ").join(map(sql.Identifier, index)),
                )
            )
            indexed += [c for c in index if c not in indexed]
    phases["indexes"] = time.monotonic()
    # Statistics of the columns the API filters and sorts on (the records are not).
    con.execute(
        q.ANALYZE_COLUMNS.format(
            table=table, columns=sql.SQL(", ").join(map(sql.Identifier, indexed))
        )
    )
    phases["analyze"] = time.monotonic()
    marks = list(phases.items())
    log_.debug(
        "%s: %s",
        name,
        ", ".join(f"{k} {t - marks[i][1]:.2f} s" for i, (k, t) in enumerate(marks[1:])),
    )
    return count


def _load_vintage(
    con: psycopg.Connection, dsn: str, directory: Path, manifest: dict, log: logging.Logger
) -> tuple[dict[str, int], dict[str, float]]:
    """The vintage's schema, complete with every table; it counts as loaded once recorded in
    tremplin_admin.vintages (the last step). A failure drops the schema again."""
    vintage = manifest["vintage"]
    schema = schema_for(vintage)
    rows, seconds = {}, {}
    duck = duckdb.connect()
    _set_compression(con)
    try:
        duck.execute("set TimeZone = 'UTC'")
        duck.execute("set enable_progress_bar = false")
        with con.transaction():
            con.execute(q.DROP_SCHEMA.format(schema=sql.Identifier(schema)))
            con.execute(q.FORGET_VINTAGE, [vintage])
            con.execute(q.CREATE_SCHEMA.format(schema=sql.Identifier(schema)))
        for name, entry in sorted(manifest["tables"].items()):
            started = time.monotonic()
            rows[name] = _load_table(con, dsn, duck, schema, name, directory, entry)
            seconds[name] = round(time.monotonic() - started, 3)
            log.info("%s: %s rows loaded in %.1f s", name, rows[name], seconds[name])
        schemas = {
            name: json.loads((directory / entry["files"]["schema"]["path"]).read_text())
            for name, entry in manifest["tables"].items()
        }
        meta = sql.Identifier(schema, q.META_TABLE)
        with con.transaction():
            con.execute(q.CREATE_META.format(table=meta))
            con.execute(
                q.INSERT_META.format(table=meta),
                [
                    vintage,
                    manifest["content_sha256"],
                    manifest.get("created_at"),
                    Jsonb(manifest),
                    Jsonb(schemas),
                ],
            )
            con.execute(
                q.RECORD_VINTAGE,
                [vintage, schema, manifest["content_sha256"], Jsonb(rows)],
            )
    except BaseException:
        try:
            if con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                con.execute(q.DROP_SCHEMA.format(schema=sql.Identifier(schema)))
        except psycopg.Error:
            pass
        raise
    finally:
        duck.close()
    return rows, seconds


def _table_columns(con: psycopg.Connection, schema: str, table: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def _switch(
    con: psycopg.Connection, vintage: str, schema: str, previous: str | None, action: str
) -> None:
    """Point every `tremplin` view at `schema`, in one transaction.

    `vintage` first, then the tables in name order: readers name `vintage` first too, so
    nobody waits on a lock the other holds. A reader sees the old views or the new ones.
    """
    tables = sorted(
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE' and table_name <> %s",
            [schema, q.META_TABLE],
        ).fetchall()
    )
    targets = [(q.META_VIEW, q.META_TABLE)] + [(t, t) for t in tables]
    for attempt in range(1, SWITCH_ATTEMPTS + 1):
        try:
            with con.transaction():
                con.execute(q.SWITCH_LOCK_TIMEOUT.format(ms=sql.Literal(SWITCH_LOCK_TIMEOUT_MS)))
                for view_name, table_name in targets:
                    view = sql.Identifier(q.READ_SCHEMA, view_name)
                    columns = sql.SQL(", ").join(
                        map(sql.Identifier, _table_columns(con, schema, table_name))
                    )
                    statement = q.REPLACE_VIEW.format(
                        view=view, columns=columns, table=sql.Identifier(schema, table_name)
                    )
                    try:
                        with con.transaction():  # a savepoint: the columns may have changed
                            con.execute(statement)
                    except (psycopg.errors.InvalidTableDefinition, psycopg.errors.DatatypeMismatch):
                        con.execute(q.DROP_VIEW.format(view=view))
                        con.execute(statement)
                wanted = {v for v, _ in targets}
                for (existing,) in con.execute(q.READ_VIEWS, [q.READ_SCHEMA]).fetchall():
                    if existing not in wanted:
                        con.execute(
                            q.DROP_VIEW.format(view=sql.Identifier(q.READ_SCHEMA, existing))
                        )
                con.execute(q.SET_LIVE, [vintage])
                con.execute(q.RECORD_SWITCH, [vintage, previous, action])
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == SWITCH_ATTEMPTS:
                raise PublishError(
                    f"readers kept the views locked through {SWITCH_ATTEMPTS} attempts; "
                    "nothing was switched"
                ) from None
            time.sleep(0.05 * attempt)


def _retention(
    con: psycopg.Connection, keep: int, live: str, log: logging.Logger
) -> tuple[str, ...]:
    """Drop the loaded vintages beyond the newest `keep` (never the live one)."""
    loaded = list(_loaded(con))
    excess = [v for v in loaded[: max(0, len(loaded) - keep)] if v != live]
    dropped = []
    for vintage in excess:
        try:
            with con.transaction():
                con.execute(
                    q.RETENTION_LOCK_TIMEOUT.format(ms=sql.Literal(RETENTION_LOCK_TIMEOUT_MS))
                )
                con.execute(q.DROP_SCHEMA.format(schema=sql.Identifier(schema_for(vintage))))
                con.execute(q.FORGET_VINTAGE, [vintage])
            dropped.append(vintage)
        except psycopg.errors.LockNotAvailable:
            log.warning("vintage %s still read; dropped at the next publication", vintage)
    return tuple(dropped)


class _Publisher:
    """A connection holding the publishers' advisory lock."""

    def __init__(self, dsn: str) -> None:
        self.con = connect(dsn)

    def __enter__(self) -> psycopg.Connection:
        try:
            _ensure_admin(self.con)
            self.con.execute(q.LOCK_PUBLISHERS, [q.ADVISORY_KEY])
        except BaseException:
            self.con.close()
            raise
        return self.con

    def __exit__(self, *exc) -> None:
        try:
            self.con.execute(q.UNLOCK_PUBLISHERS, [q.ADVISORY_KEY])
        finally:
            self.con.close()


def _live(con: psycopg.Connection) -> str | None:
    row = con.execute(q.LIVE_VINTAGE).fetchone()
    return row[0] if row else None


def publish_vintage(
    dsn: str,
    exports_dir: Path,
    vintage: str | None = None,
    *,
    keep: int = DEFAULT_KEEP,
    log: logging.Logger | None = None,
) -> PublishResult:
    """Load `vintage` (default: `latest`) unless already loaded, switch readers to it, and
    keep the newest `keep` vintages. Raises PublishError with the database unchanged."""
    log = log or log_
    if keep < 1:
        raise PublishError(f"keep must be at least 1, got {keep}")
    directory = resolve_vintage_dir(exports_dir, vintage)
    manifest = check_publishable(directory)
    name = manifest["vintage"]
    with _Publisher(dsn) as con:
        loaded = _loaded(con)
        previous = _live(con)
        reload = loaded.get(name) != manifest["content_sha256"]
        rows: dict[str, int] = {}
        seconds: dict[str, float] = {}
        if reload:
            try:
                rows, seconds = _load_vintage(con, dsn, directory, manifest, log)
            except (psycopg.Error, OSError, duckdb.Error, ValueError) as exc:
                raise PublishError(
                    f"loading vintage {name} failed, nothing changed: {exc}"
                ) from None
        switched = reload or previous != name
        if switched:
            _switch(con, name, schema_for(name), previous, "publish")
            log.info("readers switched to %s (was %s)", name, previous or "none")
        else:
            log.info("vintage %s is already live: nothing changed", name)
        dropped = _retention(con, keep, name, log)
    return PublishResult(name, previous, reload, switched, dropped, rows, seconds)


def rollback(dsn: str, *, log: logging.Logger | None = None) -> PublishResult:
    """Switch readers back to the newest loaded vintage older than the live one."""
    log = log or log_
    with _Publisher(dsn) as con:
        live = _live(con)
        if live is None:
            raise PublishError("nothing is published in this database")
        older = [v for v in _loaded(con) if vintage_order(v) < vintage_order(live)]
        if not older:
            raise PublishError(f"no vintage older than {live} is kept to roll back to")
        target = older[-1]
        _switch(con, target, schema_for(target), live, "rollback")
        log.info("readers switched back to %s (was %s)", target, live)
    return PublishResult(target, live, loaded=False, switched=True)


def published_state(dsn: str) -> dict:
    """The live vintage and the kept ones (for `tremplin publish --status` and tests)."""
    with connect(dsn) as con:
        _ensure_admin(con)
        return {
            "live": _live(con),
            "kept": list(_loaded(con)),
        }
