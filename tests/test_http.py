"""download() against a real loopback HTTP server: each way a publisher can fail."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopback import Recorded, Reply, closed_port, serve

from assets.ingest.http import FetchError, download, retry_after_seconds

CSV = b"code;libelle\nA1101;Conduite d'engins\n"
XLSX_LIKE = b"PK\x03\x04" + b"\x00" * 100
LOCAL = frozenset({"127.0.0.1"})


@pytest.fixture
def server():
    with serve() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def fetch(server, path, tmp_path, sleeps, **kwargs):
    kwargs.setdefault("slug", "demo_source")
    kwargs.setdefault("expected_format", "csv")
    kwargs.setdefault("allowed_hosts", LOCAL)
    kwargs.setdefault("read_timeout", 5)
    kwargs.setdefault("retries", 2)
    return download(server.url(path), tmp_path, sleep=sleeps.append, **kwargs)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_200_streams_body_to_a_temp_file_with_its_hash(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(body=CSV, headers={"ETag": '"v1"', "Content-Type": "text/csv"}))
    seen: list[tuple[int, int | None]] = []
    result = fetch(server, "/f.csv", tmp_path, sleeps, progress=lambda d, t: seen.append((d, t)))
    assert result.status == 200 and not result.not_modified
    assert result.body_path is not None and result.body_path.parent == tmp_path
    assert result.body_path.read_bytes() == CSV
    assert result.sha256 == hashlib.sha256(CSV).hexdigest()
    assert result.size == len(CSV)
    assert result.headers["etag"] == '"v1"'
    assert seen and seen[-1] == (len(CSV), len(CSV))
    assert sleeps == []


def test_progress_reports_chunked_bodies_without_total(server, tmp_path, sleeps):
    body = b"x;y\n" * 50_000
    server.route("/big.csv", Reply(body=body, chunked=True))
    seen: list[tuple[int, int | None]] = []
    result = fetch(server, "/big.csv", tmp_path, sleeps, progress=lambda d, t: seen.append((d, t)))
    assert result.size == len(body)
    assert len(seen) > 1 and seen[-1] == (len(body), None)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _conditional(recorded: Recorded) -> Reply:
    if recorded.headers.get("if-none-match") == '"v1"':
        return Reply(status=304, headers={"ETag": '"v1"'})
    if recorded.headers.get("if-modified-since") == "Wed, 21 Oct 2015 07:28:00 GMT":
        return Reply(status=304)
    return Reply(body=CSV, headers={"ETag": '"v1"'})


def test_304_with_etag(server, tmp_path, sleeps):
    server.route("/f.csv", _conditional)
    result = fetch(server, "/f.csv", tmp_path, sleeps, etag='"v1"')
    assert result.not_modified and result.status == 304
    assert result.body_path is None and result.sha256 is None
    assert server.requests_to("/f.csv")[0].headers["if-none-match"] == '"v1"'
    assert leftovers(tmp_path) == []


def test_304_with_last_modified(server, tmp_path, sleeps):
    server.route("/f.csv", _conditional)
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    result = fetch(server, "/f.csv", tmp_path, sleeps, last_modified=stamp)
    assert result.not_modified
    assert server.requests_to("/f.csv")[0].headers["if-modified-since"] == stamp
    assert "if-none-match" not in server.requests_to("/f.csv")[0].headers


def test_unconditional_request_sends_no_validators(server, tmp_path, sleeps):
    server.route("/f.csv", _conditional)
    result = fetch(server, "/f.csv", tmp_path, sleeps)
    assert not result.not_modified and result.body_path.read_bytes() == CSV


def test_429_honours_retry_after_seconds(server, tmp_path, sleeps, caplog):
    server.route("/f.csv", Reply(status=429, headers={"Retry-After": "7"}), Reply(body=CSV))
    with caplog.at_level(logging.WARNING, logger="assets.ingest.http"):
        result = fetch(server, "/f.csv", tmp_path, sleeps)
    assert result.body_path.read_bytes() == CSV
    assert sleeps == [7.0]
    assert "429" in caplog.text and "demo_source" in caplog.text


def test_retry_after_is_capped(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(status=429, headers={"Retry-After": "86400"}), Reply(body=CSV))
    fetch(server, "/f.csv", tmp_path, sleeps, max_retry_after_s=30)
    assert sleeps == [30]


def test_retry_after_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:42 GMT", now=now) == 42
    assert retry_after_seconds("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None) is None


def test_500_then_200_backs_off(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(status=500), Reply(body=CSV))
    result = fetch(server, "/f.csv", tmp_path, sleeps, backoff_s=0.5)
    assert result.body_path.read_bytes() == CSV
    assert sleeps == [0.5]
    assert len(server.requests_to("/f.csv")) == 2


def test_503_until_retries_run_out(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(status=503))
    with pytest.raises(FetchError, match=r"demo_source.*after 4 attempt.*HTTP 503"):
        fetch(server, "/f.csv", tmp_path, sleeps, retries=3, backoff_s=1)
    assert sleeps == [1, 2, 4]
    assert len(server.requests_to("/f.csv")) == 4
    assert leftovers(tmp_path) == []


def test_404_fails_at_once(server, tmp_path, sleeps):
    with pytest.raises(FetchError, match=r"demo_source: http://127\.0\.0\.1:\d+/gone\.csv.*404"):
        fetch(server, "/gone.csv", tmp_path, sleeps)
    assert sleeps == []
    assert len(server.requests_to("/gone.csv")) == 1


def test_truncated_body_is_retried_then_fails_without_leftovers(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(body=CSV, content_length=len(CSV) + 500))
    with pytest.raises(FetchError, match=r"truncated.*received \d+ of \d+ bytes"):
        fetch(server, "/f.csv", tmp_path, sleeps, retries=1)
    assert len(server.requests_to("/f.csv")) == 2
    assert leftovers(tmp_path) == []


def test_connection_reset_mid_body_is_retried(server, tmp_path, sleeps):
    body = CSV * 2000
    server.route("/f.csv", Reply(body=body, reset_after=1000), Reply(body=body))
    result = fetch(server, "/f.csv", tmp_path, sleeps)
    assert result.body_path.read_bytes() == body
    assert len(server.requests_to("/f.csv")) == 2 and len(sleeps) == 1
    assert leftovers(tmp_path) == [result.body_path.name]


def test_read_timeout_when_server_stalls(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(body=CSV, delay_s=3))
    with pytest.raises(FetchError, match=r"demo_source.*after 2 attempt.*(?i:timed out|timeout)"):
        fetch(server, "/f.csv", tmp_path, sleeps, retries=1, read_timeout=0.2)
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path, sleeps):
    url = f"http://127.0.0.1:{closed_port()}/f.csv"
    with pytest.raises(FetchError, match=r"demo_source.*after 2 attempt.*(?i:refused|connect)"):
        download(
            url, tmp_path, slug="demo_source", expected_format="csv", retries=1, sleep=sleeps.append
        )
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xef\xbb\xbf  \n<!DOCTYPE html><html><body>Maintenance</body></html>", "text/csv"),
        (b"<HTML><head><title>Erreur</title></head></HTML>", "application/octet-stream"),
        (b"code;libelle\n", "text/html; charset=utf-8"),
    ],
)
def test_html_page_served_instead_of_csv(server, tmp_path, sleeps, body, content_type):
    server.route("/f.csv", Reply(body=body, headers={"Content-Type": content_type}))
    with pytest.raises(FetchError, match="served an HTML page instead of a CSV file"):
        fetch(server, "/f.csv", tmp_path, sleeps)
    assert sleeps == [] and leftovers(tmp_path) == []


def test_content_length_above_cap_rejected_before_reading(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(body=CSV * 100))
    with pytest.raises(FetchError, match=r"Content-Length \d+ bytes exceeds the 1000-byte"):
        fetch(server, "/f.csv", tmp_path, sleeps, max_bytes=1000)
    assert sleeps == [] and leftovers(tmp_path) == []


def test_chunked_body_above_cap_aborts(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(body=b"a;b\n" * 100_000, chunked=True, chunk_size=4096))
    with pytest.raises(FetchError, match=r"body exceeds the 50000-byte download cap"):
        fetch(server, "/f.csv", tmp_path, sleeps, max_bytes=50_000)
    assert sleeps == [] and leftovers(tmp_path) == []


def test_redirect_within_allowed_hosts_is_followed(server, tmp_path, sleeps):
    server.route("/old.csv", Reply(status=302, headers={"Location": "/new.csv"}))
    server.route("/new.csv", Reply(body=CSV))
    result = fetch(server, "/old.csv", tmp_path, sleeps)
    assert result.final_url == server.url("/new.csv")
    assert result.url == server.url("/old.csv")


def test_redirect_to_a_host_not_allowed_is_refused(server, tmp_path, sleeps):
    server.route("/f.csv", Reply(status=302, headers={"Location": "http://evil.invalid/f.csv"}))
    with pytest.raises(FetchError, match=r"redirect to host 'evil.invalid' refused"):
        fetch(server, "/f.csv", tmp_path, sleeps)
    assert sleeps == []


def test_redirect_loop(server, tmp_path, sleeps):
    server.route("/loop", Reply(status=301, headers={"Location": "/loop"}))
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(server, "/loop", tmp_path, sleeps)
    assert sleeps == []


def test_credentials_stay_on_their_host_and_out_of_errors(server, tmp_path, sleeps):
    other = server.url("/b.csv", host="localhost")
    server.route("/a.csv", Reply(status=307, headers={"Location": other}))
    server.route("/b.csv", Reply(status=401))
    with pytest.raises(FetchError) as caught:
        fetch(
            server,
            "/a.csv?token=abc123",
            tmp_path,
            sleeps,
            allowed_hosts=frozenset({"127.0.0.1", "localhost"}),
            headers={"Authorization": "Bearer s3cret"},
        )
    assert "401" in str(caught.value)
    assert "s3cret" not in str(caught.value) and "abc123" not in str(caught.value)
    first, second = server.requests
    assert first.headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in second.headers


def test_initial_host_must_be_allowed(tmp_path, sleeps):
    with pytest.raises(FetchError, match="not among the source's allowed hosts"):
        download(
            "https://example.org/f.csv",
            tmp_path,
            slug="demo_source",
            expected_format="csv",
            allowed_hosts=LOCAL,
            sleep=sleeps.append,
        )


@pytest.mark.parametrize(
    ("fmt", "body", "ok"),
    [
        ("xlsx", b"id;name\n1;a\n", False),
        ("xlsx", XLSX_LIKE, True),
        ("zip", XLSX_LIKE, True),
        ("xls", b"PK\x03\x04rest", False),
        ("xls", bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 64, True),
        ("json", b'\xef\xbb\xbf\n  {"a": 1}', True),
        ("json", b"a,b\n", False),
    ],
)
def test_magic_numbers(server, tmp_path, sleeps, fmt, body, ok):
    server.route("/file", Reply(body=body))
    if ok:
        assert fetch(server, "/file", tmp_path, sleeps, expected_format=fmt).size == len(body)
    else:
        with pytest.raises(FetchError, match=f"demo_source.*expected an? {fmt.upper()}"):
            fetch(server, "/file", tmp_path, sleeps, expected_format=fmt)
        assert leftovers(tmp_path) == []
