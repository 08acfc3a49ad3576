"""The same headline indicators as `pandas_baseline`, the way a polars user would write them.

The second comparison point of the benchmark (issue 19), not part of tremplin. It computes
the three tables of `pandas_baseline`, with the same rules (secret cells stay missing,
duplicates of an offer in one snapshot count once), but:

* each input file is cut down to the rows and columns the indicator needs as soon as it
  is read, so memory holds the useful part of the inputs, not all of it;
* the joins and aggregations are one lazy query per indicator, collected with polars'
  streaming engine on every core.

The JSON documents are read with the standard library, as in the pandas baseline: polars
has no reader for a JSON object holding the rows in one of its keys.

`python -m pipelines.bench.polars_baseline --mirror DIR --out DIR` writes the three tables
as Parquet and `summary.json` (row counts, seconds per indicator), like the pandas one.
The reading time counts each file's cut (done as it is read); the computing time the query
over the cut frames.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

MARCHE = "francetravail_marche_travail"
OFFRES = "francetravail_offres"
BMO = "francetravail_bmo"

_MARCHE_SCHEMA = {
    "codeTypeTerritoire": pl.String,
    "codeTerritoire": pl.String,
    "codeActivite": pl.String,
    "codePeriode": pl.String,
    "valeurPrincipaleNombre": pl.Float64,
}
_OFFER_SCHEMA = {
    "id": pl.String,
    "romeCode": pl.String,
    "lieuTravail": pl.Struct({"commune": pl.String, "libelle": pl.String}),
}


def _load(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return json.load(fh)


def _collect(query: pl.LazyFrame) -> pl.DataFrame:
    return query.collect(engine="streaming")


def read_offers_per_jobseeker(mirror: Path) -> list[pl.DataFrame]:
    frames = []
    for path in sorted((mirror / MARCHE).glob("*stat-*.json*")):
        document = _load(path)
        indicator = document.get("codeIndicateur")
        if indicator not in ("DE_1", "OFF_1"):
            continue
        frame = pl.from_dicts(
            document["listeValeursParPeriode"], schema=_MARCHE_SCHEMA, strict=False
        )
        frames.append(
            frame.lazy()
            .filter(pl.col("codeTypeTerritoire") == "DEP")
            .select(
                pl.lit(indicator).alias("indicator"),
                pl.col("codeActivite").alias("rome_code"),
                pl.col("codeTerritoire").alias("departement_code"),
                pl.col("codePeriode").alias("quarter"),
                pl.col("valeurPrincipaleNombre").alias("value"),
            )
            .collect()
        )
        del document
    return frames


def compute_offers_per_jobseeker(frames: list[pl.DataFrame]) -> pl.DataFrame:
    data = pl.concat(frames).lazy()
    keys = ["rome_code", "departement_code", "quarter"]
    seekers = data.filter(pl.col("indicator") == "DE_1").select(
        *keys, pl.col("value").alias("value_seekers")
    )
    offers = data.filter(pl.col("indicator") == "OFF_1").select(
        *keys, pl.col("value").alias("value_offers")
    )
    return _collect(
        seekers.join(offers, on=keys, how="inner").with_columns(
            (
                10
                * pl.col("value_offers")
                / pl.when(pl.col("value_seekers") > 0).then(pl.col("value_seekers"))
            ).alias("offers_per_10_jobseekers")
        )
    )


def _sum_or_null(column: str) -> pl.Expr:
    """pandas' `sum(min_count=1)`: a group with no published value stays missing."""
    return pl.when(pl.col(column).count() > 0).then(pl.col(column).sum()).alias(column)


def _text(value) -> str | None:
    """A cell as text, the way pandas' `read_excel(dtype=str)` gives it (2024.0 -> '2024')."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_data_sheet(path: Path) -> pl.DataFrame:
    """The open-data sheet of a BMO workbook, every cell as text, read with calamine (polars'
    own `read_excel` needs the fastexcel package for that engine)."""
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    name = next(n for n in workbook.sheet_names if "open_data" in n.lower())
    header, *rows = workbook.get_sheet_by_name(name).to_python()
    columns = [re.sub(r"^(NOM)?BE\d+$", r"\1BE", str(c)) for c in header]
    return pl.DataFrame(
        [[_text(v) for v in row] for row in rows],
        schema=dict.fromkeys(columns, pl.String),
        orient="row",
    )


def read_bmo_shares(mirror: Path) -> list[pl.DataFrame]:
    frames = []
    for path in sorted((mirror / BMO).glob("Base_open_data*.xls*")):
        frame = _read_data_sheet(path)
        frames.append(
            frame.lazy()
            .select(
                pl.col("annee"),
                pl.col("Code métier BMO").alias("metier_code"),
                pl.col("Dept").alias("departement_code"),
                *(pl.col(c).cast(pl.Float64, strict=False) for c in ("met", "xmet", "smet")),
            )
            .collect()
        )
    return frames


def compute_bmo_shares(frames: list[pl.DataFrame]) -> pl.DataFrame:
    keys = ["annee", "metier_code", "departement_code"]
    share = 100 / pl.when(pl.col("met") > 0).then(pl.col("met"))
    return _collect(
        pl.concat(frames)
        .lazy()
        .drop_nulls(keys)  # pandas' groupby drops missing keys
        .group_by(keys)
        .agg(_sum_or_null("met"), _sum_or_null("xmet"), _sum_or_null("smet"))
        .with_columns(
            (pl.col("xmet") * share).alias("difficult_pct"),
            (pl.col("smet") * share).alias("seasonal_pct"),
        )
    )


def _departement() -> pl.Expr:
    commune = pl.col("commune")
    from_label = pl.col("libelle").str.extract(r"^\s*(\d{2,3}|2[AB])\s+-\s", 1)
    return (
        pl.when(commune.str.len_chars() == 5)
        .then(
            pl.when(commune.str.slice(0, 2).is_in(["97", "98"]))
            .then(commune.str.slice(0, 3))
            .otherwise(commune.str.slice(0, 2))
        )
        .otherwise(from_label)
        .alias("departement_code")
    )


def read_offers_trend(mirror: Path) -> list[pl.DataFrame]:
    frames = []
    for path in sorted((mirror / OFFRES).glob("*.json*")):
        document = _load(path)
        snapshot = re.search(r"\d{4}-\d{2}-\d{2}", path.name)[0]
        frame = pl.from_dicts(document["resultats"], schema=_OFFER_SCHEMA, strict=False)
        frames.append(
            frame.lazy()
            .unnest("lieuTravail")
            .select(
                "id",
                pl.col("romeCode").alias("rome_code"),
                _departement(),
                pl.lit(snapshot).alias("snapshot_date"),
            )
            .collect()
        )
        del document
    return frames


def compute_offers_trend(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return _collect(
        pl.concat(frames)
        .lazy()
        .unique(["id", "snapshot_date"], keep="first", maintain_order=True)
        .with_columns(pl.col("snapshot_date").str.slice(0, 7).alias("month"))
        .drop_nulls(["rome_code", "departement_code", "month"])
        .group_by(["rome_code", "departement_code", "month"])
        .agg(pl.len().cast(pl.Int64).alias("offers_count"))
    )


def offers_per_jobseeker(mirror: Path) -> pl.DataFrame:
    return compute_offers_per_jobseeker(read_offers_per_jobseeker(mirror))


def bmo_shares(mirror: Path) -> pl.DataFrame:
    return compute_bmo_shares(read_bmo_shares(mirror))


def offers_trend(mirror: Path) -> pl.DataFrame:
    return compute_offers_trend(read_offers_trend(mirror))


# (name, files -> one cut frame per file, frames -> indicator)
STEPS = (
    ("offers_per_jobseeker", read_offers_per_jobseeker, compute_offers_per_jobseeker),
    ("bmo_shares", read_bmo_shares, compute_bmo_shares),
    ("offers_trend", read_offers_trend, compute_offers_trend),
)
INDICATORS = (
    ("offers_per_jobseeker", offers_per_jobseeker),
    ("bmo_shares", bmo_shares),
    ("offers_trend", offers_trend),
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
            table.write_parquet(args.out / f"{name}.parquet")
        except MemoryError:
            summary["failed"] = {
                "indicator": name,
                "error": "MemoryError",
                "seconds": round(time.monotonic() - started, 2),
            }
            summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
            raise
        summary["indicators"][name] = {
            "rows": table.height,
            "seconds": round(time.monotonic() - started, 2),
            "read_seconds": round(computing - started, 2),
            "compute_seconds": round(computed - computing, 2),
        }
        summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        print(f"polars baseline: {name}: {table.height} rows", flush=True)
        del table
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
