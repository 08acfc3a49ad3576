"""The report page: plain HTML, the tables written here, the charts drawn by vega-embed.

The Vega, Vega-Lite and vega-embed libraries come from the `vl-convert-python` package
(`vl_convert.javascript_bundle()`, the versions that package pins), inlined in a <script>,
so the page has no external resource and opens from a file:// URL. Nothing on the page
names a remote address: source URLs stay in the manifest.
"""

from __future__ import annotations

import functools
import html
import json

SCRIPT_END = "</script"
FINGERPRINT_META = "tremplin-report-inputs"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> tuple[str, dict[str, str]]:
    """The inlined JavaScript and the library versions it holds."""
    import vl_convert

    versions = {
        "vega": vl_convert.get_vega_version(),
        "vega-lite": vl_convert.get_vegalite_versions()[-1],
        "vega-embed": vl_convert.get_vega_embed_version(),
        "vl-convert-python": vl_convert.__version__,
    }
    bundle = vl_convert.javascript_bundle()
    return bundle.replace(SCRIPT_END, "<\\/script"), versions


def _json_for_script(payload) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list], classes: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _number(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u202f")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return f"{value:.{digits}f}" if isinstance(value, float) else _e(value)


def _synthetic_badge(flag: bool) -> str:
    return '<span class="synthetic">synthetic</span>' if flag else "real"


def freshness_section(sources: list[dict], periods: dict) -> str:
    rows = [
        [
            f"<code>{_e(s['slug'])}</code>",
            _e(s["publisher"]),
            _e(s["title"]),
            _e(s["licence"]),
            _e(s["mode"]),
            _synthetic_badge(s["synthetic"]),
            _e(s["last_fetched"] or "—"),
            _e(", ".join(s["file_names"][:3]) + (" …" if len(s["file_names"]) > 3 else "")),
        ]
        for s in sources
    ]
    table = _table(
        ["source", "publisher", "dataset", "licence", "mode", "data", "fetched", "files"], rows
    )
    period_rows = [[_e(k), _e(v if v is not None else "—")] for k, v in periods.items()]
    return (
        "<h2>Sources and freshness</h2>"
        "<p>From the vintage's <code>manifest.json</code>: each source's files, when they were "
        "fetched, and whether they are real or synthetic; then the periods the values cover.</p>"
        + (table if rows else "<p>The manifest lists no sources.</p>")
        + _table(["period", "value"], period_rows, "narrow")
    )


def changes_section(changes: dict) -> str:
    if changes.get("error"):
        return (
            "<h2>Changes since the previous vintage</h2>"
            f"<p>Could not compare with {_e(changes['previous'])}: {_e(changes['error'])}</p>"
        )
    if not changes.get("previous"):
        return (
            "<h2>Changes since the previous vintage</h2>"
            "<p>This is the first vintage in its directory: nothing to compare.</p>"
        )
    rows = []
    for table in changes["tables"]:
        if "only_in" in table:
            where = "added in this vintage" if table["only_in"] == "new" else "dropped"
            rows.append([f"<code>{_e(table['table'])}</code>", _e(where), "", "", "", ""])
            continue
        fields = "<br>".join(
            f"<code>{_e(f['field'])}</code> {f['changed']:,} "
            + (f"<span class='muted'>(e.g. {_e(f['example'])})</span>" if f["example"] else "")
            for f in table["fields"]
        )
        if table["more_fields"]:
            fields += f"<br><span class='muted'>+{table['more_fields']} more fields</span>"
        for label in ("fields_added", "fields_removed"):
            if table[label]:
                fields += f"<br>{_e(label.replace('_', ' '))}: " + ", ".join(
                    f"<code>{_e(c)}</code>" for c in table[label]
                )
        rows.append(
            [
                f"<code>{_e(table['table'])}</code>",
                f"{_number(table['rows_old'])} → {_number(table['rows_new'])}",
                _number(table["added"]),
                _number(table["removed"]),
                _number(table["changed_rows"]),
                fields or "<span class='muted'>no change</span>",
            ]
        )
    return (
        f"<h2>Changes since the previous vintage ({_e(changes['previous'])})</h2>"
        "<p>As <code>tremplin diff</code> reports them: rows matched by key, fields with the "
        "most changed values.</p>"
        + _table(["table", "rows", "added", "removed", "changed rows", "fields changed"], rows)
    )


def headlines_table(comparison: list[dict]) -> str:
    rows = []
    for row in comparison:
        inside = row["low"] is not None and row["low"] <= row["published"] <= row["high"]
        rows.append(
            [
                _e(row["area"]),
                _e(row["survey_year"]),
                _e(row["measure"]),
                _number(row["estimate"]),
                f"{_number(row['low'])} – {_number(row['high'])}",
                _number(row["published"]),
                "yes" if inside else "<strong>no</strong>",
                _e(f"{row['publisher']}, {row['publication']} ({row['published_on']})"),
            ]
        )
    return _table(
        ["area", "year", "measure", "estimate", "bounds", "published", "within", "publication"],
        rows,
    )


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fff; }
header { background: #1f3b57; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 2px 0; font-size: 14px; }
main { padding: 8px 28px 40px 28px; max-width: 1280px; }
h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f5f7; }
table.narrow { min-width: 360px; }
code { font-size: 12px; }
.muted { color: #777; }
.banner { background: #fff4ce; border: 1px solid #e0c068; padding: 8px 12px; margin: 12px 0; }
.held { background: #fde2e1; border: 1px solid #d9534f; padding: 8px 12px; margin: 12px 0; }
.synthetic { background: #fff4ce; border: 1px solid #e0c068; border-radius: 3px;
             padding: 0 4px; font-size: 12px; }
.chart { margin: 8px 0 16px 0; }
.vega-bindings { margin: 6px 0; font-size: 14px; }
.vega-bind { margin: 4px 0; }
.vega-bind select { font-size: 14px; max-width: 520px; }
footer { color: #777; font-size: 12px; margin-top: 32px; }
"""


def render_page(
    *,
    manifest: dict,
    publication: dict,
    synthetic_note: str | None,
    explorer: dict,
    headlines: dict | None,
    comparison: list[dict],
    sources: list[dict],
    periods: dict,
    changes: dict,
    fingerprint: str,
) -> str:
    bundle, versions = vega_bundle()
    vintage = manifest.get("vintage", "?")
    rows = ", ".join(
        f"{name} {entry.get('rows', 0):,}" for name, entry in sorted(manifest["tables"].items())
    )
    status = publication["status"]
    held = (
        f'<div class="held"><strong>Held by the publication gate</strong> (not <code>latest'
        f"</code>): {_e('; '.join(publication['reasons']))}</div>"
        if status == "held"
        else ""
    )
    banner = f'<div class="banner">{synthetic_note}</div>' if synthetic_note else ""
    headlines_html = (
        '<div id="headlines" class="chart"></div>' + headlines_table(comparison)
        if headlines
        else "<p>No published headline of France Travail matches this vintage's survey "
        "years and areas.</p>"
    )
    specs = {"explorer": explorer}
    if headlines:
        specs["headlines"] = headlines
    library = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="{FINGERPRINT_META}" content="{_e(fingerprint)}">
<meta name="tremplin-vintage" content="{_e(vintage)}">
<title>tremplin — export vintage {_e(vintage)}</title>
<style>{STYLE}</style>
<script>
// Vega, Vega-Lite and vega-embed ({_e(library)}), inlined from vl-convert-python.
{bundle}
</script>
</head>
<body>
<header>
<h1>tremplin — export vintage {_e(vintage)}</h1>
<p>Created {_e(manifest.get("created_at", "?"))} · status: {_e(status)} · content sha256
<code>{_e(str(manifest.get("content_sha256", ""))[:16])}</code></p>
<p>Rows: {_e(rows)}</p>
</header>
<main>
{held}{banner}
<h2>Départements</h2>
<p>Pick the indicator to map; click a département on the map (or pick it in the selector) to
see its job groups. Each title says where its values come from.</p>
<div id="explorer" class="chart"></div>
<h2>BMO headlines against the publisher</h2>
<p>The vintage's <code>hiring_headlines</code> (masked cells entering with their estimates)
next to France Travail's own headline figures, as recorded with their publications in
<code>dbt_project/seeds/bmo_published_headlines.csv</code>.</p>
{headlines_html}
{freshness_section(sources, periods)}
{changes_section(changes)}
<footer>Generated by <code>tremplin report</code> from the files of this vintage only. Charts:
{_e(library)}. Boundaries: IGN Admin Express COG 2018 via france-geojson, Licence Ouverte
(simplified; see <code>warehouse/mirror/geo_departements/PROVENANCE.md</code>).</footer>
</main>
<script>
const SPECS = {_json_for_script(specs)};
window.tremplinReport = {{ready: false, errors: [], views: {{}}}};
Promise.all(Object.entries(SPECS).map(([id, spec]) =>
  vegaEmbed("#" + id, spec, {{actions: false, renderer: "svg"}}).then(result => {{
    window.tremplinReport.views[id] = result.view;
  }})
)).then(() => {{ window.tremplinReport.ready = true; }})
  .catch(error => {{ window.tremplinReport.errors.push(String(error)); console.error(error); }});
</script>
</body>
</html>
"""
