"""Parsers and ingestion contracts of the two referential sources, on small extracts of
the real published files (tests/fixtures/<slug>/, same bytes and format as published)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, snake_case
from assets.ingest.validation import validate_frame
from assets.sources import etalab_decoupage_administratif as etalab
from assets.sources import francetravail_rome as rome

FIXTURES = Path(__file__).parent / "fixtures"


def land_dir(src_dir: Path, landing: Path, slug: str):
    return [
        land_file(landing, slug, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in sorted(src_dir.iterdir())
        if p.is_file()
    ]


@pytest.fixture
def rome_tables(tmp_path):
    return rome.parse(land_dir(FIXTURES / rome.SLUG, tmp_path, rome.SLUG))


def test_rome_codes_stay_text_and_version_is_on_every_row(rome_tables):
    fiches = rome_tables["referentiel_code_rome"].frame
    assert set(fiches["code_rome"]) >= {"A1101", "A1102", "K2111"}
    assert fiches.loc[fiches["code_rome"] == "A1102", "code_rome_parent"].item() == "A1101"
    for parsed in rome_tables.values():
        assert set(parsed.frame["rome_version"]) <= {"4.60"}
    # Ogr codes are identifiers: kept as text, exactly as published.
    assert fiches["code_ogr"].map(type).eq(str).all()


def test_rome_latin1_file_is_decoded(rome_tables):
    naf = rome_tables["arborescence_secteur_naf"].frame
    labels = set(naf["libelle_rome"])
    assert "Jardinier / Jardinière paysagiste" in labels
    assert not any("\ufffd" in label for label in labels)


def test_rome_header_only_file_is_an_empty_table(rome_tables):
    empty = rome_tables["type_referentiel"].frame
    assert len(empty) == 0
    assert {"code_type_referentiel", "libelle_type_referentiel"} <= set(empty.columns)


def test_rome_doubled_apostrophes_and_quotes(rome_tables):
    texts = rome_tables["texte"].frame["libelle_texte"].tolist()
    assert any("l'entretien" in t for t in texts)
    assert not any("''" in t for t in texts)
    # A doubled double-quote inside a quoted CSV field is one literal quote.
    assert any('"Tracteurs et machines agricoles"' in t for t in texts)


def test_rome_domain_typo_is_normalised(rome_tables):
    columns = set(rome_tables["cr_gd_dp"].frame.columns)
    assert "code_domaine_professionnel" in columns
    assert "code_domaine_professionel" not in columns


def test_rome_provenance_columns(rome_tables):
    frame = rome_tables["referentiel_code_rome"].frame
    assert frame["_row_number"].tolist() == list(range(1, len(frame) + 1))
    assert frame["_source_file"].eq("unix_referentiel_code_rome_v460_utf8.csv").all()
    assert frame["_sha256"].str.fullmatch("[0-9a-f]{64}").all()


def test_rome_version_from_file_name():
    assert rome.rome_version("unix_texte_v460_utf8.csv") == "4.60"
    assert rome.rome_version("unix_texte_v461_utf8.csv") == "4.61"
    with pytest.raises(ParseError, match="ROME version"):
        rome.rome_version("texte.csv")


def test_rome_reads_members_of_the_published_zip(tmp_path):
    archive = tmp_path / "src" / "RefRomeCsv.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for p in (FIXTURES / rome.SLUG).iterdir():
            zf.write(p, f"RefRomeCsv/{p.name}")
    landed = land_dir(archive.parent, tmp_path / "landing", rome.SLUG)
    tables = rome.parse(landed)
    assert len(tables["referentiel_code_rome"].frame) == 6
    assert tables["texte"].frame["_source_file"].iloc[0].startswith("RefRomeCsv.zip!")


def test_rome_missing_file_is_named(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in (FIXTURES / rome.SLUG).iterdir():
        if "rubrique_mobilite" not in p.name:
            (src / p.name).write_bytes(p.read_bytes())
    with pytest.raises(ParseError, match="unix_rubrique_mobilite_v<version>_utf8.csv"):
        rome.parse(land_dir(src, tmp_path / "landing", rome.SLUG))


def test_rome_contract_names_file_column_and_samples(rome_tables):
    parsed = rome_tables["referentiel_code_rome"]
    frame = parsed.frame.drop(columns=["code_rome"])
    report = validate_frame(
        frame,
        rome.CONTRACTS["referentiel_code_rome"],
        slug=rome.SLUG,
        table="referentiel_code_rome",
        source_files=("unix_referentiel_code_rome_v460_utf8.csv",),
    )
    assert not report.success
    text = report.describe()
    assert "unix_referentiel_code_rome_v460_utf8.csv" in text
    assert "code_rome" in text and "missing column" in text


def test_rome_contract_reports_bad_codes_with_samples(rome_tables):
    frame = rome_tables["referentiel_code_rome"].frame.copy()
    frame.loc[0, "code_rome"] = "Z9999"
    frame.loc[1, "code_rome_parent"] = "a11"
    contract = rome.CONTRACTS["referentiel_code_rome"]
    report = validate_frame(frame, contract, slug=rome.SLUG, table="referentiel_code_rome")
    columns = {f.column for f in report.failures}
    assert {"code_rome", "code_rome_parent"} <= columns
    samples = {s for f in report.failures for s in f.samples}
    assert {"Z9999", "a11"} <= samples


def test_rome_contract_passes_on_real_extract_except_row_floor(rome_tables):
    for table, parsed in rome_tables.items():
        report = validate_frame(parsed.frame, rome.CONTRACTS[table], slug=rome.SLUG, table=table)
        kinds = {f.expectation for f in report.failures}
        assert kinds <= {"expect_table_row_count_to_be_between"}, report.describe()


@pytest.fixture
def geo_tables(tmp_path):
    return etalab.parse(land_dir(FIXTURES / etalab.SLUG, tmp_path, etalab.SLUG))


def test_etalab_codes_are_text(geo_tables):
    deps = geo_tables["departements"].frame
    assert deps["code"].tolist() == ["01", "2A", "2B", "75", "971", "976", "978"]
    assert deps.loc[deps["code"] == "2A", "chef_lieu"].item() == "2A004"
    assert deps.loc[deps["code"] == "971", "region"].item() == "01"
    assert {"chef_lieu", "type_liaison"} <= set(deps.columns)
    assert deps.loc[deps["code"] == "978", "zone"].item() == "com"


def test_etalab_contract_on_fixture(geo_tables):
    report = validate_frame(
        geo_tables["departements"].frame,
        etalab.CONTRACTS["departements"],
        slug=etalab.SLUG,
        table="departements",
    )
    # The extract has 7 rows: only the floor of 101 départements fails.
    assert [f.expectation for f in report.failures] == ["expect_table_row_count_to_be_between"]


def test_etalab_bad_json_is_named(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "departements.json").write_text('{"code": "01"}')
    (src / "regions.json").write_bytes((FIXTURES / etalab.SLUG / "regions.json").read_bytes())
    with pytest.raises(ParseError, match="departements.json must be a JSON array"):
        etalab.parse(land_dir(src, tmp_path / "landing", etalab.SLUG))
    (src / "departements.json").write_bytes(b'[{"code": "01"')
    with pytest.raises(ParseError, match="departements.json is not valid UTF-8 JSON"):
        etalab.parse(land_dir(src, tmp_path / "landing2", etalab.SLUG))


def test_etalab_zone_outside_contract_is_reported(tmp_path):
    records = json.loads((FIXTURES / etalab.SLUG / "departements.json").read_text())
    records[0]["zone"] = "outremer"
    records[1]["code"] = "2C"
    frame = etalab.parse_table(
        "departements",
        json.dumps(records).encode(),
        "departements.json",
        land_dir(FIXTURES / etalab.SLUG, tmp_path, etalab.SLUG)[0],
    ).frame
    report = validate_frame(frame, etalab.CONTRACTS["departements"], slug="s", table="t")
    failed = {f.column for f in report.failures}
    assert {"zone", "code"} <= failed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("chefLieu", "chef_lieu"), ("Code métier BMO", "code_metier_bmo"), ("BE24", "be24")],
)
def test_snake_case(raw, expected):
    assert snake_case(raw) == expected


def test_csv_reader_keeps_leading_zeros_and_nulls():
    from assets.ingest.raw import read_csv_text

    frame = read_csv_text('"code","v"\n"01",""\n"2A","x"\n', slug="s", file_name="f.csv")
    assert frame["code"].tolist() == ["01", "2A"]
    assert frame["v"].isna().tolist() == [True, False]
    with pytest.raises(ParseError, match="f.csv is empty"):
        read_csv_text("", slug="s", file_name="f.csv")


def test_utf16_text_is_refused_with_the_encoding_named():
    from assets.ingest.raw import decode_text

    with pytest.raises(ParseError, match="f.csv looks like UTF-16"):
        decode_text('"code"\n"01"\n'.encode("utf-16"), slug="s", file_name="f.csv")
    assert decode_text("é".encode("cp1252"), slug="s", file_name="f.csv") == "é"
