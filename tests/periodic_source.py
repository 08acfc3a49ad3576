"""A test-only periodic source: one tiny CSV per quarter, `fake_<YYYY>T<Q>.csv`.

It has the shape of a real source module (SPEC, TABLES, CONTRACTS, parse) so the factory,
jobs, schedules, sensors and backfills are exercised on partitions without waiting for a
real periodic publication, and `build_test_definitions` wires it the way
`pipelines.definitions` wires the real sources, with a small downstream asset standing in
for the dbt models.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.ingest.factory import build_source_assets
from assets.ingest.landing import LandedFile
from assets.ingest.raw import ParsedTable, ParseError, add_provenance
from assets.ingest.spec import Download, Partitioning, SourceSpec
from assets.ingest.validation import TableContract

SLUG = "test_periodic"
TABLES = ("counts",)
FILE_PERIOD = r"fake_(?P<year>\d{4})T(?P<quarter>[1-4])\.csv"

SPEC = SourceSpec(
    slug=SLUG,
    publisher="tests",
    title="Quarterly test counts",
    landing_page="http://127.0.0.1/",
    licence="none",
    cadence="quarterly",
    downloads=(
        Download(
            url="http://127.0.0.1/fake_{year}T{quarter}.csv",
            file_name="fake_{year}T{quarter}.csv",
            format="csv",
        ),
    ),
    mirror_patterns=("fake_*T*.csv",),
    schedule="0 7 15 3,6,9,12 *",
    max_age=timedelta(days=120),
    partitioning=Partitioning(period="quarterly", start="2024-01-01", file_period=FILE_PERIOD),
)

CONTRACTS = {"counts": TableContract(columns=("area", "value"), min_rows=1, not_null=("area",))}

# Set by a test to make parse fail (a broken publication).
BROKEN: dict[str, bool] = {"parse": False}


def write_quarter(mirror: Path, year: int, quarter: int, value: int) -> Path:
    path = mirror / SLUG / f"fake_{year}T{quarter}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"area,value\n75,{value}\n13,{value + 1}\n", encoding="utf-8")
    return path


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    files = tuple(files)
    if BROKEN["parse"] or len(files) != 1:
        raise ParseError(f"{SLUG}: expected one quarterly file, got {[f.file_name for f in files]}")
    landed = files[0]
    frame = pd.read_csv(io.BytesIO(landed.path.read_bytes()), dtype=str)
    return {"counts": ParsedTable("counts", add_provenance(frame, landed), (landed,))}


def build_test_definitions(spec: SourceSpec = SPEC) -> dg.Definitions:
    """The test source, a downstream total, and the jobs / schedules / sensors of tremplin."""
    import sys

    from assets.foundation.settings import get_settings
    from pipelines.jobs import build_jobs
    from pipelines.schedules import build_schedules
    from pipelines.sensors import build_sensors

    @dg.asset(key="test_total", deps=[dg.AssetKey([SLUG, "counts"])], group_name="models")
    def test_total() -> dg.MaterializeResult:
        raw = get_settings().raw_dir / SLUG / "counts"
        frames = [pd.read_parquet(p) for p in sorted(raw.glob("*.parquet"))]
        total = sum(int(v) for f in frames for v in f["value"])
        (raw.parent / "total.txt").write_text(str(total))
        return dg.MaterializeResult(metadata={"total": total, "partitions": len(frames)})

    module = sys.modules[__name__]
    return dg.Definitions(
        assets=[*build_source_assets(module, spec), test_total],
        jobs=build_jobs([spec]),
        schedules=build_schedules([spec]),
        sensors=build_sensors([spec]),
    )
