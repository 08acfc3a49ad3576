"""Synthetic mirror of the two France Travail APIs, generated from the real referentials.

No real bulk answer of the "Marché du travail" or "Offres d'emploi" APIs can be published
here (credentialed APIs, terms of use), yet `make run` must work offline and the benchmark
needs national volumes. This generator writes files in the exact JSON shape of the
official OpenAPI specs (same field names and nesting) for the real ROME codes and the
real départements/régions, with plausible magnitudes and a fixed seed: the same seed and
inputs give the same bytes. Every file name starts with `synthetic__`, which the parsers
turn into `synthetic = true` on every row (and `SPEC.synthetic` marks the exports).

Files are gzip-compressed JSON (`.json.gz`, gzip header without name nor time so the
bytes are reproducible): the content is what the API would answer, compression only keeps
the committed mirror small. Output is streamed: one response-shaped file per indicator x
territory type x year, and offer search pages, so national scale never sits in memory.

Scales:
* `small` (the committed mirror): 30 ROME codes spread over the whole referential, every
  département + région + France, 5 quarters (2024T2-2025T2, so a year-on-year change
  exists), tension 2024-2025, salaries 2024; one offers snapshot (2025-11-13) of 6,000
  offers over all ROME codes. About 2-3 MB on disk.
* `national` (benchmark): all ROME x 101 départements + régions + France x 40 quarters
  (2016-2025), and 40 quarterly offers snapshots of ~275,000 offers (~11 M rows).

Usage: `python -m assets.mirror.synthetic_francetravail --scale small --out DIR`
(writes DIR/francetravail_marche_travail/ and DIR/francetravail_offres/).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from assets.foundation.settings import PROJECT_ROOT
from assets.ingest.referentials import GEO_DIR, ROME_CSV, Referentials, load_referentials

SEED = 20251113
SYNTHETIC_PREFIX = "synthetic__"
MARCHE_SLUG = "francetravail_marche_travail"
OFFRES_SLUG = "francetravail_offres"
DEFAULT_MIRROR = PROJECT_ROOT / "warehouse" / "mirror"
UPDATED_AT = "2025-10-15T06:00:00+02:00"

# Published volumes the synthetic magnitudes are scaled to (orders of magnitude only).
NATIONAL_JOBSEEKERS_A = 3_000_000  # category A job seekers, end of quarter
OFFERS_PER_JOBSEEKER = 0.33  # offers registered in a quarter per job seeker
HIRES_PER_JOBSEEKER = 0.13  # hires of job seekers in a quarter
SECRET_BELOW = 3  # département cells under this count are published as secret

CONTRACTS = (  # (code, label, share) from the real search page's typeContrat aggregation
    ("CDI", "Contrat à durée indéterminée", 0.605),
    ("MIS", "Mission intérimaire", 0.195),
    ("CDD", "Contrat à durée déterminée", 0.135),
    ("LIB", "Profession libérale", 0.022),
    ("CCE", "Profession commerciale", 0.007),
    ("FRA", "Franchise", 0.006),
    ("SAI", "Contrat travail saisonnier", 0.004),
    ("DIN", "CDI intérimaire", 0.001),
)
SALARY_TYPES = (
    ("Q1", "Premier quartile", 0.85),
    ("MED", "Médiane", 1.0),
    ("Q3", "Troisième quartile", 1.22),
)


@dataclass(frozen=True)
class Scale:
    name: str
    rome_sample: int | None  # None: every ROME code
    quarters: tuple[str, ...]
    tension_years: tuple[int, ...]
    salary_years: tuple[int, ...]
    snapshots: tuple[date, ...]
    offers_per_snapshot: int
    page_size: int
    # ROME codes per "Marché du travail" file (None: one file per indicator x territory
    # type x year). Bounds what one JSON document holds at benchmark scales, as live mode
    # does with one answer per request.
    rome_chunk: int | None = None
    # gzip level: 9 keeps the committed mirror small; 1 keeps benchmark generation fast.
    compresslevel: int = 9


def _quarters(first_year: int, first_q: int, count: int) -> tuple[str, ...]:
    out = []
    year, q = first_year, first_q
    for _ in range(count):
        out.append(f"{year}T{q}")
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return tuple(out)


SCALES = {
    "small": Scale(
        name="small",
        rome_sample=30,
        quarters=_quarters(2024, 2, 5),
        tension_years=(2024, 2025),
        salary_years=(2024,),
        snapshots=(date(2025, 11, 13),),
        offers_per_snapshot=6000,
        page_size=150,
    ),
    # About a tenth of national: every ROME code and territory, 5 quarters, 4 snapshots.
    "medium": Scale(
        name="medium",
        rome_sample=None,
        quarters=_quarters(2024, 2, 5),
        tension_years=(2024, 2025),
        salary_years=(2024,),
        snapshots=tuple(date(2025, 1 + 3 * i, 15) for i in range(4)),
        offers_per_snapshot=275_000,
        page_size=1500,
        rome_chunk=100,
        compresslevel=1,
    ),
    "national": Scale(
        name="national",
        rome_sample=None,
        quarters=_quarters(2016, 1, 40),
        tension_years=tuple(range(2016, 2026)),
        salary_years=tuple(range(2016, 2026)),
        snapshots=tuple(date(2016 + i // 4, 1 + 3 * (i % 4), 15) for i in range(40)),
        offers_per_snapshot=275_000,
        page_size=1500,
        rome_chunk=100,
        compresslevel=1,
    ),
}


# ------------------------------------------------------------------------------ output


def _gzip_writer(path: Path, compresslevel: int = 9) -> io.TextIOWrapper:
    """A text stream to a reproducible gzip file (no name nor timestamp in the header)."""
    raw = path.open("wb")
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel)
    wrapper = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
    wrapper._raw_file = raw  # type: ignore[attr-defined]  # closed with the wrapper below
    return wrapper


def _close(wrapper: io.TextIOWrapper) -> None:
    raw = wrapper._raw_file  # type: ignore[attr-defined]
    wrapper.close()
    raw.close()


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _clear(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"{SYNTHETIC_PREFIX}*"):
        old.unlink()


# ---------------------------------------------------------------- "Marché du travail"

INDICATORS = {
    # code: (endpoint file part, family, label, period type, nomenclature type)
    "DE_1": (
        "stat-demandeurs",
        "DEMANDEURS",
        "Nombre de demandeurs d'emploi inscrits en fin de trimestre",
        "TRIMESTRE",
    ),
    "OFF_1": (
        "stat-offres",
        "OFFRES",
        "Offres enregistrées au cours du trimestre",
        "TRIMESTRE",
    ),
    "EMB_1": (
        "stat-embauches",
        "EMBAUCHES",
        "Embauches de demandeurs d'emploi au cours du trimestre",
        "TRIMESTRE",
    ),
    "PERSP_2": (
        "stat-perspective-employeur",
        "PERSPECTIVES",
        "Difficultés de recrutement (indicateur de tension)",
        "ANNEE",
    ),
    "SAL_3": (
        "salaire-rome-fap",
        "SALAIRES",
        "Salaires des salariés en poste par typologie de salaire",
        "ANNEE",
    ),
}


def _quarter_label(code: str) -> str:
    year, q = code.split("T")
    return f"{'1er' if q == '1' else q + 'ème'} trimestre {year}"


class _Territories:
    """Index arrays to sum département cells into régions and France."""

    def __init__(self, ref: Referentials) -> None:
        self.ref = ref
        self.dep_region_index = np.array(
            [ref.regions.index(ref.dep_region[d]) for d in ref.departements]
        )

    def aggregate(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """values[rome, dep] -> (regions[rome, reg], nation[rome])."""
        regions = np.zeros((values.shape[0], len(self.ref.regions)), dtype=values.dtype)
        np.add.at(regions.T, self.dep_region_index, values.T)
        return regions, values.sum(axis=1)

    def items(self, territory_type: str) -> list[tuple[str, str]]:
        ref = self.ref
        if territory_type == "DEP":
            return [(d, ref.dep_names[d].upper()) for d in ref.departements]
        if territory_type == "REG":
            return [(r, ref.region_names[r].upper()) for r in ref.regions]
        return [("FR", "FRANCE")]


@dataclass
class _Model:
    """The latent magnitudes every indicator derives from, fixed by the seed."""

    rome_weight: np.ndarray  # over every ROME code (sums to 1)
    dep_weight: np.ndarray  # over the 101 départements (sums to 1)
    offer_ratio: np.ndarray  # per ROME
    hire_ratio: np.ndarray
    contract_share: np.ndarray  # per ROME x 3 (CDI, CDD, MIS)
    women_share: np.ndarray
    difficult_base: np.ndarray  # per ROME, % of recruitment projects judged difficult
    median_salary: np.ndarray  # per ROME, € gross per month
    dep_salary_factor: np.ndarray


def _model(ref: Referentials, seed: int) -> _Model:
    rng = np.random.default_rng(seed)
    n_rome, n_dep = len(ref.rome_codes), len(ref.departements)
    rome_weight = rng.lognormal(0.0, 1.1, n_rome)
    dep_weight = rng.lognormal(0.0, 0.55, n_dep)
    for big, factor in (("75", 2.5), ("13", 2.2), ("59", 2.6), ("69", 2.0), ("93", 2.0)):
        if big in ref.departements:
            dep_weight[ref.departements.index(big)] *= factor
    return _Model(
        rome_weight=rome_weight / rome_weight.sum(),
        dep_weight=dep_weight / dep_weight.sum(),
        offer_ratio=rng.lognormal(math.log(OFFERS_PER_JOBSEEKER), 0.6, n_rome),
        hire_ratio=rng.lognormal(math.log(HIRES_PER_JOBSEEKER), 0.4, n_rome),
        contract_share=rng.dirichlet((6.0, 3.0, 2.0), n_rome),
        women_share=rng.beta(2.0, 2.0, n_rome),
        difficult_base=np.clip(rng.normal(50.0, 15.0, n_rome), 5.0, 95.0),
        median_salary=rng.lognormal(math.log(2300.0), 0.22, n_rome),
        dep_salary_factor=np.where(
            np.array([d in ("75", "92", "78") for d in ref.departements]),
            1.2,
            rng.normal(1.0, 0.04, n_dep),
        ),
    )


def _period_entry(
    territory_type: str,
    territory: tuple[str, str],
    rome: str,
    rome_label: str,
    nomenclature: tuple[str, str],
    period: tuple[str, str, str],
    values: dict,
    characteristics: list[dict] | None,
) -> dict:
    entry = {
        "datMaj": UPDATED_AT,
        "codeTypeTerritoire": territory_type,
        "codeTerritoire": territory[0],
        "libTerritoire": territory[1],
        "codeTypeActivite": "ROME",
        "codeActivite": rome,
        "libActivite": rome_label,
        "codeNomenclature": nomenclature[0],
        "libNomenclature": nomenclature[1],
        "codeTypePeriode": period[0],
        "codePeriode": period[1],
        "libPeriode": period[2],
    }
    entry.update(values)
    if characteristics:
        entry["listeValeurParCaract"] = characteristics
    return entry


def _count_values(name: str, count: int, secret: bool) -> dict:
    # A secret cell keeps the name of its value and omits the value itself.
    return (
        {"valeurPrincipaleNom": name}
        if secret
        else {
            "valeurPrincipaleNom": name,
            "valeurPrincipaleNombre": int(count),
        }
    )


def _shares(total: int, shares: np.ndarray) -> list[int]:
    parts = [int(round(total * s)) for s in shares[:-1]]
    parts.append(max(total - sum(parts), 0))
    return parts


def _breakdown(kind: str, total: int, shares: np.ndarray) -> list[dict]:
    if kind == "TYPECTR":
        labels = (("CDI", "CDI"), ("CDD", "CDD"), ("MIS", "Intérim"))
    else:
        labels = (("F", "Femme"), ("H", "Homme"))
    out = []
    for (code, label), count in zip(labels, _shares(total, shares), strict=True):
        pct = round(100.0 * count / total, 1) if total else 0.0
        out.append(
            {
                "codeTypeCaract": kind,
                "codeCaract": code,
                "libCaract": label,
                "nombre": count,
                "pourcentage": pct,
            }
        )
    return out


def _write_indicator_file(
    path: Path,
    code: str,
    entries: Iterator[dict],
    territory_label: str | None,
    compresslevel: int = 9,
) -> int:
    endpoint, family, label, _ = INDICATORS[code]
    head = {"datMaj": UPDATED_AT, "codeIndicateur": code, "codeFamille": family}
    head["libIndicateur"] = label
    if territory_label:
        head["libTerritoire"] = territory_label
    out = _gzip_writer(path, compresslevel)
    count = 0
    try:
        out.write(_dumps(head)[:-1] + ',"listeValeursParPeriode":[')
        for entry in entries:
            out.write(("," if count else "") + _dumps(entry))
            count += 1
        out.write("]}")
    finally:
        _close(out)
    return count


def generate_marche_travail(
    out_dir: Path, ref: Referentials, scale: Scale, seed: int = SEED
) -> list[Path]:
    """One response-shaped file per indicator x territory type x year."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    model = _model(ref, seed)
    terr = _Territories(ref)
    all_codes = ref.rome_codes
    if scale.rome_sample:
        step = len(all_codes) / scale.rome_sample
        picked = [all_codes[int(i * step)] for i in range(scale.rome_sample)]
    else:
        picked = list(all_codes)
    idx = np.array([all_codes.index(c) for c in picked])
    labels = [ref.rome_labels[c] for c in picked]
    n_rome, n_dep = len(picked), len(ref.departements)
    base = NATIONAL_JOBSEEKERS_A * np.outer(model.rome_weight[idx], model.dep_weight)

    rng = np.random.default_rng(seed + 1)
    written: list[Path] = []

    def write(stem: str, code: str, entries, ttype: str) -> list[Path]:
        """One file, or one per `rome_chunk` ROME codes (`<stem>__r<k>.json.gz`)."""
        label = "FRANCE" if ttype == "NAT" else None
        if not scale.rome_chunk:
            chunks = [("", range(n_rome))]
        else:
            starts = range(0, n_rome, scale.rome_chunk)
            chunks = [
                (f"__r{k:02d}", range(s, min(s + scale.rome_chunk, n_rome)))
                for k, s in enumerate(starts)
            ]
        paths = []
        for suffix, rows in chunks:
            path = out_dir / f"{stem}{suffix}.json.gz"
            _write_indicator_file(path, code, entries(rows), label, scale.compresslevel)
            paths.append(path)
        return paths

    # Quarterly indicators: cell values per quarter, then régions/France as sums.
    quarterly: dict[str, dict[str, np.ndarray]] = {"DE_1": {}, "OFF_1": {}, "EMB_1": {}}
    for qi, quarter in enumerate(scale.quarters):
        q = int(quarter[-1])
        season = 1.0 + 0.04 * math.cos((q - 1) * math.pi / 2) - 0.004 * qi
        de = rng.poisson(base * season * rng.lognormal(0.0, 0.08, (n_rome, n_dep)))
        off = rng.poisson(de * model.offer_ratio[idx, None] * (1.0 + 0.12 * (q == 2)))
        emb = rng.poisson(de * model.hire_ratio[idx, None] * (1.0 + 0.15 * (q == 3)))
        quarterly["DE_1"][quarter] = de
        quarterly["OFF_1"][quarter] = off
        quarterly["EMB_1"][quarter] = emb

    nomenclatures = {
        "DE_1": ("A", "Demandeurs d'emploi de catégorie A"),
        "OFF_1": ("TOUTES", "Toutes origines d'offres"),
        "EMB_1": ("A_TOUTES", "Catégorie A, toutes durées d'emploi"),
    }
    value_names = {
        "DE_1": "Nombre de demandeurs d'emploi",
        "OFF_1": "Nombre d'offres d'emploi",
        "EMB_1": "Nombre d'embauches",
    }
    breakdown = {"DE_1": ("GENRE", None), "OFF_1": ("TYPECTR", None), "EMB_1": (None, None)}

    years = sorted({int(q[:4]) for q in scale.quarters})
    for code in ("DE_1", "OFF_1", "EMB_1"):
        endpoint = INDICATORS[code][0]
        kind = breakdown[code][0]
        for ttype in ("NAT", "REG", "DEP"):
            for year in years:
                quarters = [q for q in scale.quarters if int(q[:4]) == year]

                def entries(rows, code=code, ttype=ttype, quarters=quarters, kind=kind):
                    for quarter in quarters:
                        dep_values = quarterly[code][quarter]
                        reg_values, nat_values = terr.aggregate(dep_values)
                        table = {"DEP": dep_values, "REG": reg_values, "NAT": nat_values[:, None]}
                        values = table[ttype]
                        period = ("TRIMESTRE", quarter, _quarter_label(quarter))
                        for t_i, territory in enumerate(terr.items(ttype)):
                            for r_i in rows:
                                rome = picked[r_i]
                                count = int(values[r_i, t_i])
                                secret = ttype == "DEP" and count < SECRET_BELOW
                                chars = None
                                if kind and not secret and count:
                                    shares = (
                                        model.contract_share[idx[r_i]]
                                        if kind == "TYPECTR"
                                        else np.array(
                                            [
                                                model.women_share[idx[r_i]],
                                                1 - model.women_share[idx[r_i]],
                                            ]
                                        )
                                    )
                                    chars = _breakdown(kind, count, shares)
                                yield _period_entry(
                                    ttype,
                                    territory,
                                    rome,
                                    labels[r_i],
                                    nomenclatures[code],
                                    period,
                                    _count_values(value_names[code], count, secret),
                                    chars,
                                )

                stem = f"{SYNTHETIC_PREFIX}{endpoint}__{ttype}__{year}"
                written += write(stem, code, entries, ttype)

    # Tension (PERSP_2, yearly): share of recruitment projects judged difficult.
    rng_t = np.random.default_rng(seed + 2)
    for year in scale.tension_years:
        projects = rng_t.poisson(base * 0.25 * rng_t.lognormal(0.0, 0.3, (n_rome, n_dep)))
        difficult = np.clip(
            model.difficult_base[idx, None] + rng_t.normal(0.0, 8.0, (n_rome, n_dep)), 0, 100
        )
        hard = np.rint(projects * difficult / 100.0)
        reg_projects, nat_projects = terr.aggregate(projects)
        reg_hard, nat_hard = terr.aggregate(hard)
        for ttype in ("NAT", "REG", "DEP"):
            tp = {"DEP": projects, "REG": reg_projects, "NAT": nat_projects[:, None]}[ttype]
            th = {"DEP": hard, "REG": reg_hard, "NAT": nat_hard[:, None]}[ttype]

            def entries(rows, ttype=ttype, tp=tp, th=th, year=year):
                period = ("ANNEE", str(year), f"Année {year}")
                for t_i, territory in enumerate(terr.items(ttype)):
                    for r_i in rows:
                        rome = picked[r_i]
                        n = int(tp[r_i, t_i])
                        values = {
                            "valeurPrincipaleNom": "Part des projets de recrutement difficiles"
                        }
                        if n >= 5:  # too few projects: the share is secret
                            values["valeurPrincipaleTaux"] = round(100.0 * th[r_i, t_i] / n, 1)
                            values["valeurSecondaireNombre"] = n
                        yield _period_entry(
                            ttype,
                            territory,
                            rome,
                            labels[r_i],
                            ("DIFF", "Projets de recrutement jugés difficiles"),
                            period,
                            values,
                            None,
                        )

            stem = f"{SYNTHETIC_PREFIX}stat-perspective-employeur__{ttype}__{year}"
            written += write(stem, "PERSP_2", entries, ttype)

    # Salaries (SAL_3, yearly): quartiles of monthly gross pay of employees in post.
    rng_s = np.random.default_rng(seed + 3)
    dep_regions = [ref.regions.index(ref.dep_region[d]) for d in ref.departements]
    for year in scale.salary_years:
        growth = 1.0 + 0.02 * (year - 2024)
        for ttype in ("NAT", "REG", "DEP"):
            items = terr.items(ttype)
            if ttype == "DEP":
                factors = model.dep_salary_factor
            elif ttype == "REG":
                factors = np.array(
                    [
                        np.mean(
                            [
                                model.dep_salary_factor[i]
                                for i, r in enumerate(dep_regions)
                                if r == k
                            ]
                        )
                        for k in range(len(ref.regions))
                    ]
                )
            else:
                factors = np.ones(1)
            noise = rng_s.normal(1.0, 0.03, (n_rome, len(items)))
            secret = rng_s.random((n_rome, len(items))) < (0.15 if ttype == "DEP" else 0.0)

            def entries(
                rows,
                ttype=ttype,
                items=items,
                factors=factors,
                noise=noise,
                secret=secret,
                year=year,
                growth=growth,
            ):
                period = ("ANNEE", str(year), f"Année {year}")
                for t_i, territory in enumerate(items):
                    for r_i in rows:
                        rome = picked[r_i]
                        median = (
                            model.median_salary[idx[r_i]] * factors[t_i] * noise[r_i, t_i] * growth
                        )
                        for sal_code, sal_label, ratio in SALARY_TYPES:
                            values = {"valeurPrincipaleNom": "Salaire mensuel brut en euros"}
                            if not secret[r_i, t_i]:
                                values["valeurPrincipaleMontant"] = round(float(median * ratio), 0)
                            yield _period_entry(
                                ttype,
                                territory,
                                rome,
                                labels[r_i],
                                (sal_code, sal_label),
                                period,
                                values,
                                None,
                            )

            stem = f"{SYNTHETIC_PREFIX}salaire-rome-fap__{ttype}__{year}"
            written += write(stem, "SAL_3", entries, ttype)

    # ROME -> FAP correspondence (ListeRomeFap). The FAP codes are invented (letter of the
    # ROME grand domaine, FAP-like shape); the real bridge comes from the DARES tables.
    rng_f = np.random.default_rng(seed + 4)
    pairs = []
    for rome in all_codes:
        count = 2 if rng_f.random() < 0.1 else 1
        for _ in range(count):
            fap = f"{rome[0]}{rng_f.integers(0, 10)}Z{rng_f.integers(10, 100)}"
            pairs.append({"datMaj": UPDATED_AT, "codeRome": rome, "codeFap": fap})
    unique = {(p["codeRome"], p["codeFap"]): p for p in pairs}
    path = out_dir / f"{SYNTHETIC_PREFIX}rechercherActivitesRomeFap.json.gz"
    out = _gzip_writer(path, scale.compresslevel)
    try:
        out.write(_dumps({"romeFapList": list(unique.values())}))
    finally:
        _close(out)
    written.append(path)
    return written


# ------------------------------------------------------------------- "Offres d'emploi"

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _offer_id(number: int) -> str:
    """`S` + 6 base-36 characters: the shape of real ids (`200HHPB`), never one of them."""
    chars = []
    for _ in range(6):
        number, rest = divmod(number, 36)
        chars.append(_ID_ALPHABET[rest])
    return "S" + "".join(reversed(chars))


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _salary(rng: np.random.Generator, median: float) -> dict:
    if rng.random() < 0.3:
        return {}
    low = round(float(median * rng.uniform(0.8, 1.0)), 0)
    if rng.random() < 0.5:
        return {"libelle": f"Mensuel de {low:.1f} Euros sur 12.0 mois"}
    high = round(low * float(rng.uniform(1.05, 1.4)), 0)
    return {"libelle": f"Mensuel de {low:.1f} Euros à {high:.1f} Euros sur 12.0 mois"}


def generate_offres(out_dir: Path, ref: Referentials, scale: Scale, seed: int = SEED) -> list[Path]:
    """Search pages (`ResultatRecherche`) of each snapshot, `page_size` offers per page."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    model = _model(ref, seed)
    rng = np.random.default_rng(seed + 10)
    contract_codes = [c[0] for c in CONTRACTS]
    contract_labels = {c[0]: c[1] for c in CONTRACTS}
    contract_p = np.array([c[2] for c in CONTRACTS])
    contract_p = contract_p / contract_p.sum()
    written: list[Path] = []
    serial = 0
    for snapshot in scale.snapshots:
        n = scale.offers_per_snapshot
        rome_i = rng.choice(len(ref.rome_codes), size=n, p=model.rome_weight)
        dep_i = rng.choice(len(ref.departements), size=n, p=model.dep_weight)
        contract_i = rng.choice(len(contract_codes), size=n, p=contract_p)
        age_s = np.minimum(rng.exponential(20 * 86400.0, n), 180 * 86400.0)
        no_commune = rng.random(n) < 0.01
        end = datetime(snapshot.year, snapshot.month, snapshot.day, 23, 59, 59, tzinfo=UTC)
        aggregation = [
            {"valeurPossible": code, "nbResultats": int((contract_i == k).sum())}
            for k, code in enumerate(contract_codes)
        ]
        order = np.argsort(-age_s, kind="stable")[::-1]  # newest first, as sort=1 returns
        for page, start in enumerate(range(0, n, scale.page_size)):
            results = []
            for j in order[start : start + scale.page_size]:
                serial += 1
                rome = ref.rome_codes[rome_i[j]]
                dep = ref.departements[dep_i[j]]
                created = end - timedelta(seconds=float(age_s[j]))
                contract = contract_codes[contract_i[j]]
                if no_commune[j]:
                    place = {"libelle": f"{dep} - {ref.dep_names[dep]}"}
                else:
                    commune = ref.dep_chef_lieu[dep]
                    place = {"libelle": f"{dep} - {ref.dep_names[dep].upper()}", "commune": commune}
                results.append(
                    {
                        "id": _offer_id(serial),
                        "intitule": f"{ref.rome_labels[rome]} (H/F)",
                        "description": "Offre synthétique générée pour tremplin.",
                        "dateCreation": _iso_ms(created),
                        "dateActualisation": _iso_ms(created),
                        "lieuTravail": place,
                        "romeCode": rome,
                        "romeLibelle": ref.rome_labels[rome],
                        "appellationlibelle": ref.rome_labels[rome],
                        "entreprise": {"entrepriseAdaptee": False},
                        "typeContrat": contract,
                        "typeContratLibelle": contract_labels[contract],
                        "natureContrat": "Contrat travail",
                        "salaire": _salary(rng, float(model.median_salary[rome_i[j]])),
                        "alternance": False,
                        "nombrePostes": 1,
                        "origineOffre": {"origine": "1"},
                    }
                )
            body = {
                "resultats": results,
                "filtresPossibles": [{"filtre": "typeContrat", "agregation": aggregation}],
            }
            path = (
                out_dir / f"{SYNTHETIC_PREFIX}offres__{snapshot.isoformat()}__p{page:05d}.json.gz"
            )
            out = _gzip_writer(path, scale.compresslevel)
            try:
                out.write(_dumps(body))
            finally:
                _close(out)
            written.append(path)
    return written


def generate(
    out_dir: Path,
    scale: str = "small",
    *,
    seed: int = SEED,
    rome_csv: Path = ROME_CSV,
    geo_dir: Path = GEO_DIR,
) -> dict[str, list[Path]]:
    """Write both synthetic mirrors under `out_dir/<slug>/` (old synthetic files replaced)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}")
    ref = load_referentials(rome_csv, geo_dir)
    chosen = SCALES[scale]
    out_dir = Path(out_dir)
    return {
        MARCHE_SLUG: generate_marche_travail(out_dir / MARCHE_SLUG, ref, chosen, seed),
        OFFRES_SLUG: generate_offres(out_dir / OFFRES_SLUG, ref, chosen, seed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--out", type=Path, default=DEFAULT_MIRROR, help="mirror root directory")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    written = generate(args.out, args.scale, seed=args.seed)
    for slug, paths in written.items():
        size = sum(p.stat().st_size for p in paths)
        print(f"{slug}: {len(paths)} files, {size / 2**20:.1f} MiB in {args.out / slug}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
