"""`build_report`: one vintage directory in, `<vintage>/report.html` out.

The page is a function of the vintage's files, the previous vintage (for the changes), the
committed boundaries and the published BMO headlines: building it twice gives the same
bytes, so a re-run changes nothing. It is written atomically (a reader never sees half a
page) and is not listed in the manifest: it is derived from the vintage, not part of what
the product reads, and `tremplin check` ignores it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import json
import logging
import re
import time
from pathlib import Path

from assets.export import diff as diff_module
from assets.foundation.files import write_atomically
from assets.report import changes as changes_mod
from assets.report import figures, geo, page, provenance

REPORT_FILE = "report.html"
DEFAULT_DEPARTEMENT = "75"
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReportResult:
    path: Path
    vintage: str
    bytes: int
    seconds: float
    synthetic_fields: dict[str, list[str]]
    departements_with_values: dict[str, int]
    unchanged: bool = False


def _synthetic_note(manifest: dict, synthetic: dict[str, set[str]]) -> str | None:
    if not manifest.get("synthetic"):
        return None
    sources = [s.get("slug", "?") for s in manifest.get("sources") or [] if s.get("synthetic")]
    fields = [
        f"{table}: {described}"
        for table, names in sorted(synthetic.items())
        if names
        for described in provenance.describe_fields(names)
    ]
    return (
        "<strong>Part of this vintage is synthetic.</strong> "
        + (
            "Synthetic sources: "
            + ", ".join(f"<code>{html.escape(s)}</code>" for s in sources)
            + ". "
            if sources
            else ""
        )
        + (
            "Fields derived from them (per the vintage's JSON Schemas): "
            + ", ".join(f"<code>{html.escape(f)}</code>" for f in fields)
            + ". "
            if fields
            else ""
        )
        + "Every chart or indicator using them says <em>synthetic data</em>; the others are "
        "real published data."
    )


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "absent"


def inputs_fingerprint(vintage_dir: Path, manifest: dict) -> str:
    """Everything the page is made from: this vintage (content, date, publication status),
    the previous one, the boundaries, the published headlines, and the code drawing it."""
    import vl_convert

    previous = changes_mod.previous_vintage(vintage_dir)
    previous_content = None
    if previous is not None:
        with contextlib.suppress(provenance.VintageError):
            previous_content = provenance.read_manifest(previous).get("content_sha256")
    code = {
        path.name: _sha256(path)
        for path in [*sorted(Path(__file__).parent.glob("*.py")), Path(diff_module.__file__)]
    }
    payload = {
        "vintage": [manifest.get("vintage"), manifest.get("created_at")],
        "content": manifest.get("content_sha256"),
        "publication": provenance.publication_status(vintage_dir),
        "previous": [previous.name if previous else None, previous_content],
        "boundaries": _sha256(geo.BOUNDARIES),
        "published_headlines": _sha256(figures.PUBLISHED_HEADLINES),
        "code": code,
        "vl_convert": vl_convert.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def recorded_fingerprint(report: Path) -> str | None:
    """The inputs fingerprint an existing report was built from (its <meta> tag)."""
    try:
        with Path(report).open("rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    found = re.search(rf'<meta name="{page.FINGERPRINT_META}" content="([0-9a-f]{{64}})">', head)
    return found.group(1) if found else None


def build_report(
    vintage_dir: Path, output: Path | None = None, *, force: bool = False
) -> ReportResult:
    """Write the report of the export vintage in `vintage_dir` (default: beside its files).

    Skips the work when the report there was built from the same inputs (unless `force`).
    """
    started = time.monotonic()
    vintage_dir = Path(vintage_dir).resolve()
    manifest = provenance.read_manifest(vintage_dir)
    target = Path(output) if output else vintage_dir / REPORT_FILE
    fingerprint = inputs_fingerprint(vintage_dir, manifest)
    if not force and recorded_fingerprint(target) == fingerprint:
        return ReportResult(
            path=target,
            vintage=str(manifest.get("vintage", vintage_dir.name)),
            bytes=target.stat().st_size,
            seconds=round(time.monotonic() - started, 2),
            synthetic_fields={},
            departements_with_values={},
            unchanged=True,
        )
    # Altair (a third of a second to import) only when a report is drawn: a no-op run's
    # report step stops at the fingerprint above.
    from assets.report import charts

    synthetic = provenance.synthetic_fields(vintage_dir, manifest)
    features = geo.load_boundaries()
    codes = [f["properties"]["code"] for f in features]
    con = figures.open_vintage(vintage_dir, manifest)
    try:
        departements = figures.departement_indicators(con, codes)
        jobs = figures.top_jobs(con)
        periods = figures.source_periods(con)
        comparison = figures.headline_comparison(con, figures.published_headlines())
    finally:
        con.close()
    used = synthetic.get("local_diagnosis", set())
    market_synthetic = bool({"market.offersCount", "market.jobSeekersAvg"} & used)
    items = charts.indicators(market_synthetic)
    default = DEFAULT_DEPARTEMENT if DEFAULT_DEPARTEMENT in codes else codes[0]
    explorer = charts.explorer_spec(
        features, geo.inset_frames(features), departements, jobs, items, default
    )
    headlines = charts.headlines_spec(comparison) if comparison else None
    text = page.render_page(
        manifest=manifest,
        publication=provenance.publication_status(vintage_dir),
        synthetic_note=_synthetic_note(manifest, synthetic),
        explorer=explorer,
        headlines=headlines,
        comparison=comparison,
        sources=provenance.source_rows(manifest),
        periods=periods,
        changes=changes_mod.changes_since_previous(vintage_dir),
        fingerprint=fingerprint,
    )
    data = text.encode("utf-8")
    if not (target.is_file() and target.read_bytes() == data):
        write_atomically(target, data)
    counts = {
        item.key: sum(1 for row in departements if row.get(item.key) is not None) for item in items
    }
    result = ReportResult(
        path=target,
        vintage=str(manifest.get("vintage", vintage_dir.name)),
        bytes=len(data),
        seconds=round(time.monotonic() - started, 2),
        synthetic_fields={t: sorted(f) for t, f in synthetic.items() if f},
        departements_with_values=counts,
    )
    logger.info("report of %s written to %s (%d bytes)", result.vintage, target, len(data))
    return result
