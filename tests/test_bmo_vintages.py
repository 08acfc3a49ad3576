"""An earlier BMO vintage (FAP-2009 métier codes) goes through the same estimator and bridge.

No real pre-2024 workbook is embedded, so the earlier year here is synthetic: the real 2024
raw rows with survey year 2023, FAP-2009 family codes from DARES's FAP-2009 <-> ROME table
in place of the FAP-2021 métier codes, and `nomenclature = fap2009`, exactly as the parser
writes an earlier workbook (it reads the nomenclature from the codes' shape). The file is
named `synthetic__...` so nothing mistakes it for a publication. The real 2024 year stays
beside it, so the build also proves that two vintages in two nomenclatures do not mix.
"""

from __future__ import annotations

import pandas as pd
import pytest
from dbt_fixtures import write_raw_fixtures
from test_dbt_build import DbtRun, _query, _run_dbt

pytestmark = pytest.mark.slow

EARLIER_YEAR = 2023


def _write_fap2009_vintage(raw_dir) -> None:
    folder = raw_dir / "francetravail_bmo" / "projects"
    real = pd.read_parquet(folder / "2024.parquet")
    families = pd.read_parquet(raw_dir / "dares_fap" / "fap2009_rome.parquet")
    linked = families[families["rome"].notna() & (families["rome"].str.strip() != "NA")]
    codes = sorted({code.strip() for code in linked["fap"].dropna()})
    metiers = sorted(real["code_metier_bmo"].unique())
    # Each FAP-2021 métier stands in for one FAP-2009 family (one to one, as a real file
    # lists each family once per bassin); métiers beyond the families are left out.
    recode = dict(zip(metiers, codes[7:] + codes[:7], strict=False))
    earlier = real[real["code_metier_bmo"].isin(recode)].copy()
    earlier["code_metier_bmo"] = earlier["code_metier_bmo"].map(recode)
    earlier["nomenclature"] = "fap2009"
    earlier["survey_year"] = str(EARLIER_YEAR)
    earlier["annee"] = str(EARLIER_YEAR)
    earlier["_source_file"] = f"synthetic__Base_open_data_BMO_{EARLIER_YEAR}.xlsx"
    earlier.to_parquet(folder / f"{EARLIER_YEAR}.parquet", index=False)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    work_dir = tmp_path_factory.mktemp("bmo_vintages")
    raw_dir = work_dir / "raw"
    write_raw_fixtures(raw_dir)
    _write_fap2009_vintage(raw_dir)
    built = _run_dbt(
        ["build"], work_dir=work_dir, raw_dir=raw_dir, duckdb_path=work_dir / "wh.duckdb"
    )
    assert built.returncode == 0, built.output
    return built


def test_the_fap2009_vintage_goes_through_the_fap2009_crosswalk(build: DbtRun) -> None:
    rows = _query(
        build,
        "select job_nomenclature, match_rule, count(distinct bmo_job_code) "
        "from int_job_classification__bmo_to_rome group by all order by all",
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("fap2009", "fap2009_crosswalk"),
        ("fap2021", "fap2021_crosswalk"),
    ]
    assert all(r[2] > 100 for r in rows)


def test_each_vintage_has_its_own_headlines_and_keeps_its_projects(build: DbtRun) -> None:
    rows = dict(
        _query(
            build,
            "select survey_year, recruitment_projects from diag_hiring_headlines "
            "where scope = 'france'",
        )
    )
    assert set(rows) == {EARLIER_YEAR, 2024}
    assert 0 < rows[EARLIER_YEAR] < rows[2024]
    hiring = dict(
        _query(
            build, "select survey_year, sum(recruitment_projects) from fct_hiring_needs group by 1"
        )
    )
    # Every family of the earlier file reaches ROME fiches, so its projects all arrive
    # (less the collectivité 978, which no fiche x département row holds).
    assert set(hiring) == {EARLIER_YEAR, 2024}
    assert 0.99 * rows[EARLIER_YEAR] < hiring[EARLIER_YEAR] <= rows[EARLIER_YEAR]
