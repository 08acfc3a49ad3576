"""The read-only API over the export files: records byte for byte, pages and filters,
caching headers, errors that name the parameter, hostile input never a 500, a new vintage
picked up without a restart, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from serving_vintages import make_vintage

from assets.serving.files_store import FilesStore
from assets.serving.pg_server import free_port
from assets.serving.tables import SERVED_TABLES
from pipelines.api.app import MAX_QUERY_BYTES, create_app
from pipelines.api.openapi import VINTAGE_HEADER


def lines(exports: Path, table: str) -> list[bytes]:
    return (exports / "latest" / f"{table}.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    exports_dir = tmp_path_factory.mktemp("api") / "exports"
    make_vintage(exports_dir, 0)
    return exports_dir


@pytest.fixture(scope="module")
def client(exports):
    with TestClient(create_app(FilesStore(exports))) as test_client:
        yield test_client


def test_every_record_by_key_is_the_exported_line(client, exports):
    vintage = json.loads((exports / "latest" / "manifest.json").read_text())["vintage"]
    for spec in SERVED_TABLES:
        if spec.key_field is None:
            continue
        for line in lines(exports, spec.table):
            key = json.loads(line)[spec.key_field]
            response = client.get(f"/v1/{spec.path}/{key}")
            assert response.status_code == 200, (spec.table, key, response.text)
            assert response.content == line
            assert response.headers[VINTAGE_HEADER] == vintage
            assert response.headers["etag"].startswith('W/"')
            assert response.headers["cache-control"] == "public, max-age=300"
            assert response.headers["content-type"] == "application/json"


def _walk(client, url: str, limit: int) -> list[bytes]:
    items, offset = [], 0
    while True:
        separator = "&" if "?" in url else "?"
        page = client.get(f"{url}{separator}limit={limit}&offset={offset}")
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["limit"] == limit and body["offset"] == offset
        items += [json.dumps(item, ensure_ascii=False) for item in body["items"]]
        if body["next"] is None:
            return items
        offset = body["next"]


def _canonical(line: bytes) -> str:
    return json.dumps(json.loads(line), ensure_ascii=False)


def test_pages_walk_every_record_in_key_order(client, exports):
    records = [json.loads(line) for line in lines(exports, "local_diagnosis")]
    ordered = sorted(records, key=lambda r: r["diagnosisKey"])
    expected = [json.dumps(r, ensure_ascii=False) for r in ordered]
    assert _walk(client, "/v1/local-diagnosis", 5) == expected
    in_69 = [json.dumps(r, ensure_ascii=False) for r in ordered if r["departementCode"] == "69"]
    assert _walk(client, "/v1/local-diagnosis?departementCode=69", 2) == in_69
    both = [
        json.dumps(r, ensure_ascii=False)
        for r in ordered
        if r["jobGroupCode"] == "M1805" and r["regionCode"] == "84"
    ]
    assert len(both) == 2
    assert _walk(client, "/v1/local-diagnosis?jobGroupCode=M1805&regionCode=84", 1) == both
    headlines = client.get("/v1/hiring-headlines?surveyYear=2023&scope=departement").json()
    assert [r["areaCode"] for r in headlines["items"]] == ["01", "2A", "69", "971"]
    assert client.get("/v1/departements?regionCode=52").json()["items"] == []


def test_if_none_match_is_answered_304_and_a_changed_tag_is_not(client):
    first = client.get("/v1/regions/84")
    etag = first.headers["etag"]
    again = client.get("/v1/regions/84", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers[VINTAGE_HEADER]
    other = client.get("/v1/regions/84", headers={"If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200 and other.content == first.content
    assert client.head("/v1/regions/84").status_code == 200


def test_errors_are_json_and_name_the_parameter(client):
    missing = client.get("/v1/local-diagnosis/69:M9999")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found" and "69:M9999" in missing.json()["detail"]
    for url, parameter in (
        ("/v1/local-diagnosis/69-M1805", "key"),
        ("/v1/local-diagnosis?departementCode=690", "departementCode"),
        ("/v1/local-diagnosis?limit=0", "limit"),
        ("/v1/local-diagnosis?limit=abc", "limit"),
        ("/v1/local-diagnosis?offset=-1", "offset"),
        ("/v1/local-diagnosis?color=red", "color"),
        ("/v1/local-diagnosis?departementCode=01&departementCode=69", "departementCode"),
        ("/v1/hiring-headlines?surveyYear=20x4", "surveyYear"),
        ("/v1/regions/84?verbose=1", "verbose"),
    ):
        response = client.get(url)
        assert response.status_code == 422, url
        assert response.json()["parameter"] == parameter, url
    assert client.get("/v1/nowhere").status_code == 404


HOSTILE = [
    "' OR '1'='1",
    "1; DROP TABLE local_diagnosis; --",
    "69:M1805' UNION SELECT pg_read_file('/etc/passwd')--",
    '"; select 1; --',
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\x00",
    "69:M1805\n",
    "ＭＩＸ",
    "💥" * 30,
    "A" * 5000,
    "$(reboot)",
    "{{7*7}}",
]


def test_hostile_values_in_every_parameter_are_4xx(client):
    for spec in SERVED_TABLES:
        params = [f.param for f in spec.filters] + ["limit", "offset", "anything"]
        for payload in HOSTILE:
            for param in params:
                response = client.get(f"/v1/{spec.path}", params={param: payload})
                assert 400 <= response.status_code < 500, (spec.path, param, payload)
            if spec.key_field:
                response = client.get(f"/v1/{spec.path}/{quote(payload, safe='/.%')}")
                assert 400 <= response.status_code < 500, (spec.path, payload)
    for payload in HOSTILE:
        response = client.get("/v1/manifest", params={"x": payload})
        assert 400 <= response.status_code < 500


def test_oversized_query_strings_and_other_methods_are_refused(client):
    assert client.get("/v1/regions?regionCode=" + "8" * MAX_QUERY_BYTES).status_code == 414
    assert client.get("/v1/" + "a" * 2000).status_code == 414
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"):
        response = client.request(method, "/v1/regions/84")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, HEAD"


def test_health_and_manifest(client, exports):
    health = client.get("/health").json()
    manifest = json.loads((exports / "latest" / "manifest.json").read_text())
    assert health["status"] == "ok" and health["backend"] == "files"
    assert health["vintage"] == manifest["vintage"] and health["ageSeconds"] > 0
    assert health["sources"][0]["slug"] == "francetravail_bmo"
    assert health["sources"][0]["lastFetchedAt"] == "2026-01-04T06:00:00Z"
    assert health["rows"]["local_diagnosis"] == 12
    assert client.get("/v1/manifest").content == (exports / "latest" / "manifest.json").read_bytes()


def test_openapi_records_are_the_export_schemas(client, exports):
    document = client.get("/openapi.json").json()
    for spec in SERVED_TABLES:
        schema = json.loads((exports / "latest" / f"{spec.table}.schema.json").read_text())
        schema.pop("$schema")
        assert document["components"]["schemas"][spec.table] == schema
    assert "/v1/local-diagnosis/{key}" in document["paths"]
    assert "/v1/hiring-headlines/{key}" not in document["paths"]


def test_a_new_vintage_is_served_without_a_restart(tmp_path):
    exports_dir = tmp_path / "exports"
    first = make_vintage(exports_dir, 0)
    store = FilesStore(exports_dir)
    with TestClient(create_app(store)) as client:
        old = client.get("/v1/local-diagnosis/69:M1805")
        assert old.headers[VINTAGE_HEADER] == first
        second = make_vintage(exports_dir, 1)
        store.wait_for(second, timeout_s=20)
        new = client.get("/v1/local-diagnosis/69:M1805")
        assert new.headers[VINTAGE_HEADER] == second
        assert new.content == next(
            line for line in lines(exports_dir, "local_diagnosis") if b'"69:M1805"' in line
        )
        assert new.content != old.content and new.headers["etag"] != old.headers["etag"]
        stale = client.get(
            "/v1/local-diagnosis/69:M1805", headers={"If-None-Match": old.headers["etag"]}
        )
        assert stale.status_code == 200


def test_a_real_server_on_loopback(exports):
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(FilesStore(exports)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            response = http.get("/v1/local-diagnosis/01:M1805")
            assert response.status_code == 200
            assert response.content in lines(exports, "local_diagnosis")
            assert http.post("/v1/local-diagnosis/01:M1805").status_code == 405
            assert http.get("/v1/local-diagnosis/01:M1805'--").status_code == 422
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_damaged_new_vintage_is_not_served(tmp_path):
    exports_dir = tmp_path / "exports"
    first = make_vintage(exports_dir, 0)
    store = FilesStore(exports_dir)
    assert store.start().vintage == first
    second = make_vintage(exports_dir, 1)
    with (exports_dir / second / "regions.jsonl").open("a") as handle:
        handle.write("\n")
    deadline = time.monotonic() + 20
    while store._failed != second and time.monotonic() < deadline:
        assert store.snapshot().vintage == first
        time.sleep(0.02)
    assert store._failed == second and store.snapshot().vintage == first


def test_the_duckdb_index_equals_the_line_by_line_one(exports):
    import mmap

    from assets.serving import files_store

    latest = exports / "latest"
    for spec in SERVED_TABLES:
        path = latest / f"{spec.table}.jsonl"
        schema = json.loads((latest / f"{spec.table}.schema.json").read_text())
        keys, params = files_store._fields(spec, schema)
        with path.open("rb") as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            fast = files_store._rows_from_duckdb(path, data, keys, params)
            slow = files_store._rows_from_python(path, data, keys, params)
        assert fast is not None
        assert sorted(fast, key=repr) == sorted(slow, key=repr), spec.table
