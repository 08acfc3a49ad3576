"""Dagster code location of tremplin: orchestration and wiring only."""
