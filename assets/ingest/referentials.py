"""The real ROME codes, départements and régions, read from the mirror's referential files.

The API sources need them in live mode (which territories to ask for) and the synthetic
mirror generator needs them (which codes to generate for): one reader for both.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT

DEFAULT_MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
ROME_CSV = DEFAULT_MIRROR / "francetravail_rome" / "unix_referentiel_code_rome_v460_utf8.csv"
GEO_DIR = DEFAULT_MIRROR / "etalab_decoupage_administratif"


@dataclass(frozen=True)
class Referentials:
    rome_codes: tuple[str, ...]
    rome_labels: dict[str, str]
    departements: tuple[str, ...]  # the 101 (metro + drom), sorted
    dep_names: dict[str, str]
    dep_region: dict[str, str]
    dep_chef_lieu: dict[str, str]
    regions: tuple[str, ...]  # the 18
    region_names: dict[str, str]


def load_referentials(rome_csv: Path = ROME_CSV, geo_dir: Path = GEO_DIR) -> Referentials:
    """The real ROME codes and the 101 départements / 18 régions (COM left out)."""
    with Path(rome_csv).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = {r["code_rome"]: r["libelle_rome"] for r in rows}
    deps = json.loads((Path(geo_dir) / "departements.json").read_text(encoding="utf-8"))
    regs = json.loads((Path(geo_dir) / "regions.json").read_text(encoding="utf-8"))
    deps = [d for d in deps if d.get("zone") in ("metro", "drom")]
    regs = [r for r in regs if r.get("zone") in ("metro", "drom")]
    return Referentials(
        rome_codes=tuple(sorted(labels)),
        rome_labels=labels,
        departements=tuple(sorted(d["code"] for d in deps)),
        dep_names={d["code"]: d["nom"] for d in deps},
        dep_region={d["code"]: d["region"] for d in deps},
        dep_chef_lieu={d["code"]: d["chefLieu"] for d in deps},
        regions=tuple(sorted(r["code"] for r in regs)),
        region_names={r["code"]: r["nom"] for r in regs},
    )
