"""SQL text helpers shared by the writer, the diff and the gate: quoting identifiers and
splitting a dbt relation name. Public because three modules need them.
"""

from __future__ import annotations


def quote_ident(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def split_relation(relation: str) -> tuple[str, str]:
    schema, _, table = relation.rpartition(".")
    return (schema or "main"), table
