"""Every path and environment variable tremplin reads, in one place.

Settings are read when `get_settings()` is called, never at import, so tests and the CLI
can point the whole pipeline at another warehouse by setting environment variables first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # assets/foundation/settings.py
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

MODES = ("mirror", "live")
ENGINES = ("duckdb", "spark")  # dbt targets `dev` (DuckDB) and `spark` (docs/DESIGN.md)
DEFAULT_AUTOMATION_FILE = PROJECT_ROOT / "deploy" / "automation.yaml"
AUTOMATION_KEYS = {"schedule", "enabled", "max_age_hours", "probe_every_minutes"}


@dataclass(frozen=True)
class HeadlineThreshold:
    """A headline indicator the publication gate watches: the largest relative move (in %)
    of its `stat` ("mean" or "median") allowed between `latest` and a new vintage."""

    table: str
    field: str  # the Parquet (snake_case) column, e.g. market__offers_per_10_job_seekers
    stat: str
    max_change_pct: float


HEADLINE_STATS = ("mean", "median")
# table.field:stat:max % (TREMPLIN_GATE_HEADLINES uses the same form, `;`-separated). A field
# missing from a vintage is skipped with a note, so these may name fields not built yet.
DEFAULT_GATE_HEADLINES = (
    HeadlineThreshold("local_diagnosis", "market__offers_per_10_job_seekers", "median", 25.0),
    HeadlineThreshold("local_diagnosis", "hiring__difficult_pct", "mean", 20.0),
    HeadlineThreshold("local_diagnosis", "unemployment__rate_pct", "mean", 15.0),
    HeadlineThreshold("local_diagnosis", "salary__median_monthly_gross_eur", "median", 15.0),
    HeadlineThreshold("departements", "unemployment__rate_pct", "mean", 15.0),
)


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the data plane and the fetch mode."""

    warehouse_dir: Path
    mirror_dir: Path
    mode: str
    duckdb_path: Path
    http_timeout_s: float
    max_download_bytes: int
    alert_webhook: str | None = None
    automation_file: Path | None = None
    http_retries: int = 4
    http_backoff_s: float = 1.0
    gate_max_dropped_pct: float = 5.0
    gate_headlines: tuple[HeadlineThreshold, ...] = DEFAULT_GATE_HEADLINES
    # DuckDB's own default is 80 % of the RAM: national models would take 9 GB. Capped,
    # DuckDB spills to disk beside the warehouse instead. 1500MB keeps a national run's
    # whole process tree (Dagster and dbt) under 3 GB at no cost in time (docs/BENCHMARK.md,
    # "Peak memory under 3 GB").
    dbt_memory_limit: str = "1500MB"
    # DuckDB engine threads of every model. Parallel aggregation adds doubles in a varying
    # order, so the warehouse's last bits may differ between two builds of the same inputs;
    # the export rounds on a decimal carried four digits further (assets/export/writing.py),
    # which gives the same published values either way.
    dbt_threads: int = 1
    # dbt nodes run at once (dbt's own threads). Each query keeps the engine threads above,
    # so the warehouse stays the same bit for bit; the second core builds another model or
    # runs a test meanwhile. With more than one, the order-preserving models run on
    # `dbt_threads` too: DuckDB's thread count is one setting for the whole database.
    dbt_concurrency: int = 2
    # PostgreSQL publication and the API (docs/SERVING.md).
    publish_dsn: str | None = None
    publish_keep: int = 3
    api_dsn: str | None = None
    api_cache_max_age: int = 300
    # The engine dbt builds on: "duckdb" (the default, one machine) or "spark".
    engine: str = "duckdb"
    spark_dir_override: Path | None = None
    # Successful runs that changed nothing kept in the Dagster instance (pipelines/run_history.py).
    keep_unchanged_runs: int = 20

    @property
    def spark_dir(self) -> Path:
        """Spark's metastore (Derby) and table files, under the warehouse dir."""
        return self.spark_dir_override or self.warehouse_dir / "spark"

    @property
    def landing_dir(self) -> Path:
        return self.warehouse_dir / "landing"

    @property
    def raw_dir(self) -> Path:
        return self.warehouse_dir / "raw"

    @property
    def exports_dir(self) -> Path:
        return self.warehouse_dir / "exports"

    @property
    def run_log_dir(self) -> Path:
        return self.warehouse_dir / "runs"

    @property
    def failures_log(self) -> Path:
        return self.run_log_dir / "failures.jsonl"

    @property
    def fetches_log(self) -> Path:
        return self.run_log_dir / "fetches.jsonl"


@dataclass(frozen=True)
class SourceAutomation:
    """Operator overrides of one source's scheduling, from the automation YAML file."""

    schedule: str | None = None  # replaces the spec's cron; "off" disables the schedule
    enabled: bool = True  # False: schedule and release sensor start stopped
    max_age: timedelta | None = None
    probe_every_minutes: float | None = None  # live release probes at most this often


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    """Read the environment now.

    TREMPLIN_WAREHOUSE_DIR  root of the data plane (default: <project>/warehouse)
    TREMPLIN_MIRROR         directory laid out as mirror/<slug>/<file> (default: the
                            committed embedded mirror, <project>/warehouse/mirror)
    TREMPLIN_MODE           "mirror" (default) or "live" (the publishers' URLs)
    TREMPLIN_DUCKDB_PATH    the warehouse file (default: <warehouse dir>/warehouse.duckdb)
    TREMPLIN_HTTP_TIMEOUT   read timeout in seconds for downloads (default 60)
    TREMPLIN_MAX_DOWNLOAD_MB  size cap of one download (default 512)
    TREMPLIN_HTTP_RETRIES   extra attempts after a transient HTTP failure (default 4)
    TREMPLIN_HTTP_BACKOFF   first backoff delay in seconds, doubled each retry (default 1)
    TREMPLIN_ALERT_WEBHOOK  URL that receives a JSON POST when a run fails (default: none)
    TREMPLIN_AUTOMATION     YAML overriding schedules / freshness per source (default:
                            deploy/automation.yaml when it exists; "" for none)
    TREMPLIN_GATE_MAX_DROPPED_PCT  share of a table's keys (%) a new export vintage may drop
                            before the publication gate holds it (default 5)
    TREMPLIN_DBT_MEMORY_LIMIT  DuckDB memory limit inside dbt builds (default 1500MB)
    TREMPLIN_DBT_THREADS    DuckDB threads of every model (default 1)
    TREMPLIN_DBT_CONCURRENCY  dbt nodes built at once (default: the machine's cores)
    TREMPLIN_GATE_HEADLINES `table.field:mean|median:max_pct;...` headline indicators whose
                            relative move holds a vintage (default DEFAULT_GATE_HEADLINES;
                            "" for none)
    TREMPLIN_PUBLISH_DSN    PostgreSQL to publish verified vintages to (`tremplin publish`,
                            and the asset after the export); unset: no publication
    TREMPLIN_PUBLISH_KEEP   vintages kept loaded in PostgreSQL, the live one included (default 3)
    TREMPLIN_API_DSN        PostgreSQL the API reads (`tremplin serve`); unset: the export
                            files (`exports/latest`)
    TREMPLIN_API_MAX_AGE    Cache-Control max-age of the API's answers, seconds (default 300)
    TREMPLIN_ENGINE         engine of `dbt build`: "duckdb" (default) or "spark" (dbt-spark,
                            local pyspark session; `tremplin build --engine spark`)
    TREMPLIN_SPARK_DIR      Spark's Derby metastore and Parquet tables (default: <warehouse
                            dir>/spark)
    TREMPLIN_KEEP_UNCHANGED_RUNS  successful runs that changed nothing kept in Dagster's run
                            history, the newest ones (default 20; older ones are deleted)
    """
    warehouse_dir = _path("TREMPLIN_WAREHOUSE_DIR", PROJECT_ROOT / "warehouse")
    mode = os.environ.get("TREMPLIN_MODE", "mirror").strip().lower() or "mirror"
    if mode not in MODES:
        raise ValueError(f"TREMPLIN_MODE must be one of {MODES}, got {mode!r}")
    return Settings(
        warehouse_dir=warehouse_dir,
        mirror_dir=_path("TREMPLIN_MIRROR", PROJECT_ROOT / "warehouse" / "mirror"),
        mode=mode,
        duckdb_path=_path("TREMPLIN_DUCKDB_PATH", warehouse_dir / "warehouse.duckdb"),
        http_timeout_s=float(os.environ.get("TREMPLIN_HTTP_TIMEOUT", "60")),
        max_download_bytes=int(float(os.environ.get("TREMPLIN_MAX_DOWNLOAD_MB", "512")) * 2**20),
        http_retries=int(os.environ.get("TREMPLIN_HTTP_RETRIES", "4")),
        http_backoff_s=float(os.environ.get("TREMPLIN_HTTP_BACKOFF", "1")),
        alert_webhook=os.environ.get("TREMPLIN_ALERT_WEBHOOK", "").strip() or None,
        automation_file=_automation_file(),
        gate_max_dropped_pct=_gate_max_dropped_pct(),
        gate_headlines=parse_gate_headlines(os.environ.get("TREMPLIN_GATE_HEADLINES")),
        dbt_memory_limit=os.environ.get("TREMPLIN_DBT_MEMORY_LIMIT", "").strip()
        or Settings.dbt_memory_limit,
        dbt_threads=_positive_int("TREMPLIN_DBT_THREADS", default=1),
        dbt_concurrency=_positive_int("TREMPLIN_DBT_CONCURRENCY", default=os.cpu_count() or 1),
        publish_dsn=os.environ.get("TREMPLIN_PUBLISH_DSN", "").strip() or None,
        publish_keep=_positive_int("TREMPLIN_PUBLISH_KEEP", default=3),
        api_dsn=os.environ.get("TREMPLIN_API_DSN", "").strip() or None,
        api_cache_max_age=_positive_int("TREMPLIN_API_MAX_AGE", default=300),
        engine=_engine(),
        spark_dir_override=(
            _path("TREMPLIN_SPARK_DIR", PROJECT_ROOT)
            if os.environ.get("TREMPLIN_SPARK_DIR", "").strip()
            else None
        ),
        keep_unchanged_runs=_positive_int("TREMPLIN_KEEP_UNCHANGED_RUNS", default=20),
    )


def _engine() -> str:
    engine = os.environ.get("TREMPLIN_ENGINE", "").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise ValueError(f"TREMPLIN_ENGINE must be one of {ENGINES}, got {engine!r}")
    return engine


def _positive_int(name: str, *, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name}={text!r}: expected a whole number of at least 1")
    return value


def _gate_max_dropped_pct() -> float:
    value = os.environ.get("TREMPLIN_GATE_MAX_DROPPED_PCT", "5")
    try:
        pct = float(value)
    except ValueError:
        pct = -1.0
    if not 0 <= pct <= 100:
        raise ValueError(
            f"TREMPLIN_GATE_MAX_DROPPED_PCT must be a percentage (0-100), got {value!r}"
        )
    return pct


def parse_gate_headlines(value: str | None) -> tuple[HeadlineThreshold, ...]:
    """`table.field:stat:max_pct;...` -> thresholds; None gives the defaults, "" none."""
    if value is None:
        return DEFAULT_GATE_HEADLINES
    thresholds = []
    for item in filter(None, (part.strip() for part in value.replace(",", ";").split(";"))):
        target, _, rest = item.partition(":")
        table, _, field = target.partition(".")
        stat, _, pct = rest.partition(":")
        try:
            max_pct = float(pct)
        except ValueError:
            max_pct = -1.0
        if not table or not field or stat not in HEADLINE_STATS or max_pct < 0:
            raise ValueError(
                f"TREMPLIN_GATE_HEADLINES: {item!r} is not `table.field:mean|median:max_pct` "
                "(e.g. local_diagnosis.market__offers_per_10_job_seekers:median:25)"
            )
        thresholds.append(HeadlineThreshold(table, field, stat, max_pct))
    return tuple(thresholds)


def _automation_file() -> Path | None:
    value = os.environ.get("TREMPLIN_AUTOMATION")
    if value is None:
        return DEFAULT_AUTOMATION_FILE if DEFAULT_AUTOMATION_FILE.exists() else None
    return Path(value).expanduser().resolve() if value.strip() else None


def load_automation(settings: Settings) -> dict[str, SourceAutomation]:
    """Per-source overrides, so operators retune the calendar without a code change.

    The file maps `sources: {<slug>: {schedule, enabled, max_age_hours,
    probe_every_minutes}}`; unknown keys are refused so a typo never goes unnoticed.
    """
    path = settings.automation_file
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"automation file {path} is unreadable: {exc}") from exc
    sources = data.get("sources") or {}
    if not isinstance(sources, dict):
        raise ValueError(f"automation file {path}: `sources` must map slugs to settings")
    result = {}
    for slug, entry in sources.items():
        entry = entry or {}
        unknown = set(entry) - AUTOMATION_KEYS
        if unknown:
            raise ValueError(
                f"automation file {path}: source {slug}: unknown keys {sorted(unknown)} "
                f"(expected some of {sorted(AUTOMATION_KEYS)})"
            )
        hours = entry.get("max_age_hours")
        result[slug] = SourceAutomation(
            schedule=entry.get("schedule"),
            enabled=bool(entry.get("enabled", True)),
            max_age=timedelta(hours=float(hours)) if hours is not None else None,
            probe_every_minutes=entry.get("probe_every_minutes"),
        )
    return result
