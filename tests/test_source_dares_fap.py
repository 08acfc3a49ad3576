"""DARES FAP: FAP-2021 labels and FAP-2009 <-> ROME v3, parsers, contracts, staging, bridge.

Fixtures in tests/fixtures/dares_fap/ are line extracts of the published files with their
bytes unchanged (BOM + CRLF for the FAP-2021 labels, Windows-1252 + `NA` + trailing `;;`
lines for the crosswalk).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dbt_fixtures import write_raw_fixtures
from dbt_runner import query, run_dbt_build

from assets.ingest.landing import land_file
from assets.ingest.raw import ParseError, raw_path, write_parquet_atomically
from assets.ingest.validation import validate_frame
from assets.sources import dares_fap as fap

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / fap.SLUG
MIRROR = ROOT / "warehouse" / "mirror" / fap.SLUG
LABELS = "Intitulés_FAP2021.csv"
CROSSWALK = "fap225_rome.csv"


def land(paths: list[Path], landing: Path):
    return [
        land_file(landing, fap.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


def copy(src: Path, dst_dir: Path, name: str | None = None, data: bytes | None = None) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    target = dst_dir / (name or src.name)
    target.write_bytes(src.read_bytes() if data is None else data)
    return target


@pytest.fixture(scope="module")
def real_tables(tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    return fap.parse(land([MIRROR / LABELS, MIRROR / CROSSWALK], landing))


@pytest.fixture
def fixture_tables(tmp_path):
    return fap.parse(land([FIXTURES / LABELS, FIXTURES / CROSSWALK], tmp_path))


def test_fixture_bom_crlf_and_accented_headers(fixture_tables):
    labels = fixture_tables["fap2021"].frame
    assert list(labels.columns[:8]) == [
        "code_fap341",
        "intitule_fap341",
        "code_fap228",
        "intitule_fap228",
        "code_fap86",
        "intitule_fap86",
        "code_fap22",
        "intitule_fap22",
    ]
    first = labels.iloc[0]
    assert first["code_fap341"] == "A0X40"  # no BOM glued to the first value or header
    assert first["intitule_fap22"] == "Agriculture, marine, pêche"  # no trailing \r
    assert "A0X41a" in set(labels["code_fap341"]) and "QAX01" in set(labels["code_fap341"])
    assert set(labels["nomenclature"]) == {"FAP2021"}


def test_fixture_crosswalk_cp1252_na_and_blank_lines(fixture_tables):
    links = fixture_tables["fap2009_rome"].frame
    assert len(links) == 24  # the three trailing `;;` lines are not rows
    no_rome = links[links["fap"] == "A0Z00"].iloc[0]
    assert pd.isna(no_rome["rome"]) and pd.isna(no_rome["intitule_rome"])
    assert "NA" not in set(links["rome"].dropna())
    label = links.loc[links["rome"] == "A1201", "intitule_rome"].item()
    assert label == "Bûcheronnage et élagage"
    assert set(links["nomenclature"]) == {"FAP2009"}


def test_real_files_row_counts(real_tables):
    labels = real_tables["fap2021"].frame
    links = real_tables["fap2009_rome"].frame
    assert len(labels) == 341
    assert labels["code_fap228"].nunique() == 228 and labels["code_fap86"].nunique() == 86
    assert labels["code_fap22"].nunique() == 22
    assert len(links) == 765
    assert links["fap"].nunique() == 224 and links["rome"].nunique() == 531
    assert links["rome"].isna().sum() == 16
    for table, parsed in real_tables.items():
        report = validate_frame(parsed.frame, fap.CONTRACTS[table], slug=fap.SLUG, table=table)
        assert report.success, report.describe()


def test_files_are_recognised_by_header_not_name(tmp_path):
    src = tmp_path / "src"
    a = copy(FIXTURES / LABELS, src, "dares_nomenclature_fap2021_FAP2021.csv")
    b = copy(FIXTURES / CROSSWALK, src, "fap2009_rome_v3.csv")
    tables = fap.parse(land([a, b], tmp_path / "landing"))
    assert len(tables["fap2021"].frame) == 10
    assert tables["fap2009_rome"].frame["_source_file"].iloc[0] == "fap2009_rome_v3.csv"


def test_reordered_and_added_columns(tmp_path):
    text = (FIXTURES / CROSSWALK).read_bytes().decode("cp1252").splitlines()
    moved = ["intitule_rome;Rome;Fap;Source"]
    for line in text[1:]:
        fap_code, rome, label = line.split(";")
        moved.append(f"{label};{rome};{fap_code};DARES")
    src = tmp_path / "src"
    a = copy(FIXTURES / LABELS, src)
    b = copy(FIXTURES / CROSSWALK, src, data="\n".join(moved).encode("cp1252"))
    links = fap.parse(land([a, b], tmp_path / "landing"))["fap2009_rome"].frame
    assert links.loc[links["rome"] == "A1201", "fap"].item() == "A0Z42"
    assert "source" in links.columns


def test_missing_file_or_column_is_named(tmp_path):
    src = tmp_path / "src"
    a = copy(FIXTURES / LABELS, src)
    with pytest.raises(ParseError, match="Fap;Rome;intitule_rome"):
        fap.parse(land([a], tmp_path / "landing"))
    broken = (FIXTURES / CROSSWALK).read_bytes().replace(b"Fap;Rome;", b"Famille;Rome;")
    b = copy(FIXTURES / CROSSWALK, src, data=broken)
    with pytest.raises(ParseError) as excinfo:
        fap.parse(land([a, b], tmp_path / "landing2"))
    assert "fap225_rome.csv" in str(excinfo.value) and "famille" in str(excinfo.value)


def test_contract_reports_codes(fixture_tables):
    frame = fixture_tables["fap2009_rome"].frame.copy()
    frame.loc[1, "rome"] = "A141"
    frame.loc[2, "fap"] = "a0z42"
    report = validate_frame(
        frame,
        fap.CONTRACTS["fap2009_rome"],
        slug=fap.SLUG,
        table="fap2009_rome",
        source_files=(CROSSWALK,),
    )
    assert {"rome", "fap"} <= {f.column for f in report.failures}
    assert {"A141", "a0z42"} <= {s for f in report.failures for s in f.samples}


# ----------------------------------------------------------------------- dbt staging


@pytest.fixture(scope="module")
def warehouse(real_tables, tmp_path_factory):
    work = tmp_path_factory.mktemp("dbt_fap")
    write_raw_fixtures(work / "raw")  # ROME 4.0 raw tables, from the mirror
    for table, parsed in real_tables.items():
        write_parquet_atomically(parsed.frame, raw_path(work / "raw", fap.SLUG, table))
    result = run_dbt_build(
        work,
        [
            f"staging.{fap.SLUG}",
            f"source:{fap.SLUG}",
            "stg_francetravail_rome__referentiel_code_rome",
            "fap2009_rome_supplement",
            "int_job_classification__rome_to_fap",
        ],
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return work / "warehouse.duckdb"


@pytest.mark.slow
def test_staging_tables(warehouse):
    assert query(warehouse, "select count(*) from stg_dares_fap__fap2021") == [(341,)]
    rows = query(
        warehouse,
        "select fap2009_87_code, domain_code, rome_v3_code from stg_dares_fap__fap2009_rome "
        "where fap2009_code = 'A0Z00'",
    )
    assert rows == [("A0Z", "A", None)]


@pytest.mark.slow
def test_bridge_weights_sum_to_one_per_fiche_and_rome(warehouse):
    table = "int_job_classification__rome_to_fap"
    bad = query(
        warehouse,
        f"select job_group_code, sum(allocation_weight) from {table} "
        "where fap2009_code is not null group by job_group_code "
        "having abs(sum(allocation_weight) - 1) > 1e-9",
    )
    assert bad == []
    bad_rome = query(
        warehouse,
        "select rome_v3_code from (select distinct rome_v3_code, fap2009_code, allocation_weight "
        f"from {table} where fap2009_code is not null) group by rome_v3_code "
        "having abs(sum(allocation_weight) - 1) > 1e-9",
    )
    assert bad_rome == []


@pytest.mark.slow
def test_bridge_split_rule_and_coverage(warehouse):
    table = "int_job_classification__rome_to_fap"
    # ROME v3 A1204 belongs to three FAP-2009 families: each link weighs 1/3.
    split = query(
        warehouse,
        f"select distinct fap2009_code, allocation_weight, link_type from {table} "
        "where rome_v3_code = 'A1204' order by fap2009_code",
    )
    assert [(c, round(w, 6), t) for c, w, t in split] == [
        ("A0Z42", 0.333333, "split"),
        ("G1Z70", 0.333333, "split"),
        ("H0Z91", 0.333333, "split"),
    ]
    fiches, linked = query(
        warehouse,
        f"select count(distinct job_group_code), count(distinct case when fap2009_code is not "
        f"null then job_group_code end) from {table}",
    )[0]
    assert fiches == 1584  # every ROME 4.0 fiche of v4.60 is present
    assert linked / fiches > 0.95
    domains = query(
        warehouse,
        f"select count(*) from {table} where fap2009_code is not null "
        "and fap2021_domain_code <> substr(fap2009_code, 1, 1)",
    )
    assert domains == [(0,)]
