"""The one exception of the export package.

Every module of assets/export raises it, and the CLI catches it, so it lives below all of
them: an export that cannot be published says why and leaves `latest` untouched.
"""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export could not be published; the previous `latest` is untouched."""


class NothingToCompare(ExportError):
    """Only one vintage exists: a diff has nothing to compare yet (not a failure)."""
