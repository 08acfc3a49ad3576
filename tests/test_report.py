"""The vintage report: built from two small real-shaped vintages (tests/report_vintage.py).

The builder tests read the HTML and the Vega-Lite specs it embeds. The `browser` test opens
the page in Debian's headless chromium (playwright driving /usr/bin/chromium, never a
downloaded browser) from a file:// URL with every non-local request refused, and checks
what a person would see: no console error, 101 département shapes, charts drawn, the
selectors working, no network.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from report_vintage import publish_two_vintages

from assets.report import geo
from assets.report.asset import vintages_to_report
from assets.report.build import REPORT_FILE, build_report
from assets.report.changes import previous_vintage
from assets.report.errors import ReportError
from pipelines import cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BAR_SELECTOR = "#explorer g.mark-rect[class*='job_projects'] > path"
BARS_JS = (
    f"Array.from(document.querySelectorAll({json.dumps(BAR_SELECTOR)}))"
    ".map(p => p.getAttribute('d')).join()"
)
SPECS = re.compile(r"const SPECS = (\{.*?\});\n", re.S)


@pytest.fixture(scope="module")
def vintages(tmp_path_factory) -> tuple[Path, Path]:
    return publish_two_vintages(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(vintages) -> Path:
    return build_report(vintages[1]).path


def page_parts(path: Path) -> tuple[str, dict]:
    """The page without the inlined library bundle, and its Vega-Lite specs."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("<script>\n// Vega, Vega-Lite and vega-embed")
    _, _, tail = rest.partition("</script>")
    specs = json.loads(SPECS.search(tail).group(1).replace("<\\/", "</"))
    return head + tail, specs


def map_layer(spec: dict) -> dict:
    layers = spec["vconcat"][0]["hconcat"][0]["layer"]
    return next(layer for layer in layers if layer.get("name", "").startswith("departements"))


def test_the_boundaries_are_the_101_departements_with_overseas_insets() -> None:
    features = geo.load_boundaries()
    codes = [f["properties"]["code"] for f in features]
    assert len(codes) == 101 == len(set(codes))
    assert {"01", "2A", "2B", "95", "971", "972", "973", "974", "976"} <= set(codes)
    for feature in features:
        xs = [p[0] for p in geo._points(feature["geometry"]["coordinates"])]
        if feature["properties"]["overseas"]:
            x0, _, x1, _ = feature["properties"]["box"]
            assert x0 <= min(xs) and max(xs) <= x1  # drawn inside its inset, west of France
        else:
            assert min(xs) > -6 and max(xs) < 6
    assert len(geo.inset_frames(features)) == 5


def test_report_is_written_beside_the_vintage_with_101_shapes_and_no_remote_address(
    vintages, report
) -> None:
    assert report == vintages[1] / REPORT_FILE
    page, specs = page_parts(report)
    assert map_layer(specs["explorer"])["data"] == {"name": "shapes"}
    shapes = specs["explorer"]["datasets"]["shapes"]
    assert len(shapes) == 101
    assert len({s["properties"]["code"] for s in shapes}) == 101
    # Nothing outside the inlined library names a remote address, and nothing loads one.
    assert not re.search(r"https?://", page), re.search(r".{60}https?://.{60}", page).group(0)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    assert '"url"' not in json.dumps(specs)
    # Values reach the map: Paris's unemployment rate of the newer vintage, Mayotte's none.
    paris = next(s for s in shapes if s["properties"]["code"] == "75")
    mayotte = next(s for s in shapes if s["properties"]["code"] == "976")
    assert paris["properties"]["v_unemployment_pct"] == 9.9
    assert mayotte["properties"]["v_unemployment_pct"] is None
    assert mayotte["properties"]["v_difficult_pct"] is not None


def test_synthetic_values_are_labelled_and_real_ones_are_not(report) -> None:
    page, specs = page_parts(report)
    assert "Part of this vintage is synthetic" in page
    assert "francetravail_marche_travail" in page
    params = {p["name"]: p for p in specs["explorer"]["params"]}
    labels = dict(
        zip(
            params["indicator"]["bind"]["options"],
            params["indicator"]["bind"]["labels"],
            strict=True,
        )
    )
    assert labels["offers_per_10"].endswith("(synthetic data)")
    assert not any("synthetic" in labels[k] for k in ("unemployment_pct", "difficult_pct"))


def test_headlines_changes_and_freshness(vintages, report) -> None:
    page, specs = page_parts(report)
    published = [
        v for v in specs["headlines"]["datasets"]["headlines"] if v["series"] == "published"
    ]
    assert {(v["area"], v["measure"]) for v in published} >= {
        ("France", "Difficult hiring (%)"),
        ("Bourgogne-Franche-Comté", "Recruitment projects"),
    }
    assert f"Changes since the previous vintage ({vintages[0].name})" in page
    assert "unemployment__rate_pct" in page  # the one field that changed
    assert "Base_open_data_BMO_2024.xlsx" in page and "2026-02-28T10:00:00Z" in page


def test_rebuilding_is_skipped_and_the_first_vintage_has_nothing_to_compare(
    vintages, report
) -> None:
    before = report.stat().st_mtime_ns
    again = build_report(vintages[1])
    assert again.unchanged and report.stat().st_mtime_ns == before
    forced = build_report(vintages[1], vintages[1].parent / "copy.html", force=True)
    assert forced.path.read_bytes() == report.read_bytes()  # deterministic
    assert previous_vintage(vintages[0]) is None
    first = build_report(vintages[0], vintages[0].parent / "first.html")
    assert "nothing to compare" in first.path.read_text(encoding="utf-8")


def test_asset_targets_latest_and_the_cli_reports_a_vintage(vintages, monkeypatch, capsys):
    exports = vintages[1].parent
    assert vintages_to_report(exports) == [exports / vintages[1].name]
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(exports.parent))
    assert cli.main(["report", "--vintage", vintages[0].name]) == 0
    assert (vintages[0] / REPORT_FILE).is_file()
    assert vintages[0].name in capsys.readouterr().out
    assert cli.main(["report", "--vintage", "19990101T000000Z"]) == 2


def test_the_dagster_asset_reports_latest_and_a_held_vintage(vintages, monkeypatch) -> None:
    import dagster as dg

    from assets.export.vintages import PUBLICATION, switch_latest
    from assets.report.asset import build_report_asset

    exports = vintages[1].parent
    monkeypatch.setenv("TREMPLIN_WAREHOUSE_DIR", str(exports.parent))
    # The newer vintage held by the gate: latest stays on the older one, both get a report.
    switch_latest(exports, vintages[0].name)
    (vintages[1] / PUBLICATION).write_text('{"status": "held", "reasons": ["test"]}')
    try:
        result = dg.materialize([build_report_asset()])
        assert result.success
        (event,) = result.get_asset_materialization_events()
        reports = event.step_materialization_data.materialization.metadata["reports"].value
        assert set(reports) == {vintages[0].name, vintages[1].name}
        held_page = (vintages[1] / REPORT_FILE).read_text(encoding="utf-8")
        assert "Held by the publication gate" in held_page
    finally:
        (vintages[1] / PUBLICATION).unlink()
        switch_latest(exports, vintages[1].name)


def test_a_vintage_without_a_needed_table_is_a_clear_error(vintages, tmp_path) -> None:
    manifest = json.loads((vintages[1] / "manifest.json").read_text(encoding="utf-8"))
    del manifest["tables"]["hiring_headlines"]
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in vintages[1].iterdir():
        if path.suffix in (".parquet", ".json"):
            (broken / path.name).symlink_to(path)
    (broken / "manifest.json").unlink()
    (broken / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ReportError, match="hiring_headlines"):
        build_report(broken)


# ------------------------------------------------------------------------------ browser


@pytest.mark.browser
def test_report_renders_in_headless_chromium_offline(report, tmp_path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (make browser)")
        pytest.skip(f"{CHROMIUM} is not installed (`make browser` installs it)")
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        # A persistent context is how playwright takes a fresh --user-data-dir.
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            # Anything that is not the file itself or loopback is refused (and recorded).
            context.route(
                re.compile(r"^(https?|wss?)://(?!127\.0\.0\.1|localhost)"),
                lambda route: route.abort(),
            )
            page.goto(report.as_uri())
            page.wait_for_function(
                "window.tremplinReport && (window.tremplinReport.ready"
                " || window.tremplinReport.errors.length > 0)",
                timeout=30_000,
            )
            assert page.evaluate("window.tremplinReport.errors") == []

            shapes = page.locator("#explorer g.mark-shape[class*='departements'] > path")
            assert shapes.count() == 101
            # Every chart drew something: non-white pixels on a canvas rendering of its view.
            for view in ("explorer", "headlines"):
                inked = page.evaluate(
                    """async (name) => {
                        const canvas = await window.tremplinReport.views[name].toCanvas();
                        const ctx = canvas.getContext('2d');
                        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                        let n = 0;
                        for (let i = 0; i < px.length; i += 4) {
                            const ink = px[i] < 235 || px[i + 1] < 235 || px[i + 2] < 235;
                            if (px[i + 3] > 0 && ink) n++;
                        }
                        return n;
                    }""",
                    view,
                )
                assert inked > 5_000, f"{view} looks blank ({inked} inked pixels)"
            bars = page.locator(BAR_SELECTOR)
            assert bars.count() == 3  # Paris's three job groups

            fills = lambda: shapes.evaluate_all("ps => ps.map(p => p.getAttribute('fill'))")  # noqa: E731
            before = fills()
            page.select_option("#explorer select[name='indicator']", "unemployment_pct")
            page.wait_for_function(
                "document.querySelector('#explorer').textContent.includes('Unemployment rate')"
            )
            assert fills() != before and shapes.count() == 101
            assert "#d9d9d9" in fills()  # Mayotte: no rate, grey

            # Picking another département (selector, then a click on the map) redraws its
            # job groups: the fixture gives each département its own project counts.
            bar_shapes = lambda: bars.evaluate_all("ps => ps.map(p => p.getAttribute('d'))")  # noqa: E731
            paris = bar_shapes()
            page.select_option("#explorer select[name='dep_code']", "2A")
            page.wait_for_function(f"{json.dumps(paris)}.join() !== " + BARS_JS)
            corsica = bar_shapes()
            assert bars.count() == 3 and corsica != paris
            shapes.nth(0).click()  # 01 Ain (the paths are in code order)
            page.wait_for_function(f"{json.dumps(corsica)}.join() !== " + BARS_JS)
            assert bars.count() == 3

            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            context.close()
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert errors == []
    remote = [u for u in requests if not u.startswith(("file://", "data:", "blob:"))]
    assert remote == [], remote
    assert time.monotonic() - started < 60
