"""The API's read store over PostgreSQL: the `tremplin` views of the live vintage.

Every read is one parameterised statement that names the `vintage` view before the
table's, so the vintage in the response headers is the one the records came from, even
while a publication switches the views. The vintage's manifest and schemas are cached
and re-read when a statement reports another vintage (or after `META_TTL_S`).
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
            if params == ("__key__",):
                statement = q.READ_RECORD.format(
                    meta=meta, table=relation, key=sql.Identifier(spec.key[0])
                )
            else:
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
        rows = await self._fetch(self._statement(table, ("__key__",)), [key])
        if not rows:
            return await self.current(), None, False
        vintage, _sha, record = rows[0]
        return await self._meta_for(vintage), (record.encode() if record else None), True

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
