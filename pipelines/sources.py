"""The registry of source modules: adding a dataset means adding its module here."""

from __future__ import annotations

from types import ModuleType

from assets.sources import (
    dares_fap,
    dares_fap2021_rome,
    dares_tensions,
    etalab_decoupage_administratif,
    francetravail_bmo,
    francetravail_marche_travail,
    francetravail_offres,
    francetravail_rome,
    insee_chomage_localise,
    insee_chomage_zone_emploi,
    insee_zonage_ze2020,
)

SOURCE_MODULES: tuple[ModuleType, ...] = (
    francetravail_rome,
    etalab_decoupage_administratif,
    francetravail_bmo,
    insee_chomage_localise,
    insee_chomage_zone_emploi,
    insee_zonage_ze2020,
    dares_fap,
    dares_fap2021_rome,
    dares_tensions,
    francetravail_marche_travail,
    francetravail_offres,
)


def source_modules() -> tuple[ModuleType, ...]:
    return SOURCE_MODULES
