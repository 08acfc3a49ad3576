"""`dbt.*` cross-database macros, rendered as dbt-duckdb renders them."""


def cast(field: str, type_name: str) -> str:
    return f"cast({field} as {type_name})"


def type_int() -> str:
    return "integer"


def type_bigint() -> str:
    return "bigint"


def type_string() -> str:
    return "varchar"


def type_boolean() -> str:
    return "boolean"


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def concat(fields: list[str]) -> str:
    return f"concat({', '.join(fields)})"
