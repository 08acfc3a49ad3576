"""PostgreSQL publication and the API over it, against a real throw-away server
(the session fixture `postgres_dsn`): typed tables with keys, the records as jsonb, the
switch, idempotence, rollback, retention, refusals, readers during switches, and the
API giving the records the files give."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from serving_vintages import make_vintage

from assets.export.vintages import LATEST
from assets.serving.files_store import FilesStore
from assets.serving.pg_store import PostgresStore
from assets.serving.postgres import (
    PublishError,
    publish_vintage,
    published_state,
    rollback,
    schema_for,
)
from assets.serving.tables import SERVED_TABLES
from pipelines.api.app import create_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def dsn(postgres_dsn):
    """A database of its own for each test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    yield postgres_dsn.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(postgres_dsn, autocommit=True) as con:
        con.execute(f'drop database "{name}" with (force)')


def jsonl(exports: Path, table: str, vintage: str = LATEST) -> list[dict]:
    text = (exports / vintage / f"{table}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_publish_loads_typed_tables_keys_indexes_and_the_records(tmp_path, dsn):
    exports = tmp_path / "exports"
    vintage = make_vintage(exports, 0)
    result = publish_vintage(dsn, exports)
    assert result.vintage == vintage and result.loaded and result.switched
    schema = schema_for(vintage)
    with psycopg.connect(dsn) as con:
        for spec in SERVED_TABLES:
            records = con.execute(f"select record from tremplin.{spec.table}").fetchall()
            assert sorted(json.dumps(r[0], sort_keys=True) for r in records) == sorted(
                json.dumps(r, sort_keys=True) for r in jsonl(exports, spec.table)
            )
            key = con.execute(
                "select array_agg(a.attname::text order by k.ord) from pg_index i "
                "cross join unnest(i.indkey) with ordinality k(attnum, ord) "
                "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
                "where i.indrelid = %s::regclass and i.indisprimary",
                [f"{schema}.{spec.table}"],
            ).fetchone()[0]
            assert tuple(key) == spec.key
            indexes = con.execute(
                "select count(*) from pg_indexes where schemaname = %s and tablename = %s",
                [schema, spec.table],
            ).fetchone()[0]
            assert indexes == 1 + len(spec.indexes)
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = %s and table_name = 'local_diagnosis'",
                [schema],
            ).fetchall()
        )
        assert types["market__offers_per_10_job_seekers"] == "double precision"
        assert types["market__offers_count"] == "bigint"
        assert types["market__last_quarter_start_date"] == "date"
        assert types["hiring__difficult_pct"] == "numeric"
        assert types["less_stressful__job_groups"] == "jsonb"
        assert types["synthetic"] == "boolean" and types["record"] == "jsonb"
        row = con.execute(
            "select job_group_label, market__offers_per_10_job_seekers, record "
            "from tremplin.local_diagnosis where diagnosis_key = '2A:A1203'"
        ).fetchone()
        exported = next(
            r for r in jsonl(exports, "local_diagnosis") if r["diagnosisKey"] == "2A:A1203"
        )
        assert row[0] == exported["jobGroupLabel"] == "Jardinier\tpaysagiste \\ espaces verts"
        assert row[1] == exported["market"]["offersPer10JobSeekers"]
        assert row[2] == exported
        assert con.execute("select vintage from tremplin.vintage").fetchone()[0] == vintage


def _switches(dsn: str) -> int:
    with psycopg.connect(dsn) as con:
        return con.execute("select count(*) from tremplin_admin.switches").fetchone()[0]


def test_publishing_twice_changes_nothing(tmp_path, dsn):
    exports = tmp_path / "exports"
    make_vintage(exports, 0)
    publish_vintage(dsn, exports)
    before = _switches(dsn)
    again = publish_vintage(dsn, exports)
    assert not again.loaded and not again.switched
    assert _switches(dsn) == before


def test_switch_rollback_and_retention(tmp_path, dsn):
    exports = tmp_path / "exports"
    names = []
    for variant in range(3):
        names.append(make_vintage(exports, variant))
        publish_vintage(dsn, exports, keep=2)
    state = published_state(dsn)
    assert state == {"live": names[2], "kept": names[1:]}
    back = rollback(dsn)
    assert (back.vintage, back.previous) == (names[1], names[2])
    with psycopg.connect(dsn) as con:
        assert con.execute("select vintage from tremplin.vintage").fetchone()[0] == names[1]
        value = con.execute(
            "select record #>> '{market,offersPer10JobSeekers}' "
            "from tremplin.local_diagnosis where diagnosis_key = '01:M1805'"
        ).fetchone()[0]
        assert float(value) == 1.0
    with pytest.raises(PublishError, match="no vintage older"):
        rollback(dsn)
    # Publishing the newest again switches back to it without reloading it.
    again = publish_vintage(dsn, exports, keep=2)
    assert again.switched and not again.loaded and again.vintage == names[2]


def test_held_or_damaged_vintages_are_refused(tmp_path, dsn):
    exports = tmp_path / "exports"
    first = make_vintage(exports, 0)
    publish_vintage(dsn, exports)
    second = make_vintage(exports, 1)
    (exports / second / "publication.json").write_text(
        json.dumps({"status": "held", "reasons": ["median moved 40 %"]})
    )
    with pytest.raises(PublishError, match="held by the publication gate.*median moved"):
        publish_vintage(dsn, exports, second)
    (exports / second / "publication.json").unlink()
    with (exports / second / "regions.jsonl").open("a") as handle:
        handle.write("\n")
    with pytest.raises(PublishError, match="fails `tremplin check`"):
        publish_vintage(dsn, exports, second)
    with pytest.raises(PublishError, match="no vintage"):
        publish_vintage(dsn, exports, "../../etc")
    assert published_state(dsn) == {"live": first, "kept": [first]}


def test_readers_see_one_whole_vintage_during_switches(tmp_path, dsn):
    """Readers poll while the views switch back and forth: no error, and the vintage named
    in the same statement is always the one the record comes from."""
    exports = tmp_path / "exports"
    names = [make_vintage(exports, 0), make_vintage(exports, 1)]
    publish_vintage(dsn, exports, names[0])
    publish_vintage(dsn, exports, names[1])
    variant_of = {names[0]: 0, names[1]: 1}
    stop = threading.Event()
    problems: list[str] = []
    seen: set[str] = set()
    statement = (
        "with v as (select vintage from tremplin.vintage) select v.vintage, "
        "(select t.record #>> '{market,offersPer10JobSeekers}' from tremplin.local_diagnosis t "
        "where t.diagnosis_key = %s) from v"
    )

    def reader(prepare: bool) -> None:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0 if prepare else None) as c:
            while not stop.is_set():
                try:
                    vintage, value = c.execute(statement, ["01:M1805"]).fetchone()
                except psycopg.Error as exc:
                    problems.append(f"error: {exc}")
                    return
                seen.add(vintage)
                if int(float(value)) != variant_of[vintage]:
                    problems.append(f"{vintage} served the record {value}")

    threads = [threading.Thread(target=reader, args=(i % 2 == 0,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(6):
            rollback(dsn)
            publish_vintage(dsn, exports, names[1])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
    assert seen == set(names)


def test_the_api_over_postgres_gives_the_records_of_the_files(tmp_path, dsn):
    exports = tmp_path / "exports"
    make_vintage(exports, 0)
    publish_vintage(dsn, exports)
    urls = ["/v1/local-diagnosis/69:M1805", "/v1/local-diagnosis/971:A1203", "/v1/regions/84"]
    urls += ["/v1/job-group-info/K2204", "/v1/job-groups/A1203", "/v1/best-jobs/2A:all"]
    urls += ["/v1/departements/2A", "/v1/local-diagnosis/01:M9999"]
    for spec in SERVED_TABLES:
        urls.append(f"/v1/{spec.path}?limit=3&offset=1")
        for f in spec.filters:
            value = jsonl(exports, spec.table)[-1][f.param]
            urls.append(f"/v1/{spec.path}?{f.param}={value}&limit=2")
    with (
        TestClient(create_app(FilesStore(exports))) as files,
        TestClient(create_app(PostgresStore(dsn))) as pg,
    ):
        for url in urls:
            a, b = files.get(url), pg.get(url)
            assert a.status_code == b.status_code, url
            assert a.json() == b.json(), url
            assert a.headers.get("x-tremplin-vintage") == b.headers.get("x-tremplin-vintage")
        assert pg.get("/health").json()["backend"] == "postgres"
        assert pg.get("/v1/manifest").json() == files.get("/v1/manifest").json()
        etag = pg.get("/v1/regions/84").headers["etag"]
        assert pg.get("/v1/regions/84", headers={"If-None-Match": etag}).status_code == 304
        assert pg.get("/v1/regions?regionCode=84'; drop table x; --").status_code == 422


def test_concurrent_lookups_share_a_statement_and_get_their_own_records(tmp_path, dsn):
    import asyncio

    exports = tmp_path / "exports"
    vintage = make_vintage(exports, 0)
    publish_vintage(dsn, exports)
    expected = {r["diagnosisKey"]: r for r in jsonl(exports, "local_diagnosis")}
    keys = sorted(expected)[:40] + ["01:M9999", sorted(expected)[0]]  # a miss, a repeat

    async def lookups():
        store = PostgresStore(dsn)
        await store.open()
        statements = []
        execute = store._execute

        async def counting(statement, values=None):
            statements.append(values)
            return await execute(statement, values)

        store._execute = counting
        try:
            answers = await asyncio.gather(*(store.record("local_diagnosis", k) for k in keys))
            alone = await store.record("local_diagnosis", keys[1])
        finally:
            await store.close()
        return answers, alone, statements

    answers, alone, statements = asyncio.run(lookups())
    for key, (meta, record, present) in zip(keys, answers, strict=True):
        assert meta.vintage == vintage and present
        assert (json.loads(record) if record else None) == expected.get(key), key
    assert json.loads(alone[1]) == expected[keys[1]]
    # 42 lookups at once: the first statement and then one for all that waited for it.
    assert len(statements) <= 3, statements


def test_the_dagster_asset_publishes_latest_when_a_dsn_is_set(tmp_path, dsn, monkeypatch):
    import dagster as dg

    from assets.foundation.settings import get_settings
    from assets.serving.asset import build_postgres_asset, publish_enabled

    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.delenv("TREMPLIN_PUBLISH_DSN", raising=False)
    assert not publish_enabled(get_settings())
    vintage = make_vintage(tmp_path / "warehouse" / "exports", 0)
    monkeypatch.setenv("TREMPLIN_PUBLISH_DSN", dsn)
    assert publish_enabled(get_settings())
    result = dg.materialize([build_postgres_asset()])
    assert result.success
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["vintage"].value == vintage and metadata["switched"].value is True
    assert published_state(dsn)["live"] == vintage


def test_the_publish_command(tmp_path, dsn, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.delenv("TREMPLIN_PUBLISH_DSN", raising=False)
    assert main(["publish"]) == 2
    vintage = make_vintage(tmp_path / "warehouse" / "exports", 0)
    monkeypatch.setenv("TREMPLIN_PUBLISH_DSN", dsn)
    assert main(["publish"]) == 0
    assert f"PostgreSQL readers -> {vintage} (was none)" in capsys.readouterr().out
    assert main(["publish"]) == 0
    assert "already live" in capsys.readouterr().out
    assert main(["publish", "--status"]) == 0
    assert json.loads(capsys.readouterr().out) == {"live": vintage, "kept": [vintage]}
    assert main(["publish", "--rollback"]) == 1
    assert "no vintage older" in capsys.readouterr().err
    assert main(["publish", "20200101T000000Z"]) == 1
