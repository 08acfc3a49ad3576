"""The visual report of an export vintage: one self-contained HTML page beside its files.

`build_report(vintage_dir)` reads only what the vintage holds (Parquet, JSON Schemas,
manifest) plus the committed département boundaries, and writes `report.html` with the
Vega, Vega-Lite and vega-embed JavaScript inlined, so the page works offline from a file://
URL. One module per concern: geo (boundaries and overseas insets), figures (what the page
shows, read from the vintage), provenance (source freshness, synthetic fields), changes
(against the previous vintage), charts (Vega-Lite specs), page (HTML), build (the whole).
"""
