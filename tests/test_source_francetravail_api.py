"""The France Travail API client against a fake API on 127.0.0.1 (tests/api_server.py)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_server import CLIENT_ID, CLIENT_SECRET, fake_api

from assets.ingest.francetravail_api import (
    SCOPES_MARCHE_TRAVAIL,
    Credentials,
    FranceTravailApiError,
    FranceTravailClient,
    land_response,
    parse_content_range,
)
from assets.ingest.landing import current_files, write_current_pointer

SLUG = "francetravail_marche_travail"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api():
    with fake_api() as running:
        yield running


def make_client(api, *, secret: str = CLIENT_SECRET, clock=None, sleeps=None, **kwargs):
    return FranceTravailClient(
        Credentials(CLIENT_ID, secret),
        SCOPES_MARCHE_TRAVAIL,
        slug=SLUG,
        token_url=api.token_url,
        allowed_hosts=("127.0.0.1",),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        clock=clock or Clock(),
        **kwargs,
    )


def stats_body(rome: str = "A1203") -> dict:
    return {
        "codeTypeTerritoire": "DEP",
        "codeTerritoire": "33",
        "codeTypeActivite": "ROME",
        "codeActivite": rome,
        "codeTypePeriode": "TRIMESTRE",
        "codeTypeNomenclature": "CATCAND",
    }


def test_token_request_follows_the_spec_and_is_cached(api):
    clock = Clock()
    with make_client(api, clock=clock) as client:
        for _ in range(3):
            response = client.post(api.url("/stats/v1/indicateur/stat-demandeurs"), stats_body())
            assert response.status == 200
        assert client.token_requests == 1
        (token_call,) = api.seen("/connexion")
        assert token_call.query == {"realm": "/partenaire"}
        form = token_call.body.decode()
        assert "grant_type=client_credentials" in form
        assert "scope=api_stats-offres-demandes-emploiv1+offresetdemandesemploi" in form
        calls = api.seen("/stats/")
        assert all(c.headers["authorization"].startswith("Bearer tok-1") for c in calls)
        assert json.loads(calls[0].body) == stats_body()
        # Near expiry (less than a minute left) a new token is fetched.
        clock.now += api.expires_in - 30
        client.post(api.url("/stats/v1/indicateur/stat-demandeurs"), stats_body())
        assert client.token_requests == 2


def test_401_renews_the_token_once(api):
    with make_client(api) as client:
        client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))
        api.revoke_tokens()
        response = client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))
        assert response.status == 200 and client.token_requests == 2
        assert json.loads(response.body)["romeFapList"][0]["codeFap"] == "M0Z60"


def test_persistent_401_fails_after_one_renewal(api):
    with make_client(api) as client:
        client.token()
        api.fail_next("/stats/", 401)
        api.fail_next("/stats/", 401)
        with pytest.raises(FranceTravailApiError, match="still unauthorised") as err:
            client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))
        assert err.value.status == 401
        assert client.token_requests == 2


def test_429_waits_retry_after_and_5xx_backs_off(api):
    sleeps: list[float] = []
    with make_client(api, sleeps=sleeps, backoff_s=0.5) as client:
        api.fail_next("/stats/", 429, {"Retry-After": "7"})
        api.fail_next("/stats/", 503)
        response = client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))
        assert response.status == 200
        assert sleeps == [7.0, 1.0]  # Retry-After, then backoff 0.5 * 2**1
        assert len(api.seen("/stats/")) == 3


def test_gives_up_after_the_retries(api):
    with make_client(api, retries=2) as client:
        for _ in range(3):
            api.fail_next("/stats/", 500)
        with pytest.raises(FranceTravailApiError, match="after 3 attempt"):
            client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))


def test_client_errors_are_not_retried(api):
    with make_client(api) as client:
        api.fail_next("/stats/", 400)
        with pytest.raises(FranceTravailApiError, match="HTTP 400") as err:
            client.post(api.url("/stats/v1/indicateur/stat-offres"), stats_body())
        assert err.value.status == 400
        assert len(api.seen("/stats/")) == 1


def test_hosts_are_restricted(api):
    with (
        make_client(api) as client,
        pytest.raises(FranceTravailApiError, match="not among the allowed hosts"),
    ):
        client.get(api.url("/stats/x").replace("127.0.0.1", "localhost"))
    with pytest.raises(FranceTravailApiError, match="allowed hosts"):
        FranceTravailClient(
            Credentials(CLIENT_ID, CLIENT_SECRET),
            SCOPES_MARCHE_TRAVAIL,
            slug=SLUG,
            token_url="https://evil.example.org/token",
        )


def test_credentials_come_from_the_environment_only():
    with pytest.raises(FranceTravailApiError, match="FRANCE_TRAVAIL_CLIENT_SECRET"):
        Credentials.from_env(SLUG, {"FRANCE_TRAVAIL_CLIENT_ID": "x"})
    creds = Credentials.from_env(
        SLUG, {"FRANCE_TRAVAIL_CLIENT_ID": CLIENT_ID, "FRANCE_TRAVAIL_CLIENT_SECRET": CLIENT_SECRET}
    )
    assert CLIENT_SECRET not in repr(creds) and CLIENT_ID not in repr(creds)


def test_planted_secret_never_leaks(api, tmp_path: Path, caplog):
    """Logs, exceptions, landing sidecars and pointer never hold the id, secret or token."""
    caplog.set_level(logging.DEBUG)
    leaks: list[str] = []
    # A refused token: the error names the OAuth error, not the request.
    with make_client(api, secret=CLIENT_SECRET + "-wrong") as bad:
        with pytest.raises(FranceTravailApiError, match="invalid_client") as err:
            bad.token()
        leaks.append(str(err.value))
    with make_client(api, sleeps=[]) as client:
        api.fail_next("/stats/", 503)
        api.revoke_tokens()
        response = client.post(api.url("/stats/v1/indicateur/stat-demandeurs"), stats_body())
        token = client.token()
        landed = land_response(
            tmp_path, SLUG, "stat-demandeurs.json", response, fetched_at=datetime.now(UTC)
        )
        write_current_pointer(tmp_path, SLUG, "live", [landed])
        api.fail_next("/stats/", 400)
        with pytest.raises(FranceTravailApiError) as err:
            client.post(api.url("/stats/v1/indicateur/stat-demandeurs"), stats_body())
        leaks.append(str(err.value))
        leaks.append(repr(client))
    on_disk = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    for text in [*leaks, caplog.text, on_disk]:
        for secret in (CLIENT_SECRET, CLIENT_ID, token):
            assert secret not in text
    assert "authorization" not in on_disk.lower()
    meta = json.loads(next(tmp_path.rglob("*.meta.json")).read_text())
    assert meta["url"] == api.url("/stats/v1/indicateur/stat-demandeurs")
    assert set(meta["headers"]) <= {"content-type", "content-length", "etag", "last-modified"}


def test_write_current_pointer_makes_landed_responses_current(api, tmp_path: Path):
    with make_client(api) as client:
        response = client.get(api.url("/stats/v1/referentiel/rechercherActivitesRomeFap"))
    when = datetime(2026, 1, 2, tzinfo=UTC)
    landed = land_response(tmp_path, SLUG, "romefap.json", response, fetched_at=when)
    assert landed.path.read_bytes() == response.body
    write_current_pointer(tmp_path, SLUG, "live", [landed])
    (current,) = current_files(tmp_path, SLUG)
    assert current.sha256 == landed.sha256 and current.mode == "live"
    pointer = tmp_path / SLUG / "current.json"
    before = pointer.stat().st_mtime_ns
    write_current_pointer(tmp_path, SLUG, "live", [landed])  # unchanged: not rewritten
    assert pointer.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="landing mode"):
        write_current_pointer(tmp_path, SLUG, "kept", [landed])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("offres 0-149/3421", (0, 149, 3421)),
        ("offres 3000-3149/9000", (3000, 3149, 9000)),
        ("*/0", (0, -1, 0)),
        ("offres */0", (0, -1, 0)),
        (None, None),
        ("garbage", None),
    ],
)
def test_content_range(header, expected):
    assert parse_content_range(header) == expected
