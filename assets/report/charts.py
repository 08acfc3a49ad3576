"""The report's charts, as Vega-Lite specifications built with Altair.

Two interactive views and one static one:
* the explorer: the map of the 101 départements coloured by the indicator chosen in a
  selector, the départements ranked by it (with its bounds where the indicator has some),
  and, for the département picked on the map or in a second selector, its job groups with
  the most BMO recruitment projects and their shrunk difficult-hiring shares with 80 %
  intervals;
* the BMO headlines of the vintage against France Travail's published figures.

Everything is inline data: no spec refers to a URL, so the page needs no network.
"""

from __future__ import annotations

import dataclasses

import altair as alt

MAP_MARK = "departements"
JOBS_MARK = "job_projects"
MAP_WIDTH = 520
MAP_HEIGHT = 470
NO_DATA = "#d9d9d9"


@dataclasses.dataclass(frozen=True)
class Indicator:
    key: str
    label: str
    source: str
    synthetic: bool = False
    low: str | None = None
    high: str | None = None
    scheme: str = "blues"

    @property
    def title(self) -> str:
        return f"{self.label} (synthetic data)" if self.synthetic else self.label


def indicators(market_synthetic: bool) -> list[Indicator]:
    return [
        Indicator(
            "dares_tension",
            "Market tension: DARES tension index, median of the job groups",
            "DARES tensions (real)",
            scheme="orangered",
        ),
        Indicator(
            "unemployment_pct",
            "Unemployment rate (%)",
            "INSEE localised unemployment (real)",
            scheme="purples",
        ),
        Indicator(
            "difficult_pct",
            "Difficult-hiring share of BMO projects (%)",
            "France Travail BMO (real); bounds from statistical secrecy",
            low="difficult_low",
            high="difficult_high",
            scheme="reds",
        ),
        Indicator(
            "offers_per_10",
            "Offers per 10 job seekers (job groups with a local cell)",
            "France Travail 'Marché du travail' API"
            + (" (synthetic in this vintage)" if market_synthetic else ""),
            synthetic=market_synthetic,
            scheme="greens",
        ),
    ]


def _by_indicator(items: list[Indicator], attribute: str, default: str = "null") -> str:
    """A Vega expression picking `attribute` of the indicator the selector holds."""
    expression = default
    for item in reversed(items):
        value = getattr(item, attribute)
        literal = (
            default
            if value is None
            else "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
        )
        expression = f"indicator == '{item.key}' ? {literal} : ({expression})"
    return expression


def _flatten(rows: list[dict], items: list[Indicator]) -> list[dict]:
    flat = []
    for row in rows:
        record = {"code": row["code"], "name": row.get("name") or row["code"]}
        record["region"] = row.get("region_name") or ""
        for item in items:
            record[f"v_{item.key}"] = row.get(item.key)
            if item.low and item.high:
                record[f"lo_{item.key}"] = row.get(item.low)
                record[f"hi_{item.key}"] = row.get(item.high)
        flat.append(record)
    return flat


def explorer_spec(
    features: list[dict],
    frames: list[dict],
    departements: list[dict],
    jobs: list[dict],
    items: list[Indicator],
    default_departement: str,
) -> dict:
    """Map + ranking + the picked département's top job groups, as one Vega-Lite spec."""
    flat = {r["code"]: r for r in _flatten(departements, items)}
    shapes = []
    for feature in features:
        code = feature["properties"]["code"]
        properties = {**feature["properties"], **flat.get(code, {})}
        properties.pop("box", None)
        shapes.append({**feature, "properties": properties})
    names = {r["code"]: r["name"] for r in flat.values()}
    codes = sorted(names)

    indicator = alt.param(
        name="indicator",
        value=items[0].key,
        bind=alt.binding_select(
            options=[i.key for i in items], labels=[i.title for i in items], name="Indicator  "
        ),
    )
    departement = alt.selection_point(
        name="dep",
        fields=["code"],
        on="click",
        clear=False,
        value=[{"code": default_departement}],
        bind=alt.binding_select(
            options=codes,
            labels=[f"{c} {names[c]}" for c in codes],
            name="Département  ",
        ),
    )
    projection = {"type": "identity", "reflectY": True}
    value_expr = "datum.properties['v_' + indicator]"

    frame_layer = (
        alt.Chart(alt.Data(name="inset_frames"))
        .mark_geoshape(fill="#f7f7f7", stroke="#9e9e9e", strokeWidth=0.6, strokeDash=[3, 2])
        .project(**projection)
    )
    shape_layer = (
        alt.Chart(alt.Data(name="shapes"), name=MAP_MARK)
        .mark_geoshape(stroke="white", strokeWidth=0.4)
        .transform_calculate(
            code="datum.properties.code",
            name="datum.properties.name",
            value=value_expr,
        )
        .encode(
            color=alt.Color(
                "value:Q",
                title=None,
                scale=alt.Scale(scheme={"expr": _by_indicator(items, "scheme", "'blues'")}),
                legend=alt.Legend(orient="right", direction="vertical", gradientLength=200),
            ),
            strokeWidth=alt.condition(departement, alt.value(2.2), alt.value(0.4)),
            stroke=alt.condition(departement, alt.value("#111111"), alt.value("white")),
            tooltip=[
                alt.Tooltip("code:N", title="code"),
                alt.Tooltip("name:N", title="département"),
                alt.Tooltip("value:Q", title="value", format=".2f"),
            ],
        )
        .add_params(departement)
        .project(**projection)
    )
    frame_labels = (
        alt.Chart(alt.Data(name="inset_labels"))
        .mark_text(align="left", baseline="top", fontSize=9, color="#555555")
        .encode(longitude="label_x:Q", latitude="label_y:Q", text="name:N")
        .project(**projection)
    )
    map_chart = alt.layer(frame_layer, shape_layer, frame_labels).properties(
        width=MAP_WIDTH,
        height=MAP_HEIGHT,
        title=alt.Title(
            text={
                "expr": "["
                + _by_indicator(items, "title")
                + ", 'Source: ' + ("
                + _by_indicator(items, "source")
                + ")]"
            },
            subtitle=[
                "Overseas départements in the boxes at left, not to scale. Grey: no value.",
                "Click a département (or use the selector) to see its job groups below.",
            ],
            anchor="start",
            fontSize=13,
        ),
    )

    ranking = (
        alt.Chart(alt.Data(name="departements"))
        .transform_calculate(
            value="datum['v_' + indicator]",
            low="datum['lo_' + indicator]",
            high="datum['hi_' + indicator]",
        )
        .transform_filter("isValid(datum.value)")
        .transform_window(rank="row_number()", sort=[alt.SortField("value", order="descending")])
    )
    ranking_chart = alt.layer(
        ranking.mark_rule(color="#9e9e9e").encode(
            x=alt.X("rank:Q", title="rank (highest first)"),
            y=alt.Y("low:Q", title="value"),
            y2="high:Q",
        ),
        ranking.mark_circle().encode(
            x="rank:Q",
            y=alt.Y("value:Q", scale=alt.Scale(zero=False)),
            size=alt.condition(departement, alt.value(110), alt.value(28)),
            color=alt.condition(departement, alt.value("#d62728"), alt.value("#4c78a8")),
            tooltip=[
                alt.Tooltip("code:N"),
                alt.Tooltip("name:N", title="département"),
                alt.Tooltip("value:Q", format=".2f"),
                alt.Tooltip("low:Q", format=".2f"),
                alt.Tooltip("high:Q", format=".2f"),
            ],
        ),
    ).properties(
        width=330,
        height=MAP_HEIGHT - 40,
        title=alt.Title(
            "Départements ranked by the indicator",
            subtitle=["Grey bars: bounds where the indicator has some (BMO secrecy)."],
            anchor="start",
            fontSize=13,
        ),
    )

    job_base = alt.Chart(alt.Data(name="top_jobs")).transform_filter(departement)
    # Labels are a text column of their own, not an axis: an axis's labels would widen the
    # left margin of the whole page of charts and push the map to the right.
    bare_axis = alt.Y("job:N", sort=alt.SortField("rank"), axis=None)
    labels_chart = job_base.mark_text(align="right", limit=280, fontSize=11).encode(
        y=bare_axis, x=alt.value(285), text="job:N"
    )
    projects_chart = (
        job_base.mark_bar(color="#4c78a8")
        .encode(
            y=bare_axis,
            x=alt.X("projects:Q", title="BMO recruitment projects"),
            tooltip=["job:N", alt.Tooltip("projects:Q", format=",.0f")],
        )
        .properties(name=JOBS_MARK)
    )
    difficulty_chart = alt.layer(
        job_base.mark_rule(color="#e45756", strokeWidth=2).encode(
            y=bare_axis,
            x=alt.X(
                "difficult_low:Q",
                title="difficult hiring (%), shrunk, 80 % interval",
                scale=alt.Scale(domain=[0, 100]),
            ),
            x2="difficult_high:Q",
        ),
        job_base.mark_tick(color="#555555", thickness=1).encode(y=bare_axis, x="difficult_raw:Q"),
        job_base.mark_circle(color="#e45756", size=60, opacity=1).encode(
            y=bare_axis,
            x="difficult_shrunk:Q",
            tooltip=[
                "job:N",
                alt.Tooltip("difficult_shrunk:Q", title="shrunk %", format=".1f"),
                alt.Tooltip("difficult_low:Q", title="80 % low", format=".1f"),
                alt.Tooltip("difficult_high:Q", title="80 % high", format=".1f"),
                alt.Tooltip("difficult_raw:Q", title="raw %", format=".1f"),
                "confidence:N",
            ],
        ),
    ).properties(width=330)
    jobs_row = (
        alt.hconcat(
            labels_chart.properties(width=290, view=alt.ViewBackground(stroke=None)),
            projects_chart.properties(width=220),
            difficulty_chart,
            spacing=6,
        )
        .resolve_scale(y="shared")
        .properties(
            title=alt.Title(
                "Job groups with the most BMO recruitment projects in the picked département",
                subtitle=[
                    "Right: difficult-hiring share shrunk toward the région and France (dot), "
                    "its 80 % interval (bar), the raw share (tick). Source: BMO (real)."
                ],
                anchor="start",
                fontSize=13,
            )
        )
    )
    chart = alt.vconcat(
        alt.hconcat(map_chart, ranking_chart).resolve_scale(color="independent"),
        jobs_row,
    ).add_params(indicator)
    # A département without a value is drawn, in grey, rather than dropped from the map.
    chart = chart.configure_scale(invalid={"color": {"value": NO_DATA}})
    return _with_datasets(
        chart,
        shapes=shapes,
        inset_frames=frames,
        inset_labels=[f["properties"] for f in frames],
        departements=list(flat.values()),
        top_jobs=jobs,
    )


def headlines_spec(comparison: list[dict]) -> dict:
    """Per measure and area: the vintage's estimate, its bounds, and the published figure."""
    points = []
    for row in comparison:
        label = f"{row['area']} {row['survey_year']}"
        points.append(
            {**row, "label": label, "series": "tremplin estimate", "value": row["estimate"]}
        )
        points.append({**row, "label": label, "series": "published", "value": row["published"]})
    base = alt.Chart()
    layers = alt.layer(
        base.mark_rule(color="#9e9e9e", strokeWidth=3).encode(
            y=alt.Y("label:N", title=None), x=alt.X("low:Q", title=None), x2="high:Q"
        ),
        base.mark_point(filled=True, size=80).encode(
            y="label:N",
            x=alt.X("value:Q", scale=alt.Scale(zero=False)),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(
                    domain=["tremplin estimate", "published"], range=["#4c78a8", "#f58518"]
                ),
            ),
            shape=alt.Shape(
                "series:N",
                scale=alt.Scale(
                    domain=["tremplin estimate", "published"], range=["circle", "diamond"]
                ),
            ),
            tooltip=[
                "label:N",
                "series:N",
                alt.Tooltip("value:Q", format=",.1f"),
                alt.Tooltip("low:Q", format=",.1f"),
                alt.Tooltip("high:Q", format=",.1f"),
                "publication:N",
                "published_on:N",
            ],
        ),
        data=alt.Data(name="headlines"),
    )
    chart = (
        layers.properties(width=520)
        .facet(
            row=alt.Row("measure:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left"))
        )
        .resolve_scale(x="independent", y="independent")
        .properties(
            title=alt.Title(
                "BMO headlines: this vintage against France Travail's published figures",
                subtitle=[
                    "Grey bar: the range statistical secrecy leaves (masked cells at 0 and at "
                    "the threshold minus one)."
                ],
                anchor="start",
                fontSize=13,
            )
        )
    )
    return _with_datasets(chart, headlines=points)


def _with_datasets(chart: alt.TopLevelMixin, **datasets: list) -> dict:
    """The spec with its data as top-level named datasets, and without the `$schema` URL
    (the page names no remote address).

    Altair copies inline data at every composition step (seconds for the map's outlines);
    the charts name their data and the values are attached once here.
    """
    spec = chart.to_dict()
    spec.pop("$schema", None)
    spec["datasets"] = datasets
    return spec
