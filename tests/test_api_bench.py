"""`make bench-api` end to end on a tiny vintage, one second per run: both back ends
answer under wrk, and the vintage published mid-load is served with no failed request."""

from __future__ import annotations

import pytest
from serving_vintages import make_vintage

from pipelines.api.bench import format_report, run_bench

pytestmark = pytest.mark.postgres


def test_bench_api_smoke(tmp_path, postgres_dsn):
    exports = tmp_path / "exports"
    make_vintage(exports, 0)
    report = run_bench(duration=1, exports_dir=exports)
    assert set(report["backends"]) == {"files", "postgres"}
    for results in report["backends"].values():
        for name, result in results.items():
            assert result["requests"] > 0 and result["failed"] == 0, name
        assert results["key lookups, new vintage mid-load"]["switched"]
    text = format_report(report)
    assert "key lookups at" in text and "mid-load publication: 0 failed" in text
