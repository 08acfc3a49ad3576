"""The Dagster side of the report: after the export, `exports/report` writes the report of
`latest` and, when the publication gate held the newest vintage, of that one too (the page
a reviewer reads before `tremplin accept`)."""

from __future__ import annotations

import os
from pathlib import Path

from assets.export.vintages import LATEST, list_vintages, read_publication
from assets.report.build import REPORT_FILE, build_report

REPORT_KEY = ("exports", "report")
EXPORT_KEY = ("exports", "diagnostic_tables")


def vintages_to_report(exports_dir: Path) -> list[Path]:
    """`latest`'s vintage, then the newest vintage when it is held; oldest first."""
    exports_dir = Path(exports_dir)
    targets = []
    link = exports_dir / LATEST
    if os.path.islink(link) and (exports_dir / os.readlink(link)).is_dir():
        targets.append(exports_dir / os.readlink(link))
    names = list_vintages(exports_dir)
    if names:
        newest = exports_dir / names[-1]
        if newest not in targets and read_publication(newest).get("status") == "held":
            targets.append(newest)
    return targets


def build_report_asset():
    import dagster as dg

    from assets.foundation.settings import get_settings

    @dg.asset(
        key=dg.AssetKey(list(REPORT_KEY)),
        group_name="exports",
        deps=[dg.AssetKey(list(EXPORT_KEY))],
        kinds={"html"},
        description=f"A self-contained HTML report per export vintage "
        f"(warehouse/exports/<vintage>/{REPORT_FILE}): map of the départements, top job "
        "groups, intervals, BMO headlines against the publisher, source freshness and the "
        "changes since the previous vintage. Built from the export files only.",
    )
    def vintage_report(context):
        exports_dir = get_settings().exports_dir
        reports = {}
        for vintage_dir in vintages_to_report(exports_dir):
            result = build_report(vintage_dir)
            verb = "unchanged" if result.unchanged else f"written in {result.seconds} s"
            context.log.info(f"report of {result.vintage}: {result.path} ({verb})")
            reports[result.vintage] = {
                "path": str(result.path),
                "bytes": result.bytes,
                "unchanged": result.unchanged,
            }
        if not reports:
            context.log.warning(f"no export vintage in {exports_dir}: no report written")
        return dg.MaterializeResult(
            metadata={
                "reports": dg.MetadataValue.json(reports),
                "unchanged": all(r["unchanged"] for r in reports.values()),
            }
        )

    return vintage_report
