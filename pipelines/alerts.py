"""What a failed run leaves behind: a line in `warehouse/runs/failures.jsonl`, a webhook.

The record names the failing steps, the assets they were materialising, the sources
those belong to and the error, so `tremplin status` can mark a source *failing* and the
person on call knows where to look without opening the UI. The webhook
(`TREMPLIN_ALERT_WEBHOOK`) receives the same record as JSON, with a `text` line that
chat tools (Slack, Mattermost, Teams incoming webhooks) display as is. A webhook that is
down never hides the failure: the record is written first, and a delivery error is only
logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import requests

from assets.foundation.settings import Settings
from assets.ingest.http import USER_AGENT, redact
from assets.ingest.status import append_record, now_iso

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 2000


def _error_text(error: Any) -> str:
    if error is None:
        return "unknown error"
    parts = [error.message.strip()]
    cause = getattr(error, "cause", None)
    while cause is not None:
        parts.append(cause.message.strip())
        cause = getattr(cause, "cause", None)
    return "\n".join(parts)[:MAX_ERROR_CHARS]


def failure_record(
    *,
    run_id: str,
    job_name: str,
    events: Iterable[Any],
    source_slugs: Sequence[str],
    partition: str | None = None,
    message: str | None = None,
) -> dict:
    """Summarise a failed run from its Dagster events (`DagsterEvent`s)."""
    planned: dict[str, list[str]] = {}
    failed_steps: list[tuple[str, str]] = []
    failed_checks: list[dict] = []
    for event in events:
        kind = event.event_type_value
        if kind == "ASSET_MATERIALIZATION_PLANNED" and event.step_key:
            key = event.event_specific_data.asset_key.to_user_string()
            planned.setdefault(event.step_key, []).append(key)
        elif kind == "STEP_FAILURE":
            failed_steps.append((event.step_key, _error_text(event.step_failure_data.error)))
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                failed_checks.append(
                    {
                        "asset": evaluation.asset_key.to_user_string(),
                        "check": evaluation.check_name,
                        "description": (evaluation.description or "")[:MAX_ERROR_CHARS],
                    }
                )

    def source_of(asset: str) -> str | None:
        head = asset.split("/", 1)[0]
        return head if head in source_slugs else None

    steps = [
        {
            "step": step,
            "assets": sorted(planned.get(step, [])),
            "error": error,
        }
        for step, error in failed_steps
    ]
    sources = {source_of(a) for s in steps for a in s["assets"]}
    sources |= {source_of(c["asset"]) for c in failed_checks}
    # A step that failed before planning anything is still attributable by its key.
    sources |= {s for step, _ in failed_steps for s in source_slugs if step.startswith(f"{s}__")}
    sources.discard(None)
    return {
        "failed_at": now_iso(),
        "run_id": run_id,
        "job": job_name,
        "partition": partition,
        "sources": sorted(sources),
        "steps": steps,
        "checks": failed_checks,
        "message": (message or "")[:MAX_ERROR_CHARS],
    }


def summary(record: dict) -> str:
    """One line for humans: job, where it failed, the first error."""
    where = ", ".join(
        f"{s['step']} ({', '.join(s['assets'][:3])}{'…' if len(s['assets']) > 3 else ''})"
        for s in record["steps"]
    )
    first = record["steps"][0]["error"].splitlines()[0] if record["steps"] else record["message"]
    partition = f" [{record['partition']}]" if record.get("partition") else ""
    return (
        f"tremplin run {record['run_id'][:8]} of {record['job']}{partition} failed"
        + (f" at {where}" if where else "")
        + (f": {first}" if first else "")
    )


def notify(url: str, record: dict, timeout_s: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST the record to the webhook; False (and a warning) when it cannot be delivered."""
    payload = {"text": summary(record), **record}
    try:
        response = requests.post(
            url, json=payload, timeout=timeout_s, headers={"User-Agent": USER_AGENT}
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.warning("alert webhook %s not reached: %s", redact(url), redact(str(exc)))
        return False
    return True


def record_and_notify(settings: Settings, record: dict, log: Any = None) -> bool:
    """Write the failure record, then notify the webhook when one is configured."""
    log = log or logger
    try:
        append_record(settings.failures_log, record)
    except OSError as exc:  # e.g. the disk is full: the failure itself must still be told
        log.error(
            "%s (not recorded in %s: %s)", summary(record), settings.failures_log, exc.strerror
        )
    else:
        log.error("%s (recorded in %s)", summary(record), settings.failures_log)
    if settings.alert_webhook:
        return notify(settings.alert_webhook, record)
    return False
