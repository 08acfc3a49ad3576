"""The headline indicators the way such pipelines are commonly written: pandas, in memory.

This is the comparison point of the benchmark, not part of tremplin. It reads every input
into DataFrames, merges and groups, as the original Bob scripts did, and is written to be
correct (secret cells stay missing, duplicates of an offer in one snapshot count once):

* offers per 10 job seekers by ROME x département x quarter (API "Marché du travail":
  OFF_1 / DE_1, total rows only);
* BMO shares of difficult and seasonal recruitment projects by métier x département;
* open offers per ROME x département x snapshot month (API "Offres d'emploi").

`python -m pipelines.bench.pandas_baseline --mirror DIR --out DIR` writes the three tables
as Parquet and `summary.json` (row counts, seconds per indicator, split into reading the
files into one DataFrame each and computing the indicator from those frames).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

MARCHE = "francetravail_marche_travail"
OFFRES = "francetravail_offres"
BMO = "francetravail_bmo"


def _load(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return json.load(fh)


def read_offers_per_jobseeker(mirror: Path) -> list[pd.DataFrame]:
    frames = []
    for path in sorted((mirror / MARCHE).glob("*stat-*.json*")):
        document = _load(path)
        if document.get("codeIndicateur") not in ("DE_1", "OFF_1"):
            continue
        frame = pd.DataFrame(document["listeValeursParPeriode"])
        frame["indicator"] = document["codeIndicateur"]
        frames.append(frame)
    return frames


def compute_offers_per_jobseeker(frames: list[pd.DataFrame]) -> pd.DataFrame:
    data = pd.concat(frames, ignore_index=True)
    data = data[data["codeTypeTerritoire"] == "DEP"]
    data["value"] = pd.to_numeric(data["valeurPrincipaleNombre"], errors="coerce")
    keys = ["codeActivite", "codeTerritoire", "codePeriode"]
    seekers = data[data["indicator"] == "DE_1"][[*keys, "value"]]
    offers = data[data["indicator"] == "OFF_1"][[*keys, "value"]]
    merged = seekers.merge(offers, on=keys, suffixes=("_seekers", "_offers"))
    merged["offers_per_10_jobseekers"] = (
        10 * merged["value_offers"] / merged["value_seekers"].where(merged["value_seekers"] > 0)
    )
    return merged.rename(
        columns={
            "codeActivite": "rome_code",
            "codeTerritoire": "departement_code",
            "codePeriode": "quarter",
        }
    )


def read_bmo_shares(mirror: Path) -> list[pd.DataFrame]:
    frames = []
    for path in sorted((mirror / BMO).glob("Base_open_data*.xls*")):
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="calamine")
        data_sheet = next(name for name in sheets if "open_data" in name.lower())
        frame = sheets[data_sheet]
        frame.columns = [re.sub(r"^(NOM)?BE\d+$", r"\1BE", c) for c in frame.columns]
        frames.append(frame)
    return frames


def compute_bmo_shares(frames: list[pd.DataFrame]) -> pd.DataFrame:
    data = pd.concat(frames, ignore_index=True)
    for column in ("met", "xmet", "smet"):
        data[column] = pd.to_numeric(data[column], errors="coerce")  # '*' -> NaN
    grouped = data.groupby(["annee", "Code métier BMO", "Dept"], as_index=False)[
        ["met", "xmet", "smet"]
    ].sum(min_count=1)
    grouped["difficult_pct"] = 100 * grouped["xmet"] / grouped["met"].where(grouped["met"] > 0)
    grouped["seasonal_pct"] = 100 * grouped["smet"] / grouped["met"].where(grouped["met"] > 0)
    return grouped.rename(columns={"Code métier BMO": "metier_code", "Dept": "departement_code"})


def _departement(commune, label) -> str | None:
    if isinstance(commune, str) and len(commune) == 5:
        return commune[:3] if commune[:2] in ("97", "98") else commune[:2]
    match = re.match(r"^\s*(\d{2,3}|2[AB])\s+-\s", label or "")
    return match[1] if match else None


def read_offers_trend(mirror: Path) -> list[pd.DataFrame]:
    frames = []
    for path in sorted((mirror / OFFRES).glob("*.json*")):
        document = _load(path)
        frame = pd.json_normalize(document["resultats"])
        frame["snapshot_date"] = re.search(r"\d{4}-\d{2}-\d{2}", path.name)[0]
        frames.append(frame)
    return frames


def compute_offers_trend(frames: list[pd.DataFrame]) -> pd.DataFrame:
    data = pd.concat(frames, ignore_index=True)
    data = data.drop_duplicates(["id", "snapshot_date"])
    data["departement_code"] = [
        _departement(c, lbl)
        for c, lbl in zip(data["lieuTravail.commune"], data["lieuTravail.libelle"], strict=True)
    ]
    data["month"] = data["snapshot_date"].str[:7]
    counts = data.groupby(["romeCode", "departement_code", "month"], as_index=False).size()
    return counts.rename(columns={"romeCode": "rome_code", "size": "offers_count"})


def offers_per_jobseeker(mirror: Path) -> pd.DataFrame:
    return compute_offers_per_jobseeker(read_offers_per_jobseeker(mirror))


def bmo_shares(mirror: Path) -> pd.DataFrame:
    return compute_bmo_shares(read_bmo_shares(mirror))


def offers_trend(mirror: Path) -> pd.DataFrame:
    return compute_offers_trend(read_offers_trend(mirror))


# (name, files -> one frame per file, frames -> indicator)
STEPS = (
    ("offers_per_jobseeker", read_offers_per_jobseeker, compute_offers_per_jobseeker),
    ("bmo_shares", read_bmo_shares, compute_bmo_shares),
    ("offers_trend", read_offers_trend, compute_offers_trend),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"indicators": {}}
    summary_path = args.out / "summary.json"
    for name, read, compute in STEPS:
        started = time.monotonic()
        try:
            frames = read(args.mirror)
            computing = time.monotonic()
            table = compute(frames)
            computed = time.monotonic()
            del frames
            table.to_parquet(args.out / f"{name}.parquet", index=False)
        except MemoryError:
            # Nationally the in-memory way runs out of memory: say where, then fail.
            summary["failed"] = {
                "indicator": name,
                "error": "MemoryError",
                "seconds": round(time.monotonic() - started, 2),
            }
            summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
            raise
        summary["indicators"][name] = {
            "rows": len(table),
            "seconds": round(time.monotonic() - started, 2),
            "read_seconds": round(computing - started, 2),
            "compute_seconds": round(computed - computing, 2),
        }
        summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        print(f"pandas baseline: {name}: {len(table)} rows", flush=True)
        del table
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
