"""The API's read store over PostgreSQL: the `tremplin` views of the live vintage.

Every read is one parameterised statement that names the `vintage` view before the
table's, so the vintage in the response headers is the one the records came from, even
while a publication switches the views. The vintage's manifest and schemas are cached
and re-read when a statement reports another vintage (or after `META_TTL_S`).

Key lookups are batched: the lookups of a table that arrive while its previous statement
runs wait for it, then go together in one statement (`key = any(...)`). Under load a
round trip and a statement then serve tens of requests, which is what lets PostgreSQL keep
up with the files back end on two cores; alone, a lookup is one statement as before. All
the records of a batch come from one vintage, the one their responses name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from psycopg import sql

from assets.serving import pg_sql as q
from assets.serving.files_store import StoreUnavailableError, etag_for
from assets.serving.tables import SERVED_BY_NAME

META_TTL_S = 1.0
# The most keys one lookup statement carries; more wait for the next one.
MAX_BATCH = 256


@dataclass
class Meta:
    vintage: str
    manifest: dict
    manifest_bytes: bytes
    schemas: dict[str, dict]
    loaded_at: dt.datetime
    backend: str = "postgres"

    @property
    def etag(self) -> str:
        return etag_for(self.manifest)

    @property
    def tables(self) -> dict:
        return self.manifest.get("tables", {})


class PostgresStore:
    backend = "postgres"

    def __init__(self, dsn: str, *, connections: int = 4) -> None:
        self.dsn = dsn
        self.size = connections
        # Idle (connection, cursor) pairs: a cursor kept per connection costs half of a
        # `connection.execute`, which makes a new cursor each time.
        self._idle: asyncio.LifoQueue | None = None
        self._meta: Meta | None = None
        self._checked = 0.0
        self._statements: dict[tuple, sql.Composed] = {}
        # Per table: the lookups waiting for the next statement, and whether one runs.
        self._waiting: dict[str, dict[str, list[asyncio.Future]]] = {}
        self._draining: set[str] = set()

    async def open(self) -> Meta:
        self._idle = asyncio.LifoQueue()
        for _ in range(self.size):
            self._idle.put_nowait(None)  # connected on first use
        return await self._refresh()

    async def close(self) -> None:
        if self._idle is None:
            return
        while not self._idle.empty():
            pair = self._idle.get_nowait()
            if pair is not None:
                await pair[0].close()

    async def _execute(self, statement, values=None) -> list[tuple]:
        """Run one statement on an idle connection (opened when needed); a connection that
        failed is dropped and the next use opens a new one."""
        import psycopg

        if self._idle is None:
            raise StoreUnavailableError("PostgreSQL store not opened")
        pair = await self._idle.get()
        try:
            if pair is None or pair[0].closed:
                con = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=10
                )
                pair = (con, con.cursor())
            cursor = pair[1]
            await cursor.execute(statement, values, prepare=values is not None)
            rows = await cursor.fetchall()
        except psycopg.errors.UndefinedTable:
            self._idle.put_nowait(pair)
            raise
        except psycopg.Error as exc:
            if pair is not None:
                await pair[0].close()
            self._idle.put_nowait(None)
            raise StoreUnavailableError(f"PostgreSQL: {exc}".strip()) from None
        except BaseException:
            if pair is not None:
                await pair[0].close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(pair)
        return rows

    async def _refresh(self) -> Meta:
        import psycopg

        try:
            rows = await self._execute(q.READ_META)
        except psycopg.errors.UndefinedTable:
            rows = []
        row = rows[0] if rows else None
        if row is None:
            raise StoreUnavailableError("PostgreSQL: no vintage published (`tremplin publish`)")
        vintage, _sha, _created, manifest_text, schemas_text = row
        manifest_bytes = manifest_text.encode()
        self._meta = Meta(
            vintage=vintage,
            manifest=orjson.loads(manifest_bytes),
            manifest_bytes=manifest_bytes,
            schemas=orjson.loads(schemas_text),
            loaded_at=dt.datetime.now(dt.UTC),
        )
        self._checked = time.monotonic()
        return self._meta

    async def current(self) -> Meta:
        if self._meta is None or time.monotonic() - self._checked > META_TTL_S:
            return await self._refresh()
        return self._meta

    async def _meta_for(self, vintage: str) -> Meta:
        meta = self._meta
        if meta is None or meta.vintage != vintage:
            meta = await self._refresh()
        return meta

    def _statement(self, table: str, params: tuple[str, ...]) -> sql.Composed:
        cache_key = (table, params)
        statement = self._statements.get(cache_key)
        if statement is None:
            spec = SERVED_BY_NAME[table]
            meta = sql.Identifier(q.READ_SCHEMA, q.META_VIEW)
            relation = sql.Identifier(q.READ_SCHEMA, table)
            columns = {f.param: f.column for f in spec.filters}
            where = sql.SQL("")
            if params:
                where = sql.SQL("where ") + sql.SQL(" and ").join(
                    sql.SQL("t.{} = %s").format(sql.Identifier(columns[p])) for p in params
                )
            statement = q.READ_PAGE.format(
                meta=meta,
                table=relation,
                where=where,
                order=sql.SQL(", ").join(sql.Identifier("t", c) for c in spec.key),
            )
            self._statements[cache_key] = statement
        return statement

    async def _fetch(self, statement, values) -> list[tuple]:
        import psycopg

        try:
            return await self._execute(statement, values)
        except psycopg.errors.UndefinedTable:  # the table is not in this vintage
            return []

    async def record(self, table: str, key: str) -> tuple[Meta, bytes | None, bool]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(table, {}).setdefault(key, []).append(future)
        if table not in self._draining:
            self._draining.add(table)
            asyncio.create_task(self._drain(table))
        vintage, record, present = await future
        if vintage is None:
            return await self.current(), None, False
        return await self._meta_for(vintage), record, present

    async def _drain(self, table: str) -> None:
        """Answer the table's waiting lookups, a statement at a time, until none is left."""
        waiting = self._waiting[table]
        statement = self._records_statement(table)
        try:
            while waiting:
                keys = list(waiting)[:MAX_BATCH]
                batch = {key: waiting.pop(key) for key in keys}
                try:
                    try:
                        rows = await self._fetch(statement, [keys])
                    except StoreUnavailableError:
                        # Once more, on a new connection: a publication that has just
                        # switched the views invalidates the statement prepared on the old
                        # ones ("cached plan must not change result type"); every lookup of
                        # the batch would otherwise answer 503.
                        rows = await self._fetch(statement, [keys])
                except Exception as exc:
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                except BaseException:
                    for futures in batch.values():
                        for future in futures:
                            future.cancel()
                    raise
                found = {row[2]: row[3] for row in rows if row[2] is not None}
                vintage = rows[0][0] if rows else None
                for key, futures in batch.items():
                    text = found.get(key)
                    answer = (vintage, text.encode() if text else None, bool(rows))
                    for future in futures:
                        if not future.done():
                            future.set_result(answer)
        finally:
            self._draining.discard(table)

    def _records_statement(self, table: str) -> sql.Composed:
        cache_key = (table, ("__keys__",))
        statement = self._statements.get(cache_key)
        if statement is None:
            statement = q.READ_RECORDS.format(
                meta=sql.Identifier(q.READ_SCHEMA, q.META_VIEW),
                table=sql.Identifier(q.READ_SCHEMA, table),
                key=sql.Identifier(SERVED_BY_NAME[table].key[0]),
            )
            self._statements[cache_key] = statement
        return statement

    async def page(
        self, table: str, filters: Mapping[str, object], limit: int, offset: int
    ) -> tuple[Meta, list[bytes] | None, bool]:
        params = tuple(sorted(filters))
        values = [filters[p] for p in params] + [limit + 1, offset]
        rows = await self._fetch(self._statement(table, params), values)
        if not rows:
            return await self.current(), None, False
        items = [row[2].encode() for row in rows if row[2] is not None]
        more = len(items) > limit
        return await self._meta_for(rows[0][0]), items[:limit], more
