"""France Travail — API "Offres d'emploi" v2: a daily snapshot of open job offers.

`GET /v2/offres/search` pages with `range=p-d` (at most 150 offers a page) and answers
206 with `Content-Range: offres p-d/total` while more remain (200 on the last page, 204
when nothing matches). A query can only be paged up to index 3149: past ~3,000 results the
rest is unreachable, so a snapshot is fetched per département and, where a département
still has too many offers, per creation-date window halved until each window fits.

Only what indicators need is stored: offer id, ROME code, commune, département (derived
from the commune: 2 characters, `2A`/`2B`, 3 characters for 97x), contract type, creation
date, salary text, snapshot date. Recruiter contact data (`contact`, `agence`, company
name and description) is never read into raw. Snapshots accumulate: the raw table is
partitioned by snapshot date, so monthly offer counts and their year-on-year change can
be computed downstream.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from assets.foundation.settings import Settings
from assets.ingest.fetch import FetchReport, fetch_source
from assets.ingest.francetravail_api import (
    API_SOURCE_FIELDS,
    SCOPES_OFFRES,
    Credentials,
    FranceTravailApiError,
    FranceTravailClient,
    is_synthetic_file,
    land_response,
    parse_content_range,
    read_json,
)
from assets.ingest.landing import LandedFile, write_current_pointer
from assets.ingest.raw import ParseError
from assets.ingest.spec import TIMEZONE, Download, Partitioning, SourceSpec
from assets.ingest.validation import StagedTable, TableContract

logger = logging.getLogger(__name__)

SLUG = "francetravail_offres"
API_BASE = "https://api.francetravail.io/partenaire/offresdemploi"
SEARCH_URL = f"{API_BASE}/v2/offres/search"
TABLES = ("offers",)

PAGE_SIZE = 150  # the API's largest range
MAX_INDEX = 3149  # last index a range may reach ("d ne devant pas dépasser 3149")
REACHABLE = MAX_INDEX + 1
# Open offers older than this are not looked for when a département must be split.
LOOKBACK_DAYS = 400
MIN_WINDOW = timedelta(hours=1)

SPEC = SourceSpec(
    slug=SLUG,
    publisher="France Travail",
    title="API Offres d'emploi v2 — daily snapshot of open offers",
    landing_page="https://francetravail.io/data/api/offres-emploi",
    licence="francetravail.io terms of use (API content); mirror is synthetic",
    cadence="continuous (snapshot taken daily)",
    downloads=(Download(url=SEARCH_URL, file_name="offres_search.json", format="json"),),
    **API_SOURCE_FIELDS,
    # A snapshot every morning; the API keeps no history, so history is what accumulates
    # here: one daily partition per snapshot, today's included (end_offset=1).
    schedule="0 5 * * *",
    max_age=timedelta(days=3),
    partitioning=Partitioning(
        period="daily",
        start="2016-01-01",
        file_period=r"(?<![0-9])(?P<date>\d{4}-\d{2}-\d{2})(?![0-9])",
        end_offset=1,
    ),
)

OFFER_COLUMNS = (
    "offer_id",
    "rome_code",
    "commune_code",
    "departement_code",
    "departement_source",
    "work_place_label",
    "contract_type",
    "created_at",
    "salary_text",
    "snapshot_date",
    "synthetic",
)

DEPARTEMENT = r"^(?:0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-8]|98[4-9])$"
CONTRACTS: dict[str, TableContract] = {
    "offers": TableContract(
        columns=OFFER_COLUMNS,
        min_rows=1,
        patterns={
            "offer_id": r"^[0-9A-Z]{5,12}$",
            "rome_code": r"^[A-N][0-9]{4}$",
            "commune_code": r"^(?:[0-9]{2}|2[AB])[0-9]{3}$",
            "departement_code": DEPARTEMENT,
            "contract_type": r"^[A-Z]{2,4}$",
            "created_at": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?$",
            "snapshot_date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        },
        not_null=("offer_id", "snapshot_date", "synthetic"),
        unique=(("offer_id", "snapshot_date"),),
        accepted={"departement_source": ("commune", "work_place_label")},
    )
}

_SNAPSHOT_IN_NAME = re.compile(r"(?<![0-9])(\d{4}-\d{2}-\d{2})(?![0-9])")
_LABEL_DEPARTEMENT = re.compile(r"^\s*(\d{2,3}|2[AB])\s+-\s")


def departement_from_commune(commune: str | None) -> str | None:
    """INSEE commune code -> département: `97105` -> `971`, `2A004` -> `2A`, `78551` -> `78`."""
    if not commune:
        return None
    commune = commune.strip().upper()
    if not re.fullmatch(r"(?:[0-9]{2}|2[AB])[0-9]{3}", commune):
        return None
    return commune[:3] if commune[:2] in ("97", "98") else commune[:2]


def snapshot_of(landed: LandedFile) -> str:
    """The snapshot date in the file name (`..._2025-11-13_...`), else the fetch date."""
    if match := _SNAPSHOT_IN_NAME.search(landed.file_name):
        return match[1]
    return landed.fetched_at[:10]


# What the parser reads of each offer; everything else (contact, agence, entreprise...)
# is never read.
OFFER_TYPE = (
    "STRUCT(id VARCHAR, romeCode VARCHAR, typeContrat VARCHAR, dateCreation VARCHAR, "
    "lieuTravail STRUCT(libelle VARCHAR, commune VARCHAR), salaire STRUCT(libelle VARCHAR))[]"
)
MAX_PAGE_BYTES = 32 * 2**20
DUCKDB_MEMORY = "1500MB"


def _sql_text(name: str) -> str:
    return "'" + str(name).replace("'", "''") + "'"


def parse(files: Iterable[LandedFile], *, stage_dir: Path | None = None) -> dict[str, StagedTable]:
    """The offers of the landed search pages; partition = the latest snapshot date.

    Rows keep their own `snapshot_date`, so a mirror holding several snapshots (the
    benchmark) lands as one partition with every snapshot in it; an offer seen twice in
    one snapshot (pages shift while the API is paged) is kept once.

    National snapshots hold millions of offers: DuckDB reads the pages (gzipped or not)
    and writes the raw table to a staged Parquet file under `stage_dir` (a temporary
    directory by default), never building it in Python; the factory validates it with
    SQL and publishes it by renaming (see `validation.StagedTable`).
    """
    import duckdb

    files = tuple(files)
    if not files:
        raise ParseError(f"{SLUG}: no landed search page (expected *.json answers)")
    pages = pd.DataFrame(
        {
            "path": [str(f.path) for f in files],
            "file_order": range(len(files)),
            "_source_file": [f.file_name for f in files],
            "_source_url": [f.upstream_url or f.url for f in files],
            "_fetched_at": [
                pd.Timestamp(f.fetched_at).tz_convert("UTC").tz_localize(None) for f in files
            ],
            "_sha256": [f.sha256 for f in files],
            "snapshot_date": [snapshot_of(f) for f in files],
            "synthetic": [is_synthetic_file(f.file_name) for f in files],
        }
    )
    stage_dir = Path(stage_dir) if stage_dir else Path(tempfile.mkdtemp(prefix=f"{SLUG}-"))
    stage_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    target = stage_dir / f"offers.{token}.parquet"
    spill = stage_dir / f".duckdb-{token}"
    con = duckdb.connect()
    try:
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
        # The pages are read once into a temporary table (every check below and the
        # COPY read it); past the memory limit it spills beside the staged file.
        con.execute(f"set temp_directory = {_sql_text(spill)}")
        con.register("pages_df", pages)
        con.execute("create temp table pages as select * from pages_df")
        paths = ", ".join(_sql_text(p) for p in pages["path"])
        try:
            con.execute(
                f"""
                create temp table documents as
                select filename as path, resultats
                from read_json([{paths}], columns = {{resultats: '{OFFER_TYPE}'}},
                    format = 'auto', records = true, filename = true,
                    maximum_object_size = {MAX_PAGE_BYTES})
                """
            )
            not_answer = con.execute(
                "select p._source_file from pages p left join documents d using (path) "
                "where d.resultats is null order by p.file_order limit 1"
            ).fetchone()
        except duckdb.Error as exc:
            for landed in files:  # which page: DuckDB may not say (a broken gzip stream)
                read_json(landed, slug=SLUG)
            raise ParseError(
                f"{SLUG}: the landed search pages are not readable JSON answers ({exc})"
            ) from exc
        if not_answer:
            raise ParseError(
                f"{SLUG}: {not_answer[0]} is not a search answer (ResultatRecherche with a "
                f"'resultats' list)"
            )
        no_id = con.execute(
            """
            select p._source_file, o.pos - 1
            from (select path, unnest(resultats) as r,
                         unnest(generate_series(1, len(resultats))) as pos
                  from documents) o join pages p using (path)
            where o.r.id is null or trim(o.r.id) = ''
            order by p.file_order, o.pos limit 1
            """
        ).fetchone()
        if no_id:
            raise ParseError(
                f"{SLUG}: {no_id[0]}: resultats[{no_id[1]}] is not an offer with an id"
            )
        commune = "nullif(upper(trim(o.r.lieuTravail.commune)), '')"
        valid = f"regexp_full_match({commune}, '(?:[0-9]{{2}}|2[AB])[0-9]{{3}}')"
        from_commune = (
            f"case when {valid} then (case when left({commune}, 2) in ('97', '98') "
            f"then left({commune}, 3) else left({commune}, 2) end) end"
        )
        from_label = (
            "nullif(regexp_extract(o.r.lieuTravail.libelle, "
            "'^\\s*(\\d{2,3}|2[AB])\\s+-\\s', 1), '')"
        )
        con.execute(
            f"""
            copy (
                select
                    o.r.id as offer_id,
                    o.r.romeCode as rome_code,
                    {commune} as commune_code,
                    coalesce({from_commune}, {from_label}) as departement_code,
                    case when {from_commune} is not null then 'commune'
                         when {from_label} is not null then 'work_place_label' end
                        as departement_source,
                    o.r.lieuTravail.libelle as work_place_label,
                    o.r.typeContrat as contract_type,
                    o.r.dateCreation as created_at,
                    o.r.salaire.libelle as salary_text,
                    p.snapshot_date,
                    p.synthetic,
                    p._source_file,
                    p._source_url,
                    p._fetched_at,
                    p._sha256,
                    cast(o.pos as bigint) as _row_number
                from (select path, unnest(resultats) as r,
                             unnest(generate_series(1, len(resultats))) as pos
                      from documents) o
                join pages p using (path)
                qualify row_number() over (
                    partition by o.r.id, p.snapshot_date order by p.file_order, o.pos
                ) = 1
                order by p.file_order, o.pos
            ) to {_sql_text(target)} (format parquet)
            """
        )
        rows, partition, total = con.execute(
            f"""
            select (select count(*) from read_parquet({_sql_text(target)})),
                   (select max(snapshot_date) from read_parquet({_sql_text(target)})),
                   (select sum(len(resultats)) from documents)
            """
        ).fetchone()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    if total and rows < total:
        logger.info("%s: %d offer(s) seen twice in a snapshot kept once", SLUG, total - rows)
    logger.info("%s: parsed offers (%d rows, snapshot %s)", SLUG, rows, partition)
    return {
        "offers": StagedTable("offers", target, files, partition=partition, rows=int(rows or 0))
    }


# ----------------------------------------------------------------------------- fetching


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Harvest:
    """Pages of one snapshot, landed as they come."""

    client: FranceTravailClient
    settings: Settings
    snapshot: date
    fetched_at: datetime
    search_url: str
    log: logging.Logger
    files: list[LandedFile]
    missed: int = 0

    def page(self, params: dict, start: int, name: str):
        query = {**params, "range": f"{start}-{start + PAGE_SIZE - 1}", "sort": 1}
        response = self.client.get(self.search_url, params=query)
        total = None
        if response.status == 204:
            return response, 0
        span = parse_content_range(response.headers.get("content-range"))
        if span is not None:
            total = span[2]
        elif response.status == 200:
            document = response.json() or {}
            total = start + len(document.get("resultats", []))
        else:
            raise FranceTravailApiError(
                f"{SLUG}: {response.url}: HTTP {response.status} without a Content-Range header "
                "(expected 'offres p-d/total')",
                response.status,
            )
        self.files.append(
            land_response(
                self.settings.landing_dir,
                SLUG,
                f"{name}__r{start:04d}.json",
                response,
                fetched_at=self.fetched_at,
            )
        )
        return response, total

    def query(self, params: dict, name: str, total: int | None = None) -> int:
        """Page one query to its end (it must fit under the ceiling); returns its total."""
        start = 0
        while True:
            response, total_now = self.page(params, start, name)
            if total_now is not None:
                total = total_now
            if response.status in (200, 204) or total is None:
                break
            start += PAGE_SIZE
            if start >= min(total, REACHABLE):
                break
        return total or 0

    def count(self, params: dict) -> int:
        query = {**params, "range": "0-0"}
        response = self.client.get(self.search_url, params=query)
        if response.status == 204:
            return 0
        span = parse_content_range(response.headers.get("content-range"))
        if span is None:
            document = response.json() or {}
            return len(document.get("resultats", []))
        return span[2]

    def departement(self, code: str) -> None:
        base = {"departement": code}
        name = f"offres__{self.snapshot.isoformat()}__dep{code}"
        total = self.count(base)
        if total <= REACHABLE:
            if total:
                self.query(base, name)
            return
        end = datetime(self.snapshot.year, self.snapshot.month, self.snapshot.day, tzinfo=UTC)
        end += timedelta(days=1)
        start = end - timedelta(days=LOOKBACK_DAYS)
        covered = self.window(base, name, start, end)
        if covered < total:
            self.missed += total - covered
            self.log.warning(
                "%s: département %s: %d of %d open offers were created before %s and are "
                "not in this snapshot",
                SLUG,
                code,
                total - covered,
                total,
                start.date(),
            )

    def window(self, base: dict, name: str, start: datetime, end: datetime) -> int:
        """Offers created in [start, end): paged when under the ceiling, else halved."""
        params = {**base, "minCreationDate": _iso(start), "maxCreationDate": _iso(end)}
        total = self.count(params)
        if total == 0:
            return 0
        if total <= REACHABLE or end - start <= MIN_WINDOW:
            if total > REACHABLE:
                self.missed += total - REACHABLE
                self.log.warning(
                    "%s: %s: %d offers created within %s..%s, only %d reachable",
                    SLUG,
                    name,
                    total,
                    _iso(start),
                    _iso(end),
                    REACHABLE,
                )
            stamp = start.strftime("%Y%m%dT%H%M%S")
            self.query(params, f"{name}__w{stamp}", total)
            return min(total, REACHABLE)
        middle = start + (end - start) / 2
        return self.window(base, name, start, middle) + self.window(base, name, middle, end)


def fetch(
    spec: SourceSpec,
    settings: Settings,
    log: logging.Logger | None = None,
    *,
    client: FranceTravailClient | None = None,
    departements: Iterable[str] | None = None,
    search_url: str = SEARCH_URL,
    snapshot: date | None = None,
    partition_key: str | None = None,
) -> FetchReport:
    """Mirror mode: land the mirror's files. Live mode: today's snapshot, page by page.

    The API only shows the offers open now, so a live fetch can only fill today's
    partition; asking it for another day fails rather than filing today's offers under
    the wrong date (past snapshots come from a mirror that kept them).
    """
    log = log or logger
    if settings.mode != "live":
        return fetch_source(spec, settings, log=log)
    if partition_key is not None:
        today = datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
        if partition_key != today:
            raise FranceTravailApiError(
                f"{SLUG}: live mode can only take today's snapshot ({today}); partition "
                f"{partition_key} is another day and the API keeps no history. Backfill past "
                "snapshots in mirror mode from a directory that holds them."
            )
        snapshot = snapshot or date.fromisoformat(partition_key)
    own = client is None
    if client is None:
        client = FranceTravailClient(
            Credentials.from_env(SLUG),
            SCOPES_OFFRES,
            slug=SLUG,
            read_timeout=settings.http_timeout_s,
        )
    if departements is None:
        from assets.ingest.referentials import load_referentials

        geo = settings.mirror_dir / "etalab_decoupage_administratif"
        departements = load_referentials(geo_dir=geo).departements
    fetched_at = datetime.now(UTC)
    harvest = _Harvest(
        client=client,
        settings=settings,
        snapshot=snapshot or fetched_at.date(),
        fetched_at=fetched_at,
        search_url=search_url,
        log=log,
        files=[],
    )
    try:
        for code in departements:
            harvest.departement(code)
    finally:
        if own:
            client.close()
    log.info(
        "%s: snapshot %s: %d pages landed, %d offers unreachable",
        SLUG,
        harvest.snapshot,
        len(harvest.files),
        harvest.missed,
    )
    write_current_pointer(settings.landing_dir, SLUG, "live", harvest.files)
    return FetchReport(slug=SLUG, mode="live", files=tuple(harvest.files))


__all__ = [
    "CONTRACTS",
    "SLUG",
    "SPEC",
    "TABLES",
    "departement_from_commune",
    "fetch",
    "parse",
    "snapshot_of",
]
