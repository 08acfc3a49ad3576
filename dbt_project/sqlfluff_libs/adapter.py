"""`adapter.dispatch` for linting: renders the dispatched macro as a plain function call.

sqlfluff has no adapter to pick the `duckdb__` variant with, and the variants are linted
in their own macro files anyway; the caller only needs valid SQL in their place.
"""


def dispatch(macro_name: str, macro_namespace: str | None = None):
    def call(*args: object) -> str:
        rendered = ", ".join(
            f"'{arg}'" if isinstance(arg, str) and not arg.isidentifier() else str(arg)
            for arg in args
        )
        return f"{macro_name}({rendered})"

    return call
