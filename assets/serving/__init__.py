"""Serving the published vintages: PostgreSQL publication and the read stores of the API.

Modules, lowest first: each imports only modules listed before it.

- tables.py      what is served: keys, filters and indexes of each exported table
- files_store.py the embedded read store: a vintage's JSON Lines, indexed in memory
- pg_sql.py      the PostgreSQL statements (DDL, switch, retention), in one place
- postgres.py    publish a verified vintage to PostgreSQL, switch, roll back, keep N
- pg_store.py    the PostgreSQL read store of the API
- pg_server.py   a throw-away server (tests, bench): Debian binaries, temp dir, loopback
- asset.py       the Dagster asset that publishes after the export (when a DSN is set)
"""
