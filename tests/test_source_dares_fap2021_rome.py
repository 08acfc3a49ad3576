"""DARES FAP-2021 <-> ROME crosswalk and FAP-2021 tree: parsers, contracts, real files, staging.

The CSV fixture in tests/fixtures/dares_fap2021_rome/ is a line extract of the published
file with its bytes unchanged (Windows-1252 with `’` and `–`, CRLF, trailing no-break
spaces). The tree workbook is built here with openpyxl in the published layout (a read-me
sheet, one sheet per level, the nested sheet with the real header names).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_runner import query, run_dbt_build
from openpyxl import Workbook

from assets.foundation.settings import get_settings
from assets.ingest.http import FetchError
from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, raw_path, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import dares_fap2021_rome as src

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / src.SLUG
MIRROR = ROOT / "warehouse" / "mirror" / src.SLUG
CROSSWALK = "Dares_Table_passage_ROME_Qualif_to_FAP2021_pour_programme.csv"
TREE = "Dares_Arborescence_FAP2021.xlsx"

TREE_HEADER = [
    "Code_FAP341",
    "Intitulé_FAP341",
    "Code_FAP228",
    "Intitulé_FAP228",
    "Code_FAP86",
    "Intitulé_FAP86",
    "Code_FAP22",
    "Intitulé_FAP22",
]
A = ["A0X", "Agriculteurs, éleveurs, sylviculteurs, bûcherons", "A", "Agriculture, marine, pêche"]
B0 = ["B0X", "Ouvriers des travaux publics, du béton et de l'extraction"]
B = ["B", "Bâtiment, travaux publics"]
S = ["S1X", "Cuisiniers", "S", "Hôtellerie, restauration, alimentation"]
TREE_ROWS = [
    ["A0X40", "Agriculteurs", "A0X40", "Agriculteurs", *A],
    ["A0X41a", "Eleveurs de bovins ou d'équins", "A0X41", "Eleveurs", *A],
    ["A0X43", "Conducteurs d'engins agricoles ou forestiers"] * 2 + A,
    ["B0X30", "Ouvriers peu qualifiés de l'extraction et des travaux publics"] * 2 + B0 + B,
    ["B0X31", "Ouvriers qualifiés de l'extraction et des travaux publics"] * 2 + B0 + B,
    ["B6X73", "Techniciens et agents de maîtrise de chantiers du BTP\xa0"] * 2
    + ["B6X", "Techniciens, agents de maîtrise et assimilés du bâtiment et des travaux publics"]
    + B,
    ["QAX03", "Experts de l'assurance"] * 2
    + ["QAX", "Experts de la finance, de la banque et de l'assurance", "Q", "Banque et assurances"],
    ["S1X20", "Aides de cuisine et employés polyvalents de la restauration"] * 2 + S,
    ["S1X40", "Cuisiniers", "S1X40", "Cuisiniers", *S],
    ["S1X80", "Chefs cuisiniers", "S1X80", "Chefs cuisiniers", *S],
    ["S3X90", "Patrons et cadres de l’hôtellerie et de la restauration"] * 2
    + ["S3X", "Patrons et cadres de l’hôtellerie et de la restauration"]
    + S[2:],
    [
        "U1X82a",
        "Concepteur-décorateur d’espaces",
        "U1X82",
        "Graphistes, dessinateurs, stylistes, décorateurs et créateurs de supports de "
        "communication visuelle",
        "U1X",
        "Professionnels des arts et des spectacles",
        "U",
        "Communication, information, art et spectacle",
    ],
    [
        "V3X71b",
        "Optique – lunetterie",
        "V3X71",
        "Spécialistes de l'appareillage médical",
        "V3X",
        "Professions para-médicales",
        "V",
        "Santé, action sociale, culturelle et sportive",
    ],
]


def write_tree(path: Path, *, header: list[str] | None = None, rows=None) -> Path:
    """A workbook laid out as DARES's: read-me first, one sheet per level, nested last."""
    header = header or TREE_HEADER
    rows = TREE_ROWS if rows is None else rows
    wb = Workbook()
    readme = wb.active
    readme.title = "Lisez-moi"
    readme.append(["Arborescence de la nomenclature des familles professionnelles FAP-2021"])
    readme.append([])
    readme.append(["Code_FAP341", "Code de la famille professionnelle très détaillée"])
    level = wb.create_sheet("niveau_FAP341")
    level.append(["Code_FAP341", "Intitulé_FAP341"])
    for row in rows:
        level.append(row[:2])
    nested = wb.create_sheet("niveaux_emboites_v2")  # not the published name: found by header
    nested.append(["Familles professionnelles 2021, niveaux emboîtés"])
    nested.append([])
    nested.append(header)
    for row in rows:
        nested.append(row[: len(header)])
    nested.append([])
    nested.append(["Source : Dares, nomenclature des familles professionnelles 2021."])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, src.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


def copy(src_path: Path, dst_dir: Path, name: str | None = None, data: bytes | None = None):
    dst_dir.mkdir(parents=True, exist_ok=True)
    target = dst_dir / (name or src_path.name)
    target.write_bytes(src_path.read_bytes() if data is None else data)
    return target


@pytest.fixture
def fixture_tables(tmp_path):
    tree = write_tree(tmp_path / "src" / TREE)
    return src.parse(land([FIXTURES / CROSSWALK, tree], tmp_path / "landing"))


@pytest.fixture(scope="module")
def real_tables(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    return src.parse(land([MIRROR / CROSSWALK, MIRROR / TREE], landing))


def test_fixture_is_in_the_published_format():
    data = (FIXTURES / CROSSWALK).read_bytes()
    assert data.startswith(b"ROME;Intitule_ROME;Qualif;FAP341;Intitule_FAP341\r\n")
    assert b"\x92" in data and b"\x96" in data and b"\xa0\r\n" in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_crosswalk_cp1252_crlf_nbsp(fixture_tables):
    links = fixture_tables["rome_qualif_fap341"].frame
    assert list(links.columns[:5]) == list(src.CROSSWALK_COLUMNS)
    assert len(links) == 60 and links["rome_code"].nunique() == 6
    assert set(links["qualification_code"]) == set(src.QUALIFICATION_CODES)
    # cp1252, not latin-1: 0x92 is a right quote, 0x96 an en dash
    labels = set(links["fap341_label"])
    assert "Concepteur-décorateur d’espaces" in labels and "Optique – lunetterie" in labels
    # the trailing no-break space is gone, and no \r is glued to the last column
    assert "Techniciens et agents de maîtrise de chantiers du BTP" in labels
    assert not any(label != label.strip() or "\xa0" in label for label in labels)
    # G1602 reaches four families, told apart by the qualification
    g1602 = links[links["rome_code"] == "G1602"].set_index("qualification_code")["fap341_code"]
    assert g1602.nunique() == 4 and g1602["1"] == "S1X20" and g1602["9"] == "S3X90"
    assert links["_row_number"].tolist() == list(range(1, 61))
    assert set(links["_source_file"]) == {CROSSWALK}


def test_tree_found_by_header_not_sheet_name(fixture_tables):
    tree = fixture_tables["fap2021_tree"].frame
    assert list(tree.columns[:8]) == list(src.TREE_COLUMNS)
    assert len(tree) == len(TREE_ROWS)  # the footnote row and blank row are not families
    first = tree.iloc[0]
    assert (first["fap341_code"], first["fap228_code"], first["fap86_code"]) == (
        "A0X40",
        "A0X40",
        "A0X",
    )
    assert first["fap22_label"] == "Agriculture, marine, pêche"
    assert "\xa0" not in "".join(tree["fap341_label"])
    assert "QAX03" in set(tree["fap341_code"])


def test_reordered_and_added_columns(tmp_path):
    text = (FIXTURES / CROSSWALK).read_bytes().decode("cp1252").splitlines()
    moved = ["Qualif;FAP341;Intitule_FAP341;ROME;Intitule_ROME;Commentaire"]
    for line in text[1:]:
        rome, rome_label, qualif, fap, fap_label = line.split(";")
        moved.append(f"{qualif};{fap};{fap_label};{rome};{rome_label};")
    csv = copy(FIXTURES / CROSSWALK, tmp_path / "src", data="\r\n".join(moved).encode("cp1252"))
    header = [TREE_HEADER[i] for i in (6, 7, 0, 1, 4, 5, 2, 3)]
    rows = [[row[i] for i in (6, 7, 0, 1, 4, 5, 2, 3)] for row in TREE_ROWS]
    tree = write_tree(tmp_path / "src" / TREE, header=header, rows=rows)
    tables = src.parse(land([csv, tree], tmp_path / "landing"))
    links = tables["rome_qualif_fap341"].frame
    assert (
        links.loc[(links["rome_code"] == "G1602") & (links["qualification_code"] == "1")][
            "fap341_code"
        ].item()
        == "S1X20"
    )
    assert "commentaire" in links.columns
    nested = tables["fap2021_tree"].frame.set_index("fap341_code")
    assert (
        nested.loc["U1X82a", "fap228_code"] == "U1X82" and nested.loc["U1X82a", "fap22_code"] == "U"
    )


def test_missing_crosswalk_column_names_the_file(tmp_path):
    broken = (FIXTURES / CROSSWALK).read_bytes().replace(b";FAP341;", b";FAP;", 1)
    csv = copy(FIXTURES / CROSSWALK, tmp_path / "src", data=broken)
    tree = write_tree(tmp_path / "src" / TREE)
    with pytest.raises(ParseError) as excinfo:
        src.parse(land([csv, tree], tmp_path / "landing"))
    message = str(excinfo.value)
    assert src.SLUG in message and CROSSWALK in message
    assert "fap341_code" in message and "ROME;Intitule_ROME;Qualif;FAP341" in message


def test_missing_tree_column_names_the_file_and_sheet(tmp_path):
    header = [c for c in TREE_HEADER if c != "Intitulé_FAP86"]
    rows = [row[:5] + row[6:] for row in TREE_ROWS]
    tree = write_tree(tmp_path / "src" / TREE, header=header, rows=rows)
    with pytest.raises(ParseError) as excinfo:
        src.parse(land([FIXTURES / CROSSWALK, tree], tmp_path / "landing"))
    message = str(excinfo.value)
    assert TREE in message and "niveaux_emboites_v2" in message and "fap86_label" in message


def test_missing_file_or_tree_sheet_is_named(tmp_path):
    with pytest.raises(ParseError, match="FAP-2021 tree workbook"):
        src.parse(land([FIXTURES / CROSSWALK], tmp_path / "landing"))
    wb = Workbook()
    wb.active.append(["Code_FAP341", "Intitulé_FAP341"])  # a single-level sheet only
    path = tmp_path / "src" / TREE
    path.parent.mkdir(parents=True)
    wb.save(path)
    with pytest.raises(ParseError) as excinfo:
        src.parse(land([FIXTURES / CROSSWALK, path], tmp_path / "landing2"))
    assert TREE in str(excinfo.value) and "found 0" in str(excinfo.value)


def test_contract_reports_bad_codes_and_duplicate_keys(fixture_tables):
    frame = fixture_tables["rome_qualif_fap341"].frame.copy()
    frame.loc[1, "rome_code"] = "A110"
    frame.loc[2, "qualification_code"] = "10"
    frame.loc[3, "fap341_code"] = "a0x43"
    frame.loc[5, "qualification_code"] = "4"  # same (rome, qualif) as row 4
    report = validate_frame(
        frame,
        src.CONTRACTS["rome_qualif_fap341"],
        slug=src.SLUG,
        table="rome_qualif_fap341",
        source_files=(CROSSWALK,),
    )
    assert not report.success
    failed = {f.column for f in report.failures}
    assert {"rome_code", "qualification_code", "fap341_code"} <= failed
    assert "rome_code, qualification_code" in failed
    assert {"A110", "10", "a0x43"} <= {s for f in report.failures for s in f.samples}
    assert "at least 5000" in report.describe()  # a 60-row extract is a truncated file
    assert CROSSWALK in report.describe()


def test_real_files(real_tables):
    links = real_tables["rome_qualif_fap341"].frame
    tree = real_tables["fap2021_tree"].frame
    assert len(links) == 5320 and links["rome_code"].nunique() == 532
    assert (links.groupby("rome_code")["qualification_code"].nunique() == 10).all()
    assert links[["rome_code", "fap341_code"]].drop_duplicates().shape[0] == 1009
    assert links["fap341_code"].nunique() == 337
    assert len(tree) == 341
    assert tree["fap228_code"].nunique() == 228 and tree["fap86_code"].nunique() == 86
    assert tree["fap22_code"].nunique() == 22
    # codes nest by prefix
    assert (tree["fap228_code"] == tree["fap341_code"].str[:5]).all()
    assert (tree["fap86_code"] == tree["fap228_code"].str[:3]).all()
    assert (tree["fap22_code"] == tree["fap86_code"].str[:1]).all()
    # every family the crosswalk names is in the tree
    assert set(links["fap341_code"]) <= set(tree["fap341_code"])
    for frame in (links, tree):
        text = frame.select_dtypes("string")
        assert not text.apply(lambda col: col.str.contains("\xa0").any()).any()
    for table, parsed in real_tables.items():
        report = validate_frame(parsed.frame, src.CONTRACTS[table], slug=src.SLUG, table=table)
        assert report.success, report.describe()


def test_mirror_matches_the_spec_patterns():
    import fnmatch

    names = [p.name for p in MIRROR.iterdir()]
    for pattern in src.SPEC.mirror_patterns:
        assert [n for n in names if fnmatch.fnmatch(n, pattern)] in ([CROSSWALK], [TREE])


def test_live_fetch_says_no_url_is_known(tmp_path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path))
    settings = get_settings()
    assert settings.mode == "live"
    with pytest.raises(FetchError, match="no download URL is known") as excinfo:
        src.fetch(src.SPEC, settings)
    assert src.SPEC.landing_page in str(excinfo.value)


# ----------------------------------------------------------------------- dbt staging


@pytest.fixture(scope="module")
def warehouse(real_tables, tmp_path_factory):
    work = tmp_path_factory.mktemp("dbt_fap2021_rome")
    for table, parsed in real_tables.items():
        write_parquet_atomically(parsed.frame, raw_path(work / "raw", src.SLUG, table))
    result = run_dbt_build(work, [f"staging.{src.SLUG}", f"source:{src.SLUG}"])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return work / "warehouse.duckdb"


@pytest.mark.slow
def test_staging_views(warehouse):
    crosswalk = "stg_dares_fap2021_rome__rome_qualif_fap341"
    assert query(warehouse, f"select count(*), count(distinct rome_v3_code) from {crosswalk}") == [
        (5320, 532)
    ]
    assert query(warehouse, "select count(*) from stg_dares_fap2021_rome__fap2021_tree") == [(341,)]
    rows = query(
        warehouse,
        f"select qualification_code, fap341_code from {crosswalk} "
        "where rome_v3_code = 'G1602' and qualification_code in ('1', '9') "
        "order by qualification_code",
    )
    assert rows == [("1", "S1X20"), ("9", "S3X90")]
