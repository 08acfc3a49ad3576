"""Which diagnostic tables are exported: the one list, and the pending models skipped
until dbt has them. The CLI, the docs page, the asset and the tests all read it here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from assets.export.sql import split_relation

# The one list of exported tables: export name -> dbt relation.
EXPORT_TABLES: dict[str, str] = {
    "local_diagnosis": "diag_local_diagnosis",
    "job_group_info": "diag_job_group_info",
    "best_jobs_in_area": "diag_best_jobs_in_area",
    "job_groups": "diag_job_groups",
    "departements": "diag_departements",
    "regions": "diag_regions",
    "hiring_headlines": "diag_hiring_headlines",
}
# Tables whose dbt model is still being written (issue 4): the pipeline exports them only
# once their model is in the dbt manifest, so runs stay green meanwhile. Empty this set when
# the models have landed; from then on a missing relation is an ExportError like any other.
PENDING_TABLES = frozenset({"local_diagnosis", "job_group_info", "best_jobs_in_area"})

log_ = logging.getLogger(__name__)


def tables_to_export(
    dbt_manifest: Path | None, log: logging.Logger | None = None
) -> dict[str, str]:
    """EXPORT_TABLES, minus the PENDING_TABLES whose dbt model is not in the manifest yet."""
    log = log or log_
    names: set[str] = set()
    if dbt_manifest is not None:
        from assets.dbt_manifest import ManifestError, load_models

        try:
            names = set(load_models(dbt_manifest))
        except ManifestError as exc:
            log.warning("%s", exc)
    selected = {}
    for name, relation in EXPORT_TABLES.items():
        if name in PENDING_TABLES and split_relation(relation)[1] not in names:
            log.info("export %s skipped: dbt model %s is not in the manifest yet", name, relation)
            continue
        selected[name] = relation
    return selected
