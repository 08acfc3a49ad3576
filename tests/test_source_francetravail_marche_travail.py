"""francetravail_marche_travail: parser on the synthetic mirror and spec-shaped answers,
contracts, drift, and the live fetch against the fake API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from api_server import CLIENT_ID, CLIENT_SECRET, fake_api

from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.francetravail_api import Credentials, FranceTravailClient
from assets.ingest.landing import LandedFile, current_files, land_file
from assets.ingest.raw import ParseError
from assets.ingest.validation import validate_frame
from assets.sources import francetravail_marche_travail as mt

MIRROR = PROJECT_ROOT / "warehouse" / "mirror" / mt.SLUG


def land_dir(directory: Path, landing: Path, names=None) -> list[LandedFile]:
    paths = sorted(p for p in directory.iterdir() if p.name.endswith((".json", ".json.gz")))
    return [
        land_file(landing, mt.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
        if names is None or p.name in names
    ]


def write_json(path: Path, document) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


# An answer built from the spec's own examples (IndicateurRetour, ValeursParPeriode,
# ValeursParCaracteristique), plus a secret cell and a cell broken down by gender.
SPEC_ANSWER = {
    "datMaj": "2024-04-21T17:13:44+02:00",
    "codeIndicateur": "DE_1",
    "codeFamille": "DEMANDEURS",
    "libIndicateur": "Nombre et % de DE par catégories x caractéristiques",
    "libTerritoire": "NOUVELLE-AQUITAINE",
    "listeValeursParPeriode": [
        {
            "datMaj": "2024-04-21T17:13:44+02:00",
            "codeTypeTerritoire": "REG",
            "codeTerritoire": "75",
            "libTerritoire": "NOUVELLE-AQUITAINE",
            "codeTypeActivite": "ROME",
            "codeActivite": "A1203",
            "libActivite": "Aménagement et entretien des espaces verts",
            "codeNomenclature": "A",
            "libNomenclature": "Demandeurs d'Emploi de catégorie A",
            "codeTypePeriode": "TRIMESTRE",
            "codePeriode": "2023T4",
            "libPeriode": "4ème trimestre 2023",
            "valeurPrincipaleNom": "Nombre de demandeurs d'emploi",
            "valeurPrincipaleNombre": 4750,
            "valeurSecondairePourcentage": 54,
            "listeValeurParCaract": [
                {
                    "codeTypeCaract": "GENRE",
                    "codeCaract": "H",
                    "libCaract": "Homme",
                    "nombre": 4470,
                    "pourcentage": 94,
                },
                {
                    "codeTypeCaract": "GENRE",
                    "codeCaract": "F",
                    "libCaract": "Femme",
                    "pourcentage": 6,
                },
            ],
        },
        {
            "codeTypeTerritoire": "DEP",
            "codeTerritoire": "33",
            "codeTypeActivite": "ROME",
            "codeActivite": "A1203",
            "codeNomenclature": "A",
            "codeTypePeriode": "TRIMESTRE",
            "codePeriode": "2023T4",
            "valeurPrincipaleNom": "Nombre de demandeurs d'emploi",
        },
    ],
}


def test_spec_shaped_answer_long_form_with_masked_values(tmp_path: Path):
    src = write_json(tmp_path / "stat-demandeurs__REG-75__ROME-A1203.json", SPEC_ANSWER)
    landed = land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="live"
    )
    frame = mt.parse(
        [
            landed,
            *land_dir(MIRROR, tmp_path / "l", {"synthetic__rechercherActivitesRomeFap.json.gz"}),
        ]
    )["indicators"].frame
    assert len(frame) == 4
    total, men, women, secret = frame.to_dict("records")
    assert total["value"] == "4750" and total["value_kind"] == "nombre"
    assert pd.isna(total["characteristic_type"])
    assert total["period_start"] == "2023-10-01" and total["value_pct"] == "54"
    assert (men["characteristic_code"], men["value"], men["value_masked"]) == ("H", "4470", False)
    # A characteristic without its number, and a cell without its value: NULL + flagged.
    assert pd.isna(women["value"])
    assert women["value_masked"] and women["value_pct"] == "6"
    assert secret["value_masked"] and secret["territory_code"] == "33"
    assert not frame["synthetic"].any()
    assert set(frame["_source_file"]) == {src.name}


def test_mirror_parses_and_meets_the_contracts(tmp_path: Path):
    tables = mt.parse(land_dir(MIRROR, tmp_path))
    ind, fap = tables["indicators"].frame, tables["rome_fap"].frame
    assert len(ind) == 128_430 and len(fap) == 1_747
    assert ind["synthetic"].all() and fap["synthetic"].all()
    assert set(ind["indicator_code"]) == {"DE_1", "OFF_1", "EMB_1", "PERSP_2", "SAL_3"}
    totals = ind[ind["characteristic_type"].isna()]
    assert set(totals["territory_type"]) == {"NAT", "REG", "DEP"}
    deps = set(totals.loc[totals["territory_type"] == "DEP", "territory_code"])
    assert len(deps) == 101 and {"01", "2A", "2B", "971", "976"} <= deps
    # Secret cells: NULL and flagged, never 0; and only they are NULL.
    masked = ind["value_masked"]
    assert masked.sum() > 0
    assert ind.loc[masked, "value"].isna().all() and ind.loc[~masked, "value"].notna().all()
    assert set(ind["characteristic_type"].dropna()) == {"GENRE", "TYPECTR"}
    assert set(ind.loc[ind["indicator_code"] == "SAL_3", "value_kind"].dropna()) == {"montant"}
    assert set(ind.loc[ind["indicator_code"] == "PERSP_2", "value_kind"].dropna()) == {"taux"}
    # Régions are the sums of their départements (DE_1, one quarter, one ROME).
    cell = totals[
        (totals.indicator_code == "DE_1")
        & (totals.period_code == "2025T2")
        & (totals.activity_code == totals.activity_code.iloc[0])
    ]
    nat = cell.loc[cell.territory_type == "NAT", "value"].astype(int).sum()
    regs = cell.loc[cell.territory_type == "REG", "value"].astype(int).sum()
    assert nat == regs > 0
    for table in mt.TABLES:
        report = validate_frame(tables[table].frame, mt.CONTRACTS[table], slug=mt.SLUG, table=table)
        assert report.success, report.describe()


def test_contract_names_column_and_samples_on_bad_codes(tmp_path: Path):
    src = write_json(
        tmp_path / "bad.json",
        {
            **SPEC_ANSWER,
            "listeValeursParPeriode": [
                {
                    **SPEC_ANSWER["listeValeursParPeriode"][0],
                    "codeActivite": "A12",
                    "codeTerritoire": "7",
                }
            ],
        },
    )
    landed = land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="live"
    )
    frame = mt.parse(
        [
            landed,
            *land_dir(MIRROR, tmp_path / "l", {"synthetic__rechercherActivitesRomeFap.json.gz"}),
        ]
    )["indicators"].frame
    report = validate_frame(
        frame,
        mt.CONTRACTS["indicators"],
        slug=mt.SLUG,
        table="indicators",
        source_files=("bad.json",),
    )
    assert not report.success
    text = report.describe()
    assert "bad.json" in text and "'activity_code'" in text and "A12" in text
    assert "'territory_code'" in text


def test_drift_added_fields_and_renamed_file_still_parse(tmp_path: Path):
    entry = {**SPEC_ANSWER["listeValeursParPeriode"][0], "nouveauChamp": "x"}
    doc = {**SPEC_ANSWER, "champAjoute": 1, "listeValeursParPeriode": [entry]}
    src = write_json(tmp_path / "renamed-by-someone.json", doc)
    landed = land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="live"
    )
    frame = mt.parse(
        [
            landed,
            *land_dir(MIRROR, tmp_path / "l", {"synthetic__rechercherActivitesRomeFap.json.gz"}),
        ]
    )["indicators"].frame
    assert frame["value"].tolist()[0] == "4750"


ENTRY = SPEC_ANSWER["listeValeursParPeriode"][1]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"listeValeursParPeriode": []}, "no codeIndicateur"),
        ({"datMaj": "x", "listeValeursParPeriode": [ENTRY]}, "no codeIndicateur.*'datMaj'"),
        ({"codeIndicateur": " ", "listeValeursParPeriode": [ENTRY]}, "no codeIndicateur"),
        ({"codeIndicateur": "DE_1", "listeValeursParPeriode": {}}, "is not a list"),
        ({"codeIndicateur": "DE_1", "listeValeursParPeriode": "x"}, "is not a list"),
        ({"codeIndicateur": "DE_1", "listeValeursParPeriode": None}, "is not a list"),
        (
            {"codeIndicateur": "DE_1", "listeValeursParPeriode": [ENTRY, 1]},
            r"listeValeursParPeriode\[1\] is not an object",
        ),
        (
            {"codeIndicateur": "DE_1", "listeValeursParPeriode": [ENTRY, None]},
            r"listeValeursParPeriode\[1\] is not an object",
        ),
        (
            {
                "codeIndicateur": "DE_1",
                "listeValeursParPeriode": [{**ENTRY, "listeValeurParCaract": {"a": 1}}],
            },
            r"listeValeursParPeriode\[0\]\.listeValeurParCaract is not a list",
        ),
        (
            {
                "codeIndicateur": "DE_1",
                "listeValeursParPeriode": [{**ENTRY, "listeValeurParCaract": [{}, None]}],
            },
            r"listeValeurParCaract\[1\] is not an object",
        ),
        (
            {
                "codeIndicateur": "DE_1",
                "listeValeursParPeriode": [{**ENTRY, "listeValeurParCaract": ["H"]}],
            },
            r"listeValeurParCaract\[0\] is not an object",
        ),
        ({"resultats": []}, "neither an IndicateurRetour"),
        ([SPEC_ANSWER], "neither an IndicateurRetour.*found list"),
    ],
)
def test_broken_answers_raise_naming_the_file(tmp_path: Path, document, message):
    src = write_json(tmp_path / "odd.json", document)
    landed = land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="live"
    )
    good = land_dir(MIRROR, tmp_path / "l", {"synthetic__stat-demandeurs__NAT__2024.json.gz"})
    with pytest.raises(ParseError, match=message) as err:
        mt.parse([*good, landed], stage_dir=tmp_path / "stage")
    assert "odd.json" in str(err.value) and mt.SLUG in str(err.value)
    assert not list((tmp_path / "stage").iterdir())  # nothing staged is left behind


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"codeIndicateur": ', "is not a JSON document"),
        (b"", "is not a JSON document"),
        (json.dumps(SPEC_ANSWER).encode() * 2, "is not a JSON document.*Extra data"),
        (b'{"codeIndicateur": "D\xe9", "listeValeursParPeriode": []}', "is not a JSON document"),
        (gzip.compress(json.dumps(SPEC_ANSWER).encode())[:-12], "broken gzip file"),
    ],
)
def test_unreadable_files_raise_naming_the_file(tmp_path: Path, data, message):
    src = tmp_path / "odd.json"
    src.write_bytes(data)
    landed = land_file(
        tmp_path / "l", mt.SLUG, src.name, src, url="x", upstream_url=None, mode="live"
    )
    with pytest.raises(ParseError, match=message) as err:
        mt.parse([landed], stage_dir=tmp_path / "stage")
    assert "odd.json" in str(err.value) and mt.SLUG in str(err.value)


def test_missing_table_raises(tmp_path: Path):
    files = land_dir(MIRROR, tmp_path, {"synthetic__rechercherActivitesRomeFap.json.gz"})
    with pytest.raises(ParseError, match="no landed file holds the indicators"):
        mt.parse(files)


@pytest.mark.parametrize(
    ("ptype", "code", "start"),
    [
        ("TRIMESTRE", "2023T4", "2023-10-01"),
        ("ANNEE", "2024", "2024-01-01"),
        ("MOIS", "202311", "2023-11-01"),
        ("MOIS", "2023M02", "2023-02-01"),
        ("TRIMESTRE", "12 mois", None),
    ],
)
def test_period_start(ptype, code, start):
    assert mt.period_start(ptype, code) == start


def test_spec_declares_api_and_credentials():
    assert mt.SPEC.synthetic is True
    assert mt.SPEC.requires_env == ("FRANCE_TRAVAIL_CLIENT_ID", "FRANCE_TRAVAIL_CLIENT_SECRET")
    assert {"api.francetravail.io", "entreprise.francetravail.fr"} <= mt.SPEC.allowed_hosts


def test_live_fetch_lands_each_answer_and_parses(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    settings = get_settings()
    scope = mt.LiveScope(
        rome_codes=("A1203", "K2204"),
        territories=(("NAT", "FR"), ("DEP", "33")),
    )
    with fake_api() as api:
        client = FranceTravailClient(
            Credentials(CLIENT_ID, CLIENT_SECRET),
            ("s",),
            slug=mt.SLUG,
            token_url=api.token_url,
            allowed_hosts=("127.0.0.1",),
            sleep=lambda s: None,
        )
        api.fail_next("/stats/v1/indicateur/stat-offres", 429, {"Retry-After": "1"})
        report = mt.fetch(mt.SPEC, settings, client=client, scope=scope, base_url=api.url("/stats"))
        posts = [r for r in api.seen("/stats/v1/indicateur/stat-") if r.method == "POST"]
        sal = api.seen("/stats/v1/indicateur/salaire-rome-fap")
    assert report.mode == "live" and len(report.files) == 1 + 5 * 2 * 2
    assert json.loads(posts[0].body)["dernierePeriode"] is True
    assert sal[0].path.endswith("/NAT/FR") and sal[0].query == {"codeRome": "A1203"}
    files = current_files(settings.landing_dir, mt.SLUG)
    assert {f.file_name for f in files} == {f.file_name for f in report.files}
    assert "stat-offres__DEP-33__ROME-K2204.json" in {f.file_name for f in files}
    tables = mt.parse(files)
    ind = tables["indicators"].frame
    assert len(ind) == 20 and not ind["synthetic"].any()
    assert set(ind["indicator_code"]) == set(mt.INDICATORS)
    assert (ind["value"] == "42").all()


def test_mirror_mode_fetch_lands_the_mirror(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.delenv("TREMPLIN_MODE", raising=False)
    monkeypatch.delenv("TREMPLIN_MIRROR", raising=False)
    settings = dataclasses.replace(get_settings(), mode="mirror")
    report = mt.fetch(mt.SPEC, settings)
    assert len(report.files) == 28
    assert all(f.file_name.startswith("synthetic__") for f in report.files)
    assert datetime.fromisoformat(
        report.files[0].fetched_at.replace("Z", "+00:00")
    ) <= datetime.now(UTC)
