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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from assets.sources.francetravail_api import (
    API_HOST,
    REQUIRED_ENV,
    SCOPES_OFFRES,
    TOKEN_HOST,
    Credentials,
    FranceTravailApiError,
    FranceTravailClient,
    is_synthetic_file,
    land_response,
    parse_content_range,
    read_json,
)
from assets.sources.landing import FetchReport, LandedFile, fetch_source, write_current_pointer
from assets.sources.raw import ParsedTable, ParseError, add_provenance
from assets.sources.spec import Download, SourceSpec
from assets.sources.validation import TableContract
from pipelines.settings import Settings

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
    mirror_patterns=("*.json*",),
    notes="Credentialed API (OAuth2 client credentials). The embedded mirror is generated "
    "deterministically in the exact response shape: every row is synthetic.",
    synthetic=True,
    extra_hosts=(API_HOST, TOKEN_HOST),
    requires_env=REQUIRED_ENV,
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


def _offer_row(offer: dict, snapshot: str, synthetic: bool) -> dict:
    place = offer.get("lieuTravail") or {}
    commune = place.get("commune")
    commune = str(commune).strip().upper() if commune else None
    label = place.get("libelle")
    departement, source = departement_from_commune(commune), "commune"
    if departement is None and label and (m := _LABEL_DEPARTEMENT.match(str(label))):
        departement, source = m[1], "work_place_label"
    salary = offer.get("salaire") or {}
    return {
        "offer_id": offer.get("id"),
        "rome_code": offer.get("romeCode"),
        "commune_code": commune,
        "departement_code": departement,
        "departement_source": source if departement else None,
        "work_place_label": label,
        "contract_type": offer.get("typeContrat"),
        "created_at": offer.get("dateCreation"),
        "salary_text": salary.get("libelle") if isinstance(salary, dict) else None,
        "snapshot_date": snapshot,
        "synthetic": synthetic,
    }


def parse(files: Iterable[LandedFile]) -> dict[str, ParsedTable]:
    """The offers of the landed search pages; partition = the latest snapshot date.

    Rows keep their own `snapshot_date`, so a mirror holding several snapshots (the
    benchmark) lands as one partition with every snapshot in it; an offer seen twice in
    one snapshot (pages shift while the API is paged) is kept once.
    """
    frames = []
    used = []
    for landed in files:
        document = read_json(landed, slug=SLUG)
        if not isinstance(document, dict) or not isinstance(document.get("resultats"), list):
            keys = sorted(document)[:12] if isinstance(document, dict) else type(document).__name__
            raise ParseError(
                f"{SLUG}: {landed.file_name} is not a search answer (ResultatRecherche with a "
                f"'resultats' list); found {keys}"
            )
        snapshot = snapshot_of(landed)
        synthetic = is_synthetic_file(landed.file_name)
        rows = []
        for position, offer in enumerate(document["resultats"]):
            if not isinstance(offer, dict) or not offer.get("id"):
                raise ParseError(
                    f"{SLUG}: {landed.file_name}: resultats[{position}] is not an offer with an id"
                )
            rows.append(_offer_row(offer, snapshot, synthetic))
        frame = pd.DataFrame(rows, columns=list(OFFER_COLUMNS))
        for column in OFFER_COLUMNS:
            frame[column] = frame[column].astype(bool if column == "synthetic" else "string")
        frames.append(add_provenance(frame, landed))
        used.append(landed)
    if not frames:
        raise ParseError(f"{SLUG}: no landed search page (expected *.json answers)")
    frame = pd.concat(frames, ignore_index=True)
    before = len(frame)
    frame = frame.drop_duplicates(["offer_id", "snapshot_date"], keep="first")
    frame = frame.reset_index(drop=True)
    if len(frame) < before:
        logger.info("%s: %d offer(s) seen twice in a snapshot kept once", SLUG, before - len(frame))
    partition = str(frame["snapshot_date"].max())
    logger.info("%s: parsed offers (%d rows, snapshot %s)", SLUG, len(frame), partition)
    return {"offers": ParsedTable("offers", frame, tuple(used), partition=partition)}


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
) -> FetchReport:
    """Mirror mode: land the mirror's files. Live mode: today's snapshot, page by page."""
    log = log or logger
    if settings.mode != "live":
        return fetch_source(spec, settings, log=log)
    own = client is None
    if client is None:
        client = FranceTravailClient(
            Credentials.from_env(SLUG),
            SCOPES_OFFRES,
            slug=SLUG,
            read_timeout=settings.http_timeout_s,
        )
    if departements is None:
        from assets.sources.synthetic_francetravail import load_referentials

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
