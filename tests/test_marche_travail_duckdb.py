"""francetravail_marche_travail through DuckDB: the SQL rules give what the Python rules
(`_text`, NUMBER, `period_start`) give, value for value, in the row order and with the
provenance the Python row builder had."""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from assets.foundation.settings import PROJECT_ROOT
from assets.ingest.landing import LandedFile, land_file
from assets.sources import francetravail_marche_travail as mt

MIRROR = PROJECT_ROOT / "warehouse" / "mirror" / mt.SLUG
ROME_FAP = "synthetic__rechercherActivitesRomeFap.json.gz"

# JSON values a field may hold: numbers written every way, secret tokens, padded text,
# and the odd types (Python's repr of an object is what the Python rules gave).
VALUES = [
    12, 12.0, 12.5, 0.1, 1e-05, 1.5e-07, 123456789.0, 12.50, "12.50", "12.0", -0.0, 0, -3,
    44.0, 75.9, 0.30000000000000004, 1234567890123456.7, 1e16, 1e18, 1e300, 5e-324,
    18446744073709551615, -9223372036854775809, float("nan"), float("inf"), float("-inf"),
    "*", "s", "nd", "n.d.", "secret", "c", "", " ", "  7 ", "\t8\n", "\u00a09\u3000", "-12",
    "+3", ".5", "5.", "1e5", "abc", True, False, {"a": 1}, [1, 2.0], "\u0661\u0662",
]  # fmt: skip
LABELS = [
    "Œnologue", " lead", "trail ", "\u2003em\u2003", "tab\there", 'quote"in', "back\\slash",
    "été", "", "   ", "\u0085x\u0085", "x\u200b", "\u2028y\u2029", "\x1fz\x1c", "é ", "a'b",
    "\U0001f600", 5, 5.5, True, None, ["l"], {"o": None},
]  # fmt: skip
PERIODS = [
    ("TRIMESTRE", "2023T4"), ("TRIMESTRE", "2023t1"), ("TRIMESTRE", "2023T5"),
    ("ANNEE", "2024"), ("ANNEE", " 2021 "), ("ANNEE", 2019), ("ANNEE", 2019.0), (None, "2022"),
    ("MOIS", "2024"), ("mois", "2020"), ("MOIS", "202311"), ("MOIS", "2023M02"),
    ("MOIS", "2023m05"), ("MOIS", "2023-12"), ("MOIS", "2023-1"), ("MOIS", "202313"),
    ("Mois", "202401"), ("TRIMESTRE", "12 mois"), ("ANNEE", "\u0662\u0660\u0662\u0663"),
    ("TRIMESTRE", "\u0662\u0660\u0662\u0663T2"), ("X", ""), ("X", None),
]  # fmt: skip


def _land(tmp_path: Path, name: str, document, *, gz: bool = False, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(document).encode()
    src = tmp_path / "src" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(gzip.compress(data) if gz else data)
    return land_file(
        tmp_path / "l", mt.SLUG, name, src, url=f"https://x/{name}", upstream_url=None, mode="live"
    )


def _rome_fap(tmp_path: Path) -> LandedFile:
    src = MIRROR / ROME_FAP
    return land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="mirror"
    )


def _number(text: str | None) -> str | None:
    return text if text is not None and re.fullmatch(mt.NUMBER, text) else None


def _rows(tmp_path: Path, *documents) -> pd.DataFrame:
    """The staged rows of `documents`, NULL as None (not NaN) for exact comparisons."""
    files = [_land(tmp_path, f"a{i}.json", d) for i, d in enumerate(documents)]
    staged = mt.parse([*files, _rome_fap(tmp_path)], stage_dir=tmp_path / "stage")
    relation = duckdb.sql(f"select * from read_parquet('{staged['indicators'].path}')")
    return pd.DataFrame(relation.fetchall(), columns=relation.columns, dtype=object)


def _same(got, expected) -> bool:
    return got is None if expected is None else got == expected


def test_values_and_texts_follow_the_python_rules(tmp_path: Path):
    entries = []
    for i, value in enumerate(VALUES):
        key = mt.MAIN_VALUES[i % len(mt.MAIN_VALUES)][0]
        entries.append(
            {
                "codeTypeActivite": "ROME",
                "codeActivite": value,
                "libActivite": LABELS[i % len(LABELS)],
                "codeTerritoire": LABELS[(i * 7) % len(LABELS)],
                key: value,
                "valeurSecondairePourcentage": VALUES[(i * 5) % len(VALUES)],
                "valeurSecondaireNombre": value,
            }
        )
    rows = _rows(tmp_path, {"codeIndicateur": "DE_1", "listeValeursParPeriode": entries})
    assert len(rows) == len(VALUES)
    for entry, row in zip(entries, rows.to_dict("records"), strict=True):
        value = entry["codeActivite"]
        expected = {
            "activity_code": mt._text(value),
            "activity_label": mt._text(entry["libActivite"]),
            "territory_code": mt._text(entry["codeTerritoire"]),
            "value": _number(mt._text(value)),
            "value_masked": _number(mt._text(value)) is None,
            "value_pct": _number(mt._text(entry["valeurSecondairePourcentage"])),
            "secondary_count": _number(mt._text(value)),
        }
        for column, want in expected.items():
            assert _same(row[column], want), (value, column, row[column], want)
    # A few spelled out, so that the reference itself is pinned.
    by_code = dict(zip(rows["activity_code"], rows["value"], strict=True))
    assert by_code["12"] == "12" and by_code["12.5"] == "12.5" and by_code["0.1"] == "0.1"
    assert by_code["123456789"] == "123456789" and by_code["12.50"] == "12.50"
    assert by_code["1e-05"] is None and by_code["nan"] is None and by_code["*"] is None
    assert by_code["{'a': 1}"] is None
    assert set(rows["activity_label"].dropna()) >= {"Œnologue", "lead", "trail", "em", "été"}
    assert "tab\there" in set(rows["activity_label"])


def test_period_start_and_updated_at_follow_the_python_rules(tmp_path: Path):
    entries = [
        {
            "codeTypeActivite": "ROME",
            "codeActivite": "A1203",
            "codeTypePeriode": ptype,
            "codePeriode": code,
            "datMaj": ["", "  ", None, "2024-01-01", 5][i % 5],
            "valeurPrincipaleNombre": i,
        }
        for i, (ptype, code) in enumerate(PERIODS)
    ]
    with_date = {
        "codeIndicateur": "DE_1",
        "datMaj": "2025-10-15",
        "listeValeursParPeriode": entries,
    }
    without = {"codeIndicateur": "DE_1", "listeValeursParPeriode": entries}
    rows = _rows(tmp_path, with_date, without)
    for i, row in enumerate(rows.to_dict("records")):
        entry = entries[i % len(entries)]
        ptype, code = mt._text(entry["codeTypePeriode"]), mt._text(entry["codePeriode"])
        assert _same(row["period_start"], mt.period_start(ptype, code)), (ptype, code)
        document = with_date if i < len(entries) else without
        updated = mt._text(entry["datMaj"]) or mt._text(document.get("datMaj"))
        assert _same(row["updated_at"], updated), (entry["datMaj"], row["updated_at"])
    assert "٢٠٢٣-04-01" in set(rows["period_start"])


def test_characteristics_follow_their_entry_in_file_order(tmp_path: Path):
    entry = {
        "codeTypeActivite": "ROME",
        "codeActivite": "A1203",
        "codeTypeTerritoire": "DEP",
        "codeTerritoire": "33",
        "codeTypePeriode": "TRIMESTRE",
        "codePeriode": "2023T4",
        "valeurPrincipaleMontant": 2170.0,
        "valeurSecondaireNombre": 3,
        "listeValeurParCaract": [
            {"codeTypeCaract": "GENRE", "codeCaract": "H", "nombre": None, "montant": 12.0},
            {"codeTypeCaract": "GENRE", "codeCaract": "F", "taux": "*", "pourcentage": 6.5},
            {},
        ],
    }
    plain = {**entry, "codeActivite": "K2204", "listeValeurParCaract": None}
    rows = _rows(
        tmp_path,
        {"codeIndicateur": "SAL_3", "listeValeursParPeriode": [entry, plain, entry]},
        {"codeIndicateur": "DE_1", "listeValeursParPeriode": [plain]},
    )
    assert rows["_row_number"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 1]
    assert rows["_source_file"].tolist() == ["a0.json"] * 9 + ["a1.json"]
    assert rows["characteristic_code"].tolist()[:5] == [None, "H", "F", None, None]
    assert rows["value_kind"].tolist()[:5] == ["montant", "montant", "taux", None, "montant"]
    assert rows["value"].tolist()[:4] == ["2170", "12", None, None]
    assert rows["value_masked"].tolist()[:4] == [False, False, True, True]
    assert rows["value_pct"].tolist()[:3] == [None, None, "6.5"]
    assert rows["secondary_count"].tolist()[:4] == ["3", None, None, None]
    assert set(rows.loc[1:3, "activity_code"]) == {"A1203"}  # inherited from the entry
    assert rows.loc[4, "activity_code"] == "K2204"


def test_types_and_provenance_are_those_of_add_provenance(tmp_path: Path):
    document = {"codeIndicateur": "DE_1", "listeValeursParPeriode": [{"valeurPrincipaleNombre": 1}]}
    landed = _land(tmp_path, "synthetic__x.json", document)
    staged = mt.parse([landed, _rome_fap(tmp_path)], stage_dir=tmp_path / "stage")["indicators"]
    assert staged.rows == 1 and Path(staged.path).parent == tmp_path / "stage"
    described = duckdb.sql(f"describe select * from read_parquet('{staged.path}')").fetchall()
    types = {name: kind for name, kind, *_ in described}
    provenance = ("_source_file", "_source_url", "_fetched_at", "_sha256", "_row_number")
    assert list(types) == [*mt.INDICATOR_COLUMNS, *provenance]
    special = {"value_masked": "BOOLEAN", "synthetic": "BOOLEAN", "_fetched_at": "TIMESTAMP"}
    special["_row_number"] = "BIGINT"
    assert types == {name: special.get(name, "VARCHAR") for name in types}
    row = staged.frame.iloc[0]
    assert row["synthetic"] and row["_sha256"] == landed.sha256
    assert row["_source_url"] == landed.url and row["_source_file"] == "synthetic__x.json"
    assert row["_fetched_at"] == pd.Timestamp(landed.fetched_at).tz_convert("UTC").tz_localize(None)
    assert not list((tmp_path / "stage").glob(".duckdb-*"))  # DuckDB's spill area is gone


def test_gzip_is_told_by_its_bytes_and_a_file_listed_twice_counts_twice(tmp_path: Path):
    document = {"codeIndicateur": "DE_1", "listeValeursParPeriode": [{"valeurPrincipaleNombre": 7}]}
    gz_named_plain = _land(tmp_path, "a.json", document, gz=True)
    plain_named_gz = _land(tmp_path, "b.json.gz", {**document, "codeIndicateur": "OFF_1"})
    bom = _land(tmp_path, "c.json", None, raw=b"\xef\xbb\xbf" + json.dumps(document).encode())
    files = [gz_named_plain, plain_named_gz, gz_named_plain, bom, _rome_fap(tmp_path)]
    parsed = mt.parse(files, stage_dir=tmp_path / "stage")
    frame = parsed["indicators"].frame
    assert frame["_source_file"].tolist() == ["a.json", "b.json.gz", "a.json", "c.json"]
    assert frame["indicator_code"].tolist() == ["DE_1", "OFF_1", "DE_1", "DE_1"]
    assert parsed["indicators"].source_files == tuple(files[:4])
    assert len(parsed["rome_fap"].frame) == 1_747


def test_answers_without_rows_still_count_as_indicators(tmp_path: Path):
    empty = _land(tmp_path, "empty.json", {"codeIndicateur": "DE_1", "listeValeursParPeriode": []})
    parsed = mt.parse([empty, _rome_fap(tmp_path)], stage_dir=tmp_path / "stage")
    assert parsed["indicators"].rows == 0 and parsed["indicators"].frame.empty
    assert parsed["indicators"].source_files == (empty,)


@pytest.mark.parametrize("value", [0.1, 1e-05, 12.5, 2.0**60, 1e17 + 0.5, math.pi])
def test_float_text_is_python_repr(tmp_path: Path, value):
    document = {"codeIndicateur": "DE_1", "listeValeursParPeriode": [{"libActivite": value}]}
    rows = _rows(tmp_path, document)
    assert rows["activity_label"].tolist() == [mt._text(value)]


def test_text_fields_read_as_varchar_unless_python_would_print_them_otherwise(
    tmp_path: Path, caplog
):
    """Texts are read as VARCHAR (the fast read) and follow `_text`; a text that may be a
    float, an object or an array sends the answers to the JSON read, same result."""
    plain = [v for v in LABELS if not isinstance(v, float | list | dict)]
    plain += [7, -3, 18446744073709551616, "-0", "12", "2023T4", "Infinity!", "x[", "y{"]
    odd = [12.5, 0.1, 1.5e-07, 12.0, 1e16, -0.0, float("nan"), float("-inf"), [1, 2.0]]
    odd += [{"o": None}, "12.0", "1e+16", "[x]", "{y}", "NaN", "["]
    for name, labels, read_again in (("plain", plain, False), ("odd", plain + odd, True)):
        caplog.clear()
        (tmp_path / name).mkdir()
        entries = [
            {"codeTypeActivite": "ROME", "codeActivite": "A1203", "libActivite": label,
             "codePeriode": label, "valeurPrincipaleNombre": 1}
            for label in labels
        ]  # fmt: skip
        with caplog.at_level("DEBUG", logger=mt.__name__):
            rows = _rows(
                tmp_path / name, {"codeIndicateur": "DE_1", "listeValeursParPeriode": entries}
            )
        assert ("read as JSON" in caplog.text) is read_again, name
        assert list(rows["activity_label"]) == [mt._text(v) for v in labels]
        assert list(rows["period_code"]) == [mt._text(v) for v in labels]
