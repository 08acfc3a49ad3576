"""Département boundaries for the report's map, with the overseas départements as insets.

The boundaries are a committed, simplified copy of an openly licensed GeoJSON
(`warehouse/mirror/geo_departements/`, provenance in its PROVENANCE.md); the report never
reads anything outside the project. Coordinates are projected here, once, to a plane: the
metropolitan départements with an equirectangular projection true at 46.5° N (France is
small enough that this looks right), and each of the five overseas départements scaled to
fit its own box west of the mainland, so the page draws everything with Vega's identity
projection and no spherical clipping. Insets are not at the mainland's scale; the map says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from assets.foundation.settings import PROJECT_ROOT
from assets.report.errors import ReportError

BOUNDARIES = (
    PROJECT_ROOT
    / "warehouse"
    / "mirror"
    / "geo_departements"
    / "departements-avec-outre-mer.simplified.geojson"
)
DEPARTEMENTS_COUNT = 101
OVERSEAS = ("971", "972", "973", "974", "976")
_MAINLAND_CENTRE = (2.5, 46.2)
_MAINLAND_COS = math.cos(math.radians(46.5))
_INSET_SIZE = 1.7
_INSET_X = -7.6
# Inset box centres, top to bottom, in the projected plane (mainland spans about -5.3..4.9
# in x and -4.9..4.9 in y).
_INSET_Y = {"971": 3.9, "972": 1.95, "973": 0.0, "974": -1.95, "976": -3.9}


class GeoError(ReportError):
    """The boundary file is missing or is not the 101 départements."""


def _points(coordinates) -> Iterable[list[float]]:
    if coordinates and isinstance(coordinates[0], int | float):
        yield coordinates
        return
    for part in coordinates:
        yield from _points(part)


def _transform(coordinates, fn):
    if coordinates and isinstance(coordinates[0], int | float):
        return fn(coordinates[0], coordinates[1])
    return [_transform(part, fn) for part in coordinates]


def _mainland(lon: float, lat: float) -> list[float]:
    return [
        round((lon - _MAINLAND_CENTRE[0]) * _MAINLAND_COS, 4),
        round(lat - _MAINLAND_CENTRE[1], 4),
    ]


def _inset(geometry: dict, code: str) -> tuple[dict, list[float]]:
    """The geometry scaled into its inset box, and that box as [x0, y0, x1, y1]."""
    points = list(_points(geometry["coordinates"]))
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    lat_c = (min(lats) + max(lats)) / 2
    lon_c = (min(lons) + max(lons)) / 2
    cos = math.cos(math.radians(lat_c))
    width = (max(lons) - min(lons)) * cos
    height = max(lats) - min(lats)
    scale = 0.85 * _INSET_SIZE / max(width, height)
    centre_x, centre_y = _INSET_X, _INSET_Y[code]

    def place(lon: float, lat: float) -> list[float]:
        return [
            round(centre_x + (lon - lon_c) * cos * scale, 4),
            round(centre_y + (lat - lat_c) * scale, 4),
        ]

    half = _INSET_SIZE / 2
    box = [centre_x - half, centre_y - half, centre_x + half, centre_y + half]
    return {
        "type": geometry["type"],
        "coordinates": _transform(geometry["coordinates"], place),
    }, box


def load_boundaries(path: Path = BOUNDARIES) -> list[dict]:
    """The 101 départements as GeoJSON features in the report's plane, sorted by code.

    Properties: `code`, `name`, `overseas`; overseas features also carry `box`, their
    inset frame.
    """
    try:
        collection = json.loads(Path(path).read_text(encoding="utf-8"))
        features = collection["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GeoError(f"{path}: not a readable GeoJSON FeatureCollection: {exc}") from None
    codes = [f.get("properties", {}).get("code") for f in features]
    if len(features) != DEPARTEMENTS_COUNT or len(set(codes)) != DEPARTEMENTS_COUNT:
        raise GeoError(
            f"{path}: expected the {DEPARTEMENTS_COUNT} départements, found {len(features)} "
            f"features with {len(set(codes))} distinct codes"
        )
    placed = []
    for feature in features:
        code = feature["properties"]["code"]
        properties = {"code": code, "name": feature["properties"].get("nom"), "overseas": False}
        geometry = feature["geometry"]
        if code in OVERSEAS:
            geometry, box = _inset(geometry, code)
            properties.update(overseas=True, box=box)
        else:
            geometry = {
                "type": geometry["type"],
                "coordinates": _transform(geometry["coordinates"], _mainland),
            }
        placed.append({"type": "Feature", "properties": properties, "geometry": geometry})
    return sorted(placed, key=lambda f: f["properties"]["code"])


def inset_frames(features: list[dict]) -> list[dict]:
    """One rectangle per overseas inset, as GeoJSON features (drawn under the shapes)."""
    frames = []
    for feature in features:
        box = feature["properties"].get("box")
        if not box:
            continue
        x0, y0, x1, y1 = box
        ring = [[x0, y0], [x0, y1], [x1, y1], [x1, y0], [x0, y0]]
        frames.append(
            {
                "type": "Feature",
                "properties": {
                    "code": feature["properties"]["code"],
                    "name": feature["properties"]["name"],
                    "label_x": round(x0 + 0.05, 4),
                    "label_y": round(y1 - 0.05, 4),
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return frames
