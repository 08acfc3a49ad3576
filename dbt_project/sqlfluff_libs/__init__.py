"""Stand-ins for dbt's Jinja context, for sqlfluff's jinja templater only.

sqlfluff lints the models without running dbt, so the few dbt context objects the models
call (`dbt.cast`, `dbt.type_int`, `adapter.dispatch`) must exist and render plausible
DuckDB SQL. Nothing here is imported by dbt or by the pipelines.
"""
