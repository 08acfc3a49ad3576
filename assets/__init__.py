"""The work of tremplin that is not SQL, below the Dagster wiring of `pipelines/`.

Imports run one way: `sources` -> `ingest` -> `foundation`; `export` and `mirror` use
`ingest` and `foundation`; `foundation` imports nothing of ours (checked by the import
contracts in pyproject.toml, `tests/test_layers.py`).
"""
