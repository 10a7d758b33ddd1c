"""Figure builders: data in, a plotly figure out; nothing read, written or embedded here.

The report (and later the dashboard) embeds the figures as ``_html`` does: inline, plotly.js
once per page, no CDN. plotly is imported on the first figure built, not when this module is.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from segmint.prepare.projections import Projection

__all__ = ["OUTLIER_COLOUR", "SEGMENT_COLOURS", "migration_figure", "profile_heatmap",
           "projection_figure", "segment_colour", "silhouette_figure"]

#: Segment colours in order of segment id: plotly's default palette, then Dark24's without
#: its near-black; more segments than colours reuse them from the start.
SEGMENT_COLOURS = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52", "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100",
    "#750D86", "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32",
    "#778AAE", "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63",
    "#AF0038",
)
#: The outlier segment (-1): grey, drawn under the segments.
OUTLIER_COLOUR = "#AFB8C1"
OUTLIER_SEGMENT = -1
_INK = "#1f2328"


def projection_figure(projection: Projection, labels: np.ndarray, names: dict[int, str] | None = None,
                      title: str = "") -> go.Figure:
    """Customers of a projection as points coloured by segment: a 2-D scatter, or 3-D.

    Parameters
    ----------
    projection : Projection
        From :func:`segmint.prepare.projections.project` or ``project_categorical``; at most
        its ``max_rows`` points, so the figure stays light.
    labels : ndarray of int
        The segment of every row of the projection's input (not only the projected ones):
        the point ``i`` is the row ``projection.rows[i]``. ``-1`` is the outlier segment.
    names : dict of int to str, optional
        Segment names; a trace is named ``"<segment>: <name>"``, or ``"<segment>"`` when the
        segment has no name (the outlier segment: ``"-1: outliers"``).
    title : str
        The figure's title; none when empty.

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per segment present among the projected rows, by segment id, outliers first
        (grey, under the others); axis titles with each axis's explained share when known.

    Raises
    ------
    ValueError
        ``labels`` does not cover the projection's rows.

    Examples
    --------
    >>> from segmint.prepare.projections import Projection
    >>> p = Projection("pca", np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), np.array([0, 2, 3]),
    ...                [0.5, 0.25], "PCA of 2 columns")
    >>> figure = projection_figure(p, np.array([1, 0, 1, -1]), names={1: "Loyal"})
    >>> [(trace.name, len(trace.x)) for trace in figure.data]
    [('-1: outliers', 1), ('1: Loyal', 2)]
    >>> figure.layout.xaxis.title.text
    'PC1 (50.0%)'
    """
    import plotly.graph_objects as go  # plotly loads on the first figure, not on import

    labels = np.asarray(labels)
    rows = projection.rows
    if labels.ndim != 1 or (len(rows) and int(rows.max()) >= len(labels)):
        raise ValueError(f"labels must hold a segment for each of the projection's input rows "
                         f"(the projected rows go up to {int(rows.max()) + 1 if len(rows) else 0}); "
                         f"got {labels.shape}")
    shown = labels[rows].astype(np.int64)
    names = names or {}
    three_d = projection.n_components == 3
    # float32: half the bytes in the page, and finer than any screen
    coords = projection.coords.astype(np.float32)
    segments = sorted(set(shown.tolist()))  # -1 sorts first: outliers drawn under the others
    figure = go.Figure()
    for segment in segments:
        points = coords[shown == segment]
        outlier = segment == OUTLIER_SEGMENT
        name = names.get(segment, "outliers" if outlier else None)
        marker = {
            "color": segment_colour(segment),
            "size": 2.5 if three_d else 4,
            "opacity": 0.6 if outlier else 0.75,
        }
        common = {
            "mode": "markers",
            "name": f"{segment}: {name}" if name else str(segment),
            "marker": marker,
            "hovertemplate": "%{fullData.name}<extra></extra>",
        }
        if three_d:
            figure.add_trace(go.Scatter3d(x=points[:, 0], y=points[:, 1], z=points[:, 2], **common))
        else:
            figure.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], **common))

    titles = projection.axis_titles()
    layout: dict[str, object] = {
        "template": "plotly_white",
        "margin": {"l": 60, "r": 20, "t": 40 if title else 30, "b": 50},
        "font": {"color": _INK},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0, "itemsizing": "constant"},
    }
    if title:
        layout["title"] = {"text": title}
    if three_d:
        layout["scene"] = {"xaxis": {"title": {"text": titles[0]}},
                           "yaxis": {"title": {"text": titles[1]}},
                           "zaxis": {"title": {"text": titles[2]}},
                           "aspectmode": "data"}
    else:
        # one unit is as long on both axes: PCA's distances stay honest
        layout["xaxis"] = {"title": {"text": titles[0]}, "zeroline": False}
        layout["yaxis"] = {"title": {"text": titles[1]}, "zeroline": False,
                           "scaleanchor": "x", "scaleratio": 1}
    figure.update_layout(**layout)
    return figure


def segment_colour(segment: int) -> str:
    """A segment's colour, by its id: the same segment has the same colour in every figure.

    >>> segment_colour(0), segment_colour(-1), segment_colour(len(SEGMENT_COLOURS))
    ('#636EFA', '#AFB8C1', '#636EFA')
    """
    if segment == OUTLIER_SEGMENT:
        return OUTLIER_COLOUR
    return SEGMENT_COLOURS[segment % len(SEGMENT_COLOURS)]


# ---------------------------------------------------------------- the profile heatmap

# The deepest colours stay light enough for the cells' dark text (contrast 4.6:1 and more).
#: worse -> typical -> better (red, white, green), for features whose good direction is known
JUDGED_SCALE = [[0.0, "#e07a66"], [0.25, "#f4a582"], [0.5, "#f7f7f7"], [0.75, "#a6dba0"],
                [1.0, "#5aae61"]]
#: lower -> typical -> higher (blue, white, orange), for features with no good direction
NEUTRAL_SCALE = [[0.0, "#4393c3"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#fdb863"],
                 [1.0, "#e08214"]]
#: colours saturate at a lift of x4 either way (log2 of 2)
_LIFT_RANGE = 2.0


def profile_heatmap(profile: pd.DataFrame, features: Sequence[str],
                    labels: Mapping[str, str] | None = None) -> go.Figure:
    """Each segment's lift on each feature as a grid of colours that know which way is good.

    A numeric feature whose good direction is known (:func:`segmint.explain.good_direction`:
    more revenue is good, a longer recency is bad) is coloured green where the segment is
    better than the average customer and red where worse; any other feature (an age, a
    categorical column's most common level) blue where lower and orange where higher, with
    no judgement. The colour is log2 of the lift, saturating at x4 either way; each cell
    says its lift.

    Parameters
    ----------
    profile : pandas.DataFrame
        One row per segment: ``segment``, ``name`` and ``lift_<feature>`` (numeric features
        have ``mean_<feature>``, categorical ones ``top_<feature>``).
    features : sequence of str
        The features, in the order of the columns.
    labels : mapping, optional
        Feature -> the words shown as its column heading.

    Returns
    -------
    plotly.graph_objects.Figure
        Up to two heatmap traces on one grid: ``judged`` and ``neutral`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> profile = pd.DataFrame({"segment": [0, 1], "name": ["lapsed", "loyal"],
    ...     "mean_recency_days": [300.0, 10.0], "lift_recency_days": [1.9, 0.1],
    ...     "mean_age": [60.0, 30.0], "lift_age": [1.3, 0.7]})
    >>> figure = profile_heatmap(profile, ["recency_days", "age"])
    >>> [trace.name for trace in figure.data]
    ['judged', 'neutral']
    >>> figure.data[0].z[0][0] < 0 < figure.data[0].z[1][0]  # long recency is bad, short good
    True
    >>> figure.data[1].text  # each text in its own column: age is the second
    (['', '×1.3'], ['', '×0.7'])
    """
    import pandas as pd
    import plotly.graph_objects as go

    from segmint.explain import good_direction

    labels = dict(labels or {})
    rows = [f"{int(s)}: {n}" for s, n in zip(profile["segment"], profile["name"], strict=True)]
    judged: list[str] = []
    neutral: list[str] = []
    for feature in features:
        numeric = f"mean_{feature}" in profile.columns
        (judged if numeric and good_direction(feature) else neutral).append(feature)

    columns = [*judged, *neutral]

    def cells(group: Sequence[str], judge: bool) -> tuple[list[list[float | None]], list[list[str]]]:
        # every column in each trace, the other group's cells empty: plotly places a trace's
        # cell texts by the trace's own column positions
        z: list[list[float | None]] = []
        text: list[list[str]] = []
        for _, row in profile.iterrows():
            z_row: list[float | None] = []
            text_row: list[str] = []
            for feature in columns:
                if feature not in group:
                    z_row.append(None)
                    text_row.append("")
                    continue
                lift = row.get(f"lift_{feature}")
                if lift is None or not np.isfinite(float(lift)) or float(lift) <= 0:
                    z_row.append(None)
                    text_row.append("—")
                    continue
                value = float(np.log2(float(lift)))
                if judge:
                    value *= good_direction(feature)
                z_row.append(float(np.clip(value, -_LIFT_RANGE, _LIFT_RANGE)))
                level = row.get(f"top_{feature}")
                said = f"×{float(lift):.1f}"
                categorical = f"top_{feature}" in profile.columns and pd.notna(level)
                text_row.append(f"{level} {said}" if categorical else said)
            z.append(z_row)
            text.append(text_row)
        return z, text

    figure = go.Figure()
    ticks = [-2.0, -1.0, 0.0, 1.0, 2.0]
    for name, group, scale, words, place in (
            ("judged", judged, JUDGED_SCALE, ("worse", "better"), 1.0),
            ("neutral", neutral, NEUTRAL_SCALE, ("lower", "higher"), 1.0 + 0.12 * bool(judged))):
        if not group:
            continue
        z, text = cells(group, name == "judged")
        figure.add_trace(go.Heatmap(
            z=z, x=[labels.get(f, f) for f in columns], y=rows, text=text,
            texttemplate="%{text}", textfont={"color": _INK}, name=name, colorscale=scale,
            zmin=-_LIFT_RANGE, zmax=_LIFT_RANGE, zmid=0.0, xgap=2, ygap=2, hoverongaps=False,
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
            colorbar={"title": {"text": f"{words[0]} / {words[1]}", "side": "right"},
                      "tickvals": ticks, "x": place, "len": 0.9, "thickness": 12,
                      "ticktext": [f"×¼ {words[0]}", "×½", "×1", "×2", f"×4 {words[1]}"]},
        ))
    figure.update_layout(
        template="plotly_white",
        height=max(220, 60 + 42 * len(rows)),
        margin={"l": 20, "r": 20, "t": 30, "b": 20},
        font={"color": _INK},
        xaxis={"categoryorder": "array", "categoryarray": [labels.get(f, f) for f in columns],
               "side": "top",
               "automargin": True},
        yaxis={"categoryorder": "array", "categoryarray": rows[::-1], "automargin": True},
    )
    return figure


# ---------------------------------------------------------------- the silhouette plot


def silhouette_figure(values: np.ndarray, labels: np.ndarray,
                      names: Mapping[int, str] | None = None) -> go.Figure:
    """The silhouette plot: each customer's silhouette, sorted within its segment, as a band
    per segment, with the mean over all of them as a dashed line.

    A silhouette near 1 is a customer much closer to its own segment than to the next one;
    near 0, on the border between two; below 0, closer to another segment than to its own.

    Parameters
    ----------
    values : ndarray of float
        Each customer's silhouette (:func:`sklearn.metrics.silhouette_samples`).
    labels : ndarray of int
        Each customer's segment, aligned with ``values``.
    names : mapping of int to str, optional
        Segment names, shown with each band.

    Returns
    -------
    plotly.graph_objects.Figure
        One filled trace per segment (by segment id), named ``"<segment>: <name> (mean m)"``.

    Examples
    --------
    >>> figure = silhouette_figure(np.array([0.5, 0.7, 0.2, -0.1]), np.array([0, 0, 1, 1]),
    ...                            {0: "loyal"})
    >>> [trace.name for trace in figure.data]
    ['0: loyal (mean 0.60)', '1 (mean 0.05)']
    >>> list(figure.data[0].x)  # highest first
    [0.7, 0.5]
    """
    import plotly.graph_objects as go

    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    if values.shape != labels.shape:
        raise ValueError(f"values and labels must align; got {values.shape} and {labels.shape}")
    names = dict(names or {})
    gap = max(2, round(0.02 * len(values)))
    figure = go.Figure()
    ticks: list[float] = []
    tick_text: list[str] = []
    top = 0
    for segment in sorted({int(s) for s in labels.tolist()}):
        mine = np.sort(values[labels == segment])[::-1]
        positions = np.arange(top, top + len(mine))
        name = names.get(segment)
        title = f"{segment}: {name}" if name else str(segment)
        figure.add_trace(go.Scatter(
            x=mine.round(4).tolist(), y=positions.tolist(), mode="lines", fill="tozerox",
            line={"width": 0.5, "color": segment_colour(segment)},
            fillcolor=segment_colour(segment), name=f"{title} (mean {mine.mean():.2f})",
            hovertemplate=f"{title}<br>silhouette %{{x:.3f}}<extra></extra>"))
        ticks.append(float(top + len(mine) / 2))
        tick_text.append(title)
        top += len(mine) + gap
    mean = float(values.mean()) if len(values) else 0.0
    figure.add_vline(x=mean, line_dash="dash", line_color="#57606a",
                     annotation_text=f"mean {mean:.2f}", annotation_position="top right")
    figure.update_layout(
        template="plotly_white",
        height=max(300, 120 + 40 * len(ticks)),
        margin={"l": 20, "r": 20, "t": 30, "b": 50},
        font={"color": _INK},
        showlegend=False,
        xaxis={"title": {"text": "silhouette"}, "range": [min(-0.1, float(values.min(initial=0))), 1],
               "zeroline": True},
        yaxis={"tickvals": ticks, "ticktext": tick_text, "autorange": "reversed",
               "automargin": True, "showgrid": False},
    )
    return figure


# ---------------------------------------------------------------- the migration matrix


def migration_figure(counts: pd.DataFrame) -> go.Figure:
    """The transition matrix: customers from each earlier segment (rows) to each later one
    (columns), coloured by the share of the row, each cell saying its count and share.

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame([[8, 2], [1, 9]], index=["Insiders", "Sleepers"],
    ...                       columns=["Insiders", "Sleepers"])
    >>> figure = migration_figure(counts)
    >>> figure.data[0].z[0], figure.data[0].text[0][0]
    ([0.8, 0.2], '8 (80%)')
    """
    import plotly.graph_objects as go

    values = counts.to_numpy(dtype=np.float64)
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    text = [[f"{int(v):,} ({s:.0%})" for v, s in zip(row, share_row, strict=True)]
            for row, share_row in zip(values, shares, strict=True)]
    rows = [str(r) for r in counts.index]
    columns = [str(c) for c in counts.columns]
    figure = go.Figure(go.Heatmap(
        z=shares.round(4).tolist(), x=columns, y=rows, text=text, texttemplate="%{text}",
        textfont={"color": _INK}, colorscale=[[0.0, "#f6f8fa"], [1.0, "#6cb6ff"]], zmin=0.0,
        zmax=1.0, xgap=2, ygap=2, hovertemplate="from %{y}<br>to %{x}: %{text}<extra></extra>",
        colorbar={"title": {"text": "share of the row", "side": "right"}, "tickformat": ".0%",
                  "thickness": 12}))
    figure.update_layout(
        template="plotly_white", height=max(260, 90 + 44 * len(rows)),
        margin={"l": 20, "r": 20, "t": 40, "b": 20}, font={"color": _INK},
        xaxis={"title": {"text": "now"}, "side": "top", "automargin": True},
        yaxis={"title": {"text": "before"}, "autorange": "reversed", "automargin": True})
    return figure
