"""francetravail_offres: parser on the real search page and the synthetic mirror, contact
data never stored, contracts, and the live snapshot (paging, 3000 ceiling, 429)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from api_server import CLIENT_ID, CLIENT_SECRET, fake_api, make_offer

from assets.foundation.settings import PROJECT_ROOT, get_settings
from assets.ingest.francetravail_api import Credentials, FranceTravailClient
from assets.ingest.landing import LandedFile, current_files, land_file
from assets.ingest.raw import ParseError
from assets.ingest.validation import validate_frame
from assets.sources import francetravail_offres as fo

FIXTURES = Path(__file__).parent / "fixtures" / fo.SLUG
REAL_PAGE = FIXTURES / "offres_2025-11-13_page0.json"
MIRROR = PROJECT_ROOT / "warehouse" / "mirror" / fo.SLUG


def land(paths, landing: Path) -> list[LandedFile]:
    return [
        land_file(landing, fo.SLUG, p.name, p, url=p.as_uri(), upstream_url=None, mode="mirror")
        for p in paths
    ]


def test_real_page_is_read_in_its_real_shape(tmp_path: Path):
    parsed = fo.parse(land([REAL_PAGE], tmp_path))["offers"]
    frame = parsed.frame
    assert parsed.partition == "2025-11-13"
    assert len(frame) == 150 and frame["offer_id"].is_unique
    assert (frame["snapshot_date"] == "2025-11-13").all() and not frame["synthetic"].any()
    first = frame.iloc[0]
    assert (first["offer_id"], first["commune_code"], first["departement_code"]) == (
        "200HHPB",
        "78551",
        "78",
    )
    assert first["created_at"] == "2025-11-13T22:47:20.057Z"
    # 97x communes give 3-character départements; label-only places fall back to the label.
    overseas = frame[frame["commune_code"].str.startswith("97", na=False)]
    assert len(overseas) == 14
    assert (overseas["departement_code"].str.len() == 3).all()
    label_only = frame[frame["commune_code"].isna()]
    assert len(label_only) == 5
    assert sorted(label_only["departement_code"].dropna()) == ["971", "972", "972"]
    assert set(label_only["departement_source"].dropna()) == {"work_place_label"}
    assert set(frame["contract_type"]) == {"MIS", "CDI", "CDD", "SAI"}
    assert frame["salary_text"].notna().sum() == 122
    assert frame["salary_text"].str.match(r"^(?:Mensuel|Horaire|Annuel) de ", na=False).sum() == 122
    report = validate_frame(frame, fo.CONTRACTS["offers"], slug=fo.SLUG, table="offers")
    assert report.success, report.describe()


def test_parse_leaves_only_the_staged_table_in_its_stage_dir(tmp_path: Path):
    """The pages go through a temporary DuckDB table that may spill: nothing of it stays."""
    stage = tmp_path / "stage"
    parsed = fo.parse(land([REAL_PAGE], tmp_path / "l"), stage_dir=stage)["offers"]
    assert [p.name for p in stage.iterdir()] == [parsed.path.name]
    assert parsed.rows == 150


def test_no_recruiter_contact_data_is_stored(tmp_path: Path):
    page = {"resultats": [make_offer(1, "75", datetime(2025, 11, 13, tzinfo=UTC))]}
    src = tmp_path / "offres__2025-11-13__dep75__r0000.json"
    src.write_text(json.dumps(page), encoding="utf-8")
    frame = fo.parse(land([src, REAL_PAGE], tmp_path / "l"))["offers"].frame
    assert list(frame.columns[: len(fo.OFFER_COLUMNS)]) == list(fo.OFFER_COLUMNS)
    text = frame.astype(str).to_csv()
    for leaked in ("Jeanne", "0612345678", "example.org", "Boulangerie Secrète", "ELIOR"):
        assert leaked not in text


def test_synthetic_mirror_parses_and_meets_the_contract(tmp_path: Path):
    files = land(sorted(MIRROR.glob("*.json.gz")), tmp_path)
    parsed = fo.parse(files)["offers"]
    frame = parsed.frame
    assert len(frame) == 6000 and parsed.partition == "2025-11-13"
    assert frame["synthetic"].all()
    assert frame["departement_code"].nunique() == 101
    assert frame["rome_code"].nunique() > 1000
    assert frame["departement_code"].isin(["2A", "2B", "971", "976"]).any()
    assert (
        frame["commune_code"].isna().sum()
        == frame["departement_source"].eq("work_place_label").sum()
    )
    report = validate_frame(frame, fo.CONTRACTS["offers"], slug=fo.SLUG, table="offers")
    assert report.success, report.describe()


def test_contract_fails_on_bad_codes_naming_them(tmp_path: Path):
    offer = make_offer(2, "33", datetime(2025, 11, 13, tzinfo=UTC), rome="Z999")
    src = tmp_path / "offres_2025-11-13.json"
    src.write_text(json.dumps({"resultats": [offer]}), encoding="utf-8")
    frame = fo.parse(land([src], tmp_path / "l"))["offers"].frame
    report = validate_frame(
        frame, fo.CONTRACTS["offers"], slug=fo.SLUG, table="offers", source_files=(src.name,)
    )
    assert not report.success and "'rome_code'" in report.describe() and "Z999" in report.describe()


@pytest.mark.parametrize(
    ("commune", "dep"),
    [
        ("78551", "78"),
        ("01053", "01"),
        ("2A004", "2A"),
        ("2b033", "2B"),
        ("97105", "971"),
        ("97611", "976"),
        ("98735", "987"),
        (None, None),
        ("7", None),
        ("FRANCE", None),
    ],
)
def test_departement_from_commune(commune, dep):
    assert fo.departement_from_commune(commune) == dep


@pytest.mark.parametrize(
    ("document", "message"),
    [({"offres": []}, "not a search answer"), ({"resultats": [{"intitule": "x"}]}, "with an id")],
)
def test_broken_pages_raise_naming_the_file(tmp_path: Path, document, message):
    src = tmp_path / "odd_2025-01-01.json"
    src.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ParseError, match=message) as err:
        fo.parse(land([src], tmp_path / "l"))
    assert "odd_2025-01-01.json" in str(err.value)


def test_snapshots_accumulate_one_partition_per_run(tmp_path: Path):
    day1 = tmp_path / "offres__2025-11-12__dep01__r0000.json"
    day2 = tmp_path / "offres__2025-11-13__dep01__r0000.json"
    offer = make_offer(3, "01", datetime(2025, 11, 1, tzinfo=UTC))
    for path in (day1, day2):
        path.write_text(json.dumps({"resultats": [offer, offer]}), encoding="utf-8")
    parsed = fo.parse(land([day1, day2], tmp_path / "l"))["offers"]
    assert parsed.partition == "2025-11-13"
    assert sorted(parsed.frame["snapshot_date"]) == ["2025-11-12", "2025-11-13"]


# ------------------------------------------------------------------------- live fetch


def client_for(api) -> FranceTravailClient:
    return FranceTravailClient(
        Credentials(CLIENT_ID, CLIENT_SECRET),
        ("api_offresdemploiv2", "o2dsoffre"),
        slug=fo.SLUG,
        token_url=api.token_url,
        allowed_hosts=("127.0.0.1",),
        sleep=lambda s: None,
    )


def test_live_snapshot_pages_and_splits_past_the_ceiling(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    settings = get_settings()
    snapshot = date(2025, 11, 13)
    end = datetime(2025, 11, 13, 20, tzinfo=UTC)
    # 33: 3,700 offers over 60 days (past the 3,150 reachable: split by date window);
    # 01: 320 offers (three pages); 2A: none (204).
    big = [make_offer(i, "33", end - timedelta(minutes=23 * i)) for i in range(3700)]
    small = [make_offer(10_000 + i, "01", end - timedelta(hours=i)) for i in range(320)]
    with fake_api(offers={"33": big, "01": small}) as api:
        api.fail_next("/offres/v2/offres/search", 429, {"Retry-After": "2"})
        report = fo.fetch(
            fo.SPEC,
            settings,
            client=client_for(api),
            departements=("01", "2A", "33"),
            search_url=api.url("/offres/v2/offres/search"),
            snapshot=snapshot,
        )
        searches = api.seen("/offres/v2/offres/search")
    ranges = [r.query["range"] for r in searches if r.query.get("departement") == "01"]
    assert ranges[-3:] == ["0-149", "150-299", "300-449"]
    assert all(r.query["sort"] == "1" for r in searches if r.query["range"] != "0-0")
    windows = {r.query.get("minCreationDate") for r in searches if r.query["departement"] == "33"}
    assert len(windows - {None}) >= 2  # 33 was split by creation date
    for r in searches:
        first, last = (int(x) for x in r.query["range"].split("-"))
        assert last - first < 150 and first <= 3000 and last <= 3149
    files = current_files(settings.landing_dir, fo.SLUG)
    assert {f.file_name for f in files} == {f.file_name for f in report.files}
    parsed = fo.parse(files)["offers"]
    frame = parsed.frame
    assert parsed.partition == "2025-11-13"
    assert len(frame) == 3700 + 320 and frame["offer_id"].is_unique
    assert set(frame["departement_code"]) == {"01", "33"}
    assert not frame["synthetic"].any()
    meta = "".join(p.read_text() for p in (settings.landing_dir / fo.SLUG).glob("*.meta.json"))
    assert "range=" in meta and CLIENT_SECRET not in meta and "Bearer" not in meta


def test_live_fetch_without_credentials_is_refused_clearly(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "wh"))
    monkeypatch.setenv("TREMPLIN_MODE", "live")
    monkeypatch.delenv("FRANCE_TRAVAIL_CLIENT_ID", raising=False)
    monkeypatch.delenv("FRANCE_TRAVAIL_CLIENT_SECRET", raising=False)
    with pytest.raises(
        Exception, match="FRANCE_TRAVAIL_CLIENT_ID and FRANCE_TRAVAIL_CLIENT_SECRET"
    ):
        fo.fetch(fo.SPEC, get_settings(), departements=("01",))
