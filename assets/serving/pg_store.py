"""The API's read store over PostgreSQL: the `tremplin` views of the live vintage.

Every read is one parameterised statement that names the `vintage` view before the
table's, so the vintage in the response headers is the one the records came from, even
while a publication switches the views. The vintage's manifest and schemas are cached
and re-read when a statement reports another vintage (or after `META_TTL_S`).
"""

from __future__ import annotations

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

    def __init__(self, dsn: str, *, min_size: int = 4, max_size: int = 8) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True},
            timeout=10,
        )
        self._meta: Meta | None = None
        self._checked = 0.0
        self._statements: dict[tuple, sql.Composed] = {}

    async def open(self) -> Meta:
        await self.pool.open(wait=True, timeout=30)
        return await self._refresh()

    async def close(self) -> None:
        await self.pool.close()

    async def _refresh(self) -> Meta:
        import psycopg

        try:
            async with self.pool.connection() as con:
                row = await (await con.execute(q.READ_META)).fetchone()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"PostgreSQL: {exc}".strip()) from None
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
            async with self.pool.connection() as con:
                return await (await con.execute(statement, values, prepare=True)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"PostgreSQL: {exc}".strip()) from None

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
