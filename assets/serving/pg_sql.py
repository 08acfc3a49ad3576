"""Every PostgreSQL statement of the publication and of the API's reads, in one place.

Identifiers are filled in with `psycopg.sql.Identifier` (quoted by psycopg), values are
always query parameters; no statement is built by string formatting.

Layout in the database:

- `tremplin_admin`: the publisher's bookkeeping (`vintages`: loaded vintages and their
  schema; `state`: the live one; `switches`: every switch and rollback);
- one schema per loaded vintage (`vintage_<name>`), holding every exported table (typed
  columns, a primary key, the API's indexes, the nested camelCase record as `jsonb`) and
  `_vintage` (one row: the vintage, its content hash, its manifest and JSON Schemas);
- `tremplin`: what readers query, views over the live vintage's schema. A switch replaces
  them all in one transaction, `vintage` first, then the tables in name order; readers'
  statements name `vintage` first too, so locks are always taken in the same order.
"""

from __future__ import annotations

from psycopg import sql

ADMIN_SCHEMA = "tremplin_admin"
READ_SCHEMA = "tremplin"
META_TABLE = "_vintage"
META_VIEW = "vintage"
# Serialises publishers (pg_advisory_xact_lock / pg_advisory_lock key).
ADVISORY_KEY = 0x7472_656D_706C_696E & 0x7FFF_FFFF_FFFF_FFFF

ADMIN_DDL = sql.SQL(
    """
    create schema if not exists {admin};
    create table if not exists {admin}.vintages (
        vintage text primary key,
        schema_name text not null unique,
        content_sha256 text not null,
        loaded_at timestamptz not null default now(),
        rows jsonb not null
    );
    create table if not exists {admin}.state (
        singleton boolean primary key default true check (singleton),
        live_vintage text,
        switched_at timestamptz
    );
    create table if not exists {admin}.switches (
        id bigserial primary key,
        vintage text not null,
        previous text,
        action text not null,
        switched_at timestamptz not null default now()
    );
    """
).format(admin=sql.Identifier(ADMIN_SCHEMA))

LOCK_PUBLISHERS = sql.SQL("select pg_advisory_lock(%s)")
UNLOCK_PUBLISHERS = sql.SQL("select pg_advisory_unlock(%s)")

LOADED_VINTAGES = sql.SQL(
    "select vintage, schema_name, content_sha256 from {admin}.vintages order by vintage"
).format(admin=sql.Identifier(ADMIN_SCHEMA))
LIVE_VINTAGE = sql.SQL("select live_vintage from {admin}.state").format(
    admin=sql.Identifier(ADMIN_SCHEMA)
)
FORGET_VINTAGE = sql.SQL("delete from {admin}.vintages where vintage = %s").format(
    admin=sql.Identifier(ADMIN_SCHEMA)
)
RECORD_VINTAGE = sql.SQL(
    "insert into {admin}.vintages (vintage, schema_name, content_sha256, rows) "
    "values (%s, %s, %s, %s)"
).format(admin=sql.Identifier(ADMIN_SCHEMA))
SET_LIVE = sql.SQL(
    "insert into {admin}.state (singleton, live_vintage, switched_at) values (true, %s, now()) "
    "on conflict (singleton) do update set live_vintage = excluded.live_vintage, "
    "switched_at = excluded.switched_at"
).format(admin=sql.Identifier(ADMIN_SCHEMA))
RECORD_SWITCH = sql.SQL(
    "insert into {admin}.switches (vintage, previous, action) values (%s, %s, %s)"
).format(admin=sql.Identifier(ADMIN_SCHEMA))

DROP_SCHEMA = sql.SQL("drop schema if exists {schema} cascade")
CREATE_SCHEMA = sql.SQL("create schema {schema}")
CREATE_READ_SCHEMA = sql.SQL("create schema if not exists {schema}").format(
    schema=sql.Identifier(READ_SCHEMA)
)
SCHEMA_EXISTS = sql.SQL("select count(*) from pg_namespace where nspname = %s")

# Loading one table: typed columns and the record, COPY'd in CSV, then the key and indexes.
CREATE_TABLE = sql.SQL("create table {table} ({columns}, record jsonb)")
COPY_ROWS = sql.SQL("copy {table} from stdin (format csv)")
TOAST_LZ4 = sql.SQL("set default_toast_compression = 'lz4'")
MAINTENANCE_MEMORY = sql.SQL("set local maintenance_work_mem = '256MB'")
ADD_PRIMARY_KEY = sql.SQL("alter table {table} add primary key ({columns})")
CREATE_INDEX = sql.SQL("create index {name} on {table} ({columns})")
RECORD_NOT_NULL = sql.SQL("alter table {table} alter column record set not null")
COUNT_ROWS = sql.SQL("select count(*) from {table}")
ANALYZE_COLUMNS = sql.SQL("analyze {table} ({columns})")

CREATE_META = sql.SQL(
    "create table {table} (vintage text not null, content_sha256 text not null, "
    "created_at text, loaded_at timestamptz not null default now(), "
    "manifest jsonb not null, schemas jsonb not null)"
)
INSERT_META = sql.SQL(
    "insert into {table} (vintage, content_sha256, created_at, manifest, schemas) "
    "values (%s, %s, %s, %s, %s)"
)

# The switch (one transaction, retried when a lock is not granted in time).
SWITCH_LOCK_TIMEOUT = sql.SQL("set local lock_timeout = {ms}")
REPLACE_VIEW = sql.SQL("create or replace view {view} as select {columns} from {table}")
DROP_VIEW = sql.SQL("drop view if exists {view}")
READ_VIEWS = sql.SQL(
    "select table_name from information_schema.views where table_schema = %s order by 1"
)
RETENTION_LOCK_TIMEOUT = sql.SQL("set local lock_timeout = {ms}")

# The API's reads: one statement each, naming the `vintage` view first. A page turns only
# its own records into text (the rows skipped by the offset are never detoasted).
READ_META = sql.SQL(
    "select vintage, content_sha256, created_at, manifest::text, schemas::text from {view}"
).format(view=sql.Identifier(READ_SCHEMA, META_VIEW))
# Key lookups waiting at the same moment share one statement (`PostgresStore.record`).
READ_RECORDS = sql.SQL(
    "with v as (select vintage, content_sha256 from {meta}) "
    "select v.vintage, v.content_sha256, t.{key}, t.record::text from v "
    "left join {table} t on t.{key} = any(%s)"
)
READ_PAGE = sql.SQL(
    "with v as (select vintage, content_sha256 from {meta}) "
    "select v.vintage, v.content_sha256, p.record::text from v left join lateral "
    "(select t.record from {table} t {where} order by {order} "
    "limit %s offset %s) p on true"
)
