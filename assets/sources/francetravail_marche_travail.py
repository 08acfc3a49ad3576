"""France Travail — API "Marché du travail" v1: labour-market indicators by job and area.

Each indicator endpoint answers an `IndicateurRetour`: header fields (`codeIndicateur`,
`datMaj`...) and `listeValeursParPeriode`, one `ValeursParPeriode` per activity x
territory x nomenclature x period, each optionally broken down in `listeValeurParCaract`
(`ValeursParCaracteristique`: gender, contract type...). The parser reads the activity and
territory from every entry, not from the request, so it reads the same way one response
per request (live) or one file per indicator x territory type (the synthetic mirror).

Kept indicators: DE_1 job seekers (`stat-demandeurs`), OFF_1 offers (`stat-offres`),
EMB_1 hires (`stat-embauches`), PERSP_2 recruitment difficulty (`stat-perspective-
employeur`), SAL_3 salaries (`salaire-rome-fap`), plus the ROME -> FAP referential
(`rechercherActivitesRomeFap`).

Secret values: an entry whose principal value (`valeurPrincipaleNombre` / `Montant` /
`Taux`) is absent or null is statistically secret; raw keeps it with `value` NULL and
`value_masked` true, never 0. The mirror is generated (see synthetic_francetravail.py);
rows from `synthetic__*` files carry `synthetic = true`.
"""

from __future__ import annotations

import logging
import re
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from assets.sources.francetravail_api import (
    API_HOST,
    REQUIRED_ENV,
    SCOPES_MARCHE_TRAVAIL,
    TOKEN_HOST,
    Credentials,
    FranceTravailApiError,
    FranceTravailClient,
    is_synthetic_file,
    land_response,
    read_json,
)
from assets.sources.landing import (
    FetchReport,
    LandedFile,
    NotFetchedError,
    current_files,
    fetch_source,
    write_current_pointer,
)
from assets.sources.raw import ParsedTable, ParseError, add_provenance
from assets.sources.spec import Download, SourceSpec
from assets.sources.validation import StagedTable, TableContract
from pipelines.settings import Settings

logger = logging.getLogger(__name__)

SLUG = "francetravail_marche_travail"
API_BASE = "https://api.francetravail.io/partenaire/stats-offres-demandes-emploi"
TABLES = ("indicators", "rome_fap")

# Indicator code -> (endpoint, HTTP method, period type, nomenclature type of the request).
INDICATORS = {
    "DE_1": ("stat-demandeurs", "POST", "TRIMESTRE", "CATCAND"),
    "OFF_1": ("stat-offres", "POST", "TRIMESTRE", "ORIGINEOFF"),
    "EMB_1": ("stat-embauches", "POST", "TRIMESTRE", "CATCANDxDUREEEMP"),
    "PERSP_2": ("stat-perspective-employeur", "POST", "ANNEE", "TYPE_TENSION"),
    "SAL_3": ("salaire-rome-fap", "GET", "ANNEE", None),
}
ROME_FAP_ENDPOINT = "rechercherActivitesRomeFap"

SPEC = SourceSpec(
    slug=SLUG,
    publisher="France Travail",
    title="API Marché du travail v1 — demandeurs, offres, embauches, tension, salaires",
    landing_page="https://francetravail.io/data/api/marche-travail",
    licence="francetravail.io terms of use (API content); mirror is synthetic",
    cadence="quarterly (job seekers, offers, hires), yearly (tension, salaries)",
    downloads=tuple(
        Download(
            url=f"{API_BASE}/v1/indicateur/{endpoint}", file_name=f"{endpoint}.json", format="json"
        )
        for endpoint, *_ in INDICATORS.values()
    )
    + (
        Download(
            url=f"{API_BASE}/v1/referentiel/{ROME_FAP_ENDPOINT}",
            file_name=f"{ROME_FAP_ENDPOINT}.json",
            format="json",
        ),
    ),
    mirror_patterns=("*.json*",),
    notes="Credentialed API (OAuth2 client credentials). The embedded mirror is generated "
    "deterministically in the exact response shape: every row is synthetic.",
    synthetic=True,
    extra_hosts=(API_HOST, TOKEN_HOST),
    requires_env=REQUIRED_ENV,
)

ROME_OR_FAP = r"^(?:[A-N][0-9]{4}|[A-Z][0-9][A-Z][0-9]{2})$"
TERRITORY = r"^(?:FR|[0-9]{2}|2[AB]|97[1-6])$"
NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"

INDICATOR_COLUMNS = (
    "indicator_code",
    "indicator_family",
    "activity_type",
    "activity_code",
    "activity_label",
    "territory_type",
    "territory_code",
    "territory_label",
    "period_type",
    "period_code",
    "period_label",
    "period_start",
    "nomenclature_code",
    "nomenclature_label",
    "characteristic_type",
    "characteristic_code",
    "characteristic_label",
    "value_name",
    "value_kind",
    "value",
    "value_masked",
    "value_pct",
    "secondary_count",
    "updated_at",
    "synthetic",
)

CONTRACTS: dict[str, TableContract] = {
    "indicators": TableContract(
        columns=INDICATOR_COLUMNS,
        min_rows=1,
        patterns={
            "activity_code": ROME_OR_FAP,
            "territory_code": TERRITORY,
            "period_start": r"^[0-9]{4}-(?:0[1-9]|1[0-2])-01$",
            "value": NUMBER,
            "value_pct": NUMBER,
            "secondary_count": r"^[0-9]+$",
        },
        not_null=(
            "indicator_code",
            "activity_type",
            "activity_code",
            "territory_type",
            "territory_code",
            "period_type",
            "period_code",
            "value_masked",
            "synthetic",
        ),
        unique=(
            (
                "indicator_code",
                "activity_type",
                "activity_code",
                "territory_type",
                "territory_code",
                "period_type",
                "period_code",
                "nomenclature_code",
                "characteristic_type",
                "characteristic_code",
            ),
        ),
        accepted={
            "indicator_code": tuple(INDICATORS),
            "territory_type": ("NAT", "REG", "DEP"),
            "activity_type": ("ROME", "FAP"),
            "value_kind": ("nombre", "montant", "taux", "rang"),
        },
    ),
    "rome_fap": TableContract(
        columns=("rome_code", "fap_code", "updated_at", "synthetic"),
        min_rows=500,
        patterns={"rome_code": r"^[A-N][0-9]{4}$", "fap_code": r"^[A-Z][0-9][A-Z][0-9]{2}$"},
        not_null=("rome_code", "fap_code", "synthetic"),
        unique=(("rome_code", "fap_code"),),
    ),
}

# Principal value fields of ValeursParPeriode, in the order one is taken as `value`.
MAIN_VALUES = (
    ("valeurPrincipaleNombre", "nombre"),
    ("valeurPrincipaleMontant", "montant"),
    ("valeurPrincipaleTaux", "taux"),
    ("valeurPrincipaleRang", "rang"),
)
CHARACTERISTIC_VALUES = (("nombre", "nombre"), ("montant", "montant"), ("taux", "taux"))
# Text some publishers put where a secret number would be.
MASK_TOKENS = frozenset({"*", "s", "nd", "n.d.", "secret", "c", ""})


# ------------------------------------------------------------------------------ parsing


def _text(value: object) -> str | None:
    """JSON scalar -> raw text (numbers without float noise), None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _number(value: object) -> tuple[str | None, bool]:
    """(text, masked): None, missing or a secret token is masked."""
    text = _text(value)
    if text is None or text.lower() in MASK_TOKENS:
        return None, True
    if not re.fullmatch(NUMBER, text):
        return None, True
    return text, False


_QUARTER = re.compile(r"^(\d{4})T([1-4])$")
_MONTH = re.compile(r"^(\d{4})(?:M|-)?(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(\d{4})$")


def period_start(period_type: str | None, code: str | None) -> str | None:
    """`2023T4` -> 2023-10-01, `2023` -> 2023-01-01, `2023M11`/`202311` -> 2023-11-01."""
    if not code:
        return None
    code = code.strip().upper()
    if m := _QUARTER.match(code):
        return f"{m[1]}-{3 * (int(m[2]) - 1) + 1:02d}-01"
    if (m := _YEAR.match(code)) and (period_type or "").upper() != "MOIS":
        return f"{m[1]}-01-01"
    if m := _MONTH.match(code):
        return f"{m[1]}-{m[2]}-01"
    return None


def _main_value(entry: dict) -> tuple[str | None, str | None, bool]:
    for key, kind in MAIN_VALUES:
        if key in entry and entry[key] is not None:
            text, masked = _number(entry[key])
            return text, kind, masked
    return None, None, True


def _indicator_rows(document: dict, file_name: str) -> list[dict]:
    code = _text(document.get("codeIndicateur"))
    if not code:
        raise ParseError(
            f"{SLUG}: {file_name} has no codeIndicateur (expected an IndicateurRetour with "
            f"codeIndicateur and listeValeursParPeriode; keys found: {sorted(document)[:12]})"
        )
    entries = document.get("listeValeursParPeriode")
    if not isinstance(entries, list):
        raise ParseError(f"{SLUG}: {file_name}: listeValeursParPeriode is not a list")
    family = _text(document.get("codeFamille"))
    synthetic = is_synthetic_file(file_name)
    rows = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ParseError(
                f"{SLUG}: {file_name}: listeValeursParPeriode[{position}] is not an object"
            )
        ptype = _text(entry.get("codeTypePeriode"))
        pcode = _text(entry.get("codePeriode"))
        value, kind, masked = _main_value(entry)
        pct, _ = _number(entry.get("valeurSecondairePourcentage"))
        secondary, _ = _number(entry.get("valeurSecondaireNombre"))
        base = {
            "indicator_code": code,
            "indicator_family": family,
            "activity_type": _text(entry.get("codeTypeActivite")),
            "activity_code": _text(entry.get("codeActivite")),
            "activity_label": _text(entry.get("libActivite")),
            "territory_type": _text(entry.get("codeTypeTerritoire")),
            "territory_code": _text(entry.get("codeTerritoire")),
            "territory_label": _text(entry.get("libTerritoire")),
            "period_type": ptype,
            "period_code": pcode,
            "period_label": _text(entry.get("libPeriode")),
            "period_start": period_start(ptype, pcode),
            "nomenclature_code": _text(entry.get("codeNomenclature")),
            "nomenclature_label": _text(entry.get("libNomenclature")),
            "characteristic_type": None,
            "characteristic_code": None,
            "characteristic_label": None,
            "value_name": _text(entry.get("valeurPrincipaleNom")),
            "value_kind": kind,
            "value": value,
            "value_masked": masked,
            "value_pct": pct,
            "secondary_count": secondary,
            "updated_at": _text(entry.get("datMaj")) or _text(document.get("datMaj")),
            "synthetic": synthetic,
        }
        rows.append(base)
        for item in entry.get("listeValeurParCaract") or ():
            c_value, c_kind, c_masked = None, None, True
            for key, c_name in CHARACTERISTIC_VALUES:
                if key in item and item[key] is not None:
                    c_value, c_masked = _number(item[key])
                    c_kind = c_name
                    break
            c_pct, _ = _number(item.get("pourcentage"))
            rows.append(
                {
                    **base,
                    "characteristic_type": _text(item.get("codeTypeCaract")),
                    "characteristic_code": _text(item.get("codeCaract")),
                    "characteristic_label": _text(item.get("libCaract")),
                    "value_kind": c_kind,
                    "value": c_value,
                    "value_masked": c_masked,
                    "value_pct": c_pct,
                    "secondary_count": None,
                }
            )
    return rows


def _rome_fap_rows(document: dict, file_name: str) -> list[dict]:
    pairs = document.get("romeFapList")
    if not isinstance(pairs, list):
        raise ParseError(f"{SLUG}: {file_name}: romeFapList is not a list")
    synthetic = is_synthetic_file(file_name)
    return [
        {
            "rome_code": _text(p.get("codeRome")),
            "fap_code": _text(p.get("codeFap")),
            "updated_at": _text(p.get("datMaj")),
            "synthetic": synthetic,
        }
        for p in pairs
    ]


def _frame(rows: list[dict], columns: Iterable[str]) -> pd.DataFrame:
    columns = list(columns)
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        if column in ("value_masked", "synthetic"):
            frame[column] = frame[column].astype(bool)
        else:
            frame[column] = frame[column].astype("string")
    return frame


def parse(
    files: Iterable[LandedFile], *, stage_dir: Path | None = None
) -> dict[str, ParsedTable | StagedTable]:
    """Every landed response into the long `indicators` table and `rome_fap`.

    National volumes are tens of millions of indicator rows: each response is turned
    into rows on its own and appended to a staged Parquet file under `stage_dir` (a
    temporary directory by default), so memory holds one response at a time, never the
    table (the factory validates the staged file with SQL, see `validation.StagedTable`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    stage_dir = Path(stage_dir) if stage_dir else Path(tempfile.mkdtemp(prefix=f"{SLUG}-"))
    stage_dir.mkdir(parents=True, exist_ok=True)
    target = stage_dir / f"indicators.{uuid.uuid4().hex}.parquet"
    writer: pq.ParquetWriter | None = None
    indicator_rows = 0
    fap_frames: list[pd.DataFrame] = []
    used: dict[str, list[LandedFile]] = {t: [] for t in TABLES}
    try:
        for landed in files:
            document = read_json(landed, slug=SLUG)
            if isinstance(document, dict) and "listeValeursParPeriode" in document:
                frame = _frame(_indicator_rows(document, landed.file_name), INDICATOR_COLUMNS)
                del document
                chunk = pa.Table.from_pandas(add_provenance(frame, landed), preserve_index=False)
                if writer is None:
                    schema = pa.schema(
                        [
                            f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                            for f in chunk.schema
                        ]
                    )
                    writer = pq.ParquetWriter(target, schema)
                writer.write_table(chunk.cast(writer.schema))
                indicator_rows += len(frame)
                used["indicators"].append(landed)
            elif isinstance(document, dict) and "romeFapList" in document:
                frame = _frame(
                    _rome_fap_rows(document, landed.file_name), CONTRACTS["rome_fap"].columns
                )
                fap_frames.append(add_provenance(frame, landed))
                used["rome_fap"].append(landed)
            else:
                keys = (
                    sorted(document)[:12] if isinstance(document, dict) else type(document).__name__
                )
                raise ParseError(
                    f"{SLUG}: {landed.file_name} is neither an IndicateurRetour "
                    f"(listeValeursParPeriode) nor a ListeRomeFap (romeFapList); found {keys}"
                )
    except BaseException:
        if writer is not None:
            writer.close()
        target.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    for table in TABLES:
        if not used[table]:
            target.unlink(missing_ok=True)
            raise ParseError(
                f"{SLUG}: no landed file holds the {table} table "
                f"({'an IndicateurRetour' if table == 'indicators' else 'a ListeRomeFap'})"
            )
    fap = pd.concat(fap_frames, ignore_index=True)
    logger.info(
        "%s: parsed indicators (%d rows), rome_fap (%d rows)", SLUG, indicator_rows, len(fap)
    )
    return {
        "indicators": StagedTable(
            "indicators", target, tuple(used["indicators"]), rows=indicator_rows
        ),
        "rome_fap": ParsedTable("rome_fap", fap, tuple(used["rome_fap"])),
    }


# ----------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class LiveScope:
    """What a live fetch asks for. The default is the diagnostic's need: every ROME code x
    France, the régions and the départements, latest period only. That is about
    1,600 x 120 x 5 requests: run it on a schedule with patience (the API rate-limits)."""

    rome_codes: tuple[str, ...]
    territories: tuple[tuple[str, str], ...]  # (type, code)
    indicators: tuple[str, ...] = tuple(INDICATORS)
    latest_only: bool = True


def default_scope(settings: Settings, departements: Iterable[str], regions: Iterable[str]):
    rome = _landed_rome_codes(settings)
    territories = (("NAT", "FR"),)
    territories += tuple(("REG", r) for r in regions) + tuple(("DEP", d) for d in departements)
    return LiveScope(rome_codes=rome, territories=territories)


def _landed_rome_codes(settings: Settings) -> tuple[str, ...]:
    """ROME codes of the last landed ROME referential (the francetravail_rome source)."""
    import csv
    import io

    from assets.sources.landing import iter_members

    try:
        files = current_files(settings.landing_dir, "francetravail_rome")
    except NotFetchedError:
        raise FranceTravailApiError(
            f"{SLUG}: a live fetch asks the API for every ROME code; fetch the "
            "francetravail_rome source first"
        ) from None
    for _name, opener, _landed in iter_members(files, "unix_referentiel_code_rome_v*.csv"):
        with opener() as fh:
            text = fh.read().decode("utf-8-sig")
        return tuple(sorted(r["code_rome"] for r in csv.DictReader(io.StringIO(text))))
    raise FranceTravailApiError(f"{SLUG}: no ROME referential among the landed ROME files")


def _request_name(indicator: str, territory: tuple[str, str], rome: str) -> str:
    endpoint = INDICATORS[indicator][0]
    return f"{endpoint}__{territory[0]}-{territory[1]}__ROME-{rome}.json"


def fetch(
    spec: SourceSpec,
    settings: Settings,
    log: logging.Logger | None = None,
    *,
    client: FranceTravailClient | None = None,
    scope: LiveScope | None = None,
    base_url: str = API_BASE,
) -> FetchReport:
    """Mirror mode: land the mirror's files. Live mode: one landed file per API answer."""
    log = log or logger
    if settings.mode != "live":
        return fetch_source(spec, settings, log=log)
    own = client is None
    if client is None:
        client = FranceTravailClient(
            Credentials.from_env(SLUG),
            SCOPES_MARCHE_TRAVAIL,
            slug=SLUG,
            read_timeout=settings.http_timeout_s,
        )
    if scope is None:
        from assets.sources.synthetic_francetravail import load_referentials

        ref = load_referentials(geo_dir=settings.mirror_dir / "etalab_decoupage_administratif")
        scope = default_scope(settings, ref.departements, ref.regions)
    fetched_at = datetime.now(UTC)
    files: list[LandedFile] = []
    try:
        response = client.get(f"{base_url}/v1/referentiel/{ROME_FAP_ENDPOINT}")
        files.append(
            land_response(
                settings.landing_dir,
                SLUG,
                f"{ROME_FAP_ENDPOINT}.json",
                response,
                fetched_at=fetched_at,
            )
        )
        for indicator in scope.indicators:
            endpoint, method, period_type, nomenclature = INDICATORS[indicator]
            for territory in scope.territories:
                for rome in scope.rome_codes:
                    if method == "GET":
                        response = client.get(
                            f"{base_url}/v1/indicateur/{endpoint}/{territory[0]}/{territory[1]}",
                            params={"codeRome": rome},
                        )
                    else:
                        body: dict = {
                            "codeTypeTerritoire": territory[0],
                            "codeTerritoire": territory[1],
                            "codeTypeActivite": "ROME",
                            "codeActivite": rome,
                            "codeTypePeriode": period_type,
                            "codeTypeNomenclature": nomenclature,
                        }
                        if scope.latest_only:
                            body["dernierePeriode"] = True
                        response = client.post(f"{base_url}/v1/indicateur/{endpoint}", body)
                    if response.status == 204 or not response.body:
                        continue  # nothing published for this activity x territory
                    files.append(
                        land_response(
                            settings.landing_dir,
                            SLUG,
                            _request_name(indicator, territory, rome),
                            response,
                            fetched_at=fetched_at,
                        )
                    )
            log.info("%s: %s fetched (%d files so far)", SLUG, indicator, len(files))
    finally:
        if own:
            client.close()
    write_current_pointer(settings.landing_dir, SLUG, "live", files)
    return FetchReport(slug=SLUG, mode="live", files=tuple(files))


__all__ = [
    "CONTRACTS",
    "INDICATORS",
    "LiveScope",
    "SLUG",
    "SPEC",
    "TABLES",
    "fetch",
    "parse",
    "period_start",
]
