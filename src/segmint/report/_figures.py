"""Figure builders: data in, a plotly figure out; nothing read, written or embedded here.

The report (and later the dashboard) embeds the figures as ``_html`` does: inline, plotly.js
once per page, no CDN. plotly is imported on the first figure built, not when this module is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segmint.prepare.projections import Projection

__all__ = ["OUTLIER_COLOUR", "SEGMENT_COLOURS", "projection_figure", "segment_colour"]

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
