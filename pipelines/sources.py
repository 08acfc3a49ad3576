"""The registry of source modules: adding a dataset means adding its module here."""

from __future__ import annotations

from types import ModuleType

from assets.sources import etalab_decoupage_administratif, francetravail_rome

SOURCE_MODULES: tuple[ModuleType, ...] = (francetravail_rome, etalab_decoupage_administratif)


def source_modules() -> tuple[ModuleType, ...]:
    return SOURCE_MODULES
