"""Diagnostic tables -> files the product reads.

Modules, lowest first: each imports only modules listed before it, and only public names.

- errors.py      ExportError
- sql.py         identifier quoting, relation names
- precision.py   the decimals each published double keeps
- tables.py      which tables are exported (EXPORT_TABLES, pending dbt models)
- json_shape.py  camelCase nested records, DuckDB values as JSON
- lineage.py     which sources feed each exported field (dbt graph + column lineage)
- schemas.py     JSON Schema from DuckDB types, the compiled record validator
- writing.py     one table -> Parquet + JSON Lines (plain, gzipped) + schema, by DuckDB
- vintages.py    vintage directories, `latest`, locking, promotion, verification
- diff.py        what changed between two vintages (`tremplin diff`)
- gate.py        the publication gate (holds a suspicious vintage; `tremplin accept`)
- publish.py     one publication: orchestration, no-op on unchanged content or inputs
- docs.py        docs/EXPORTS.md from the dbt yml and the field lineage
- explain.py     `tremplin explain`: one exported value back to the publisher's cells
- asset.py       the Dagster asset
"""
