"""The one error type the report raises for bad input: `tremplin report` exits 1 with it."""

from __future__ import annotations


class ReportError(RuntimeError):
    """A vintage, a table or the boundary file the report needs is missing or unreadable."""
