"""The self-contained HTML report: header, recommendation, segment profile, plots, tables.

Everything the page needs is inside the one document: plotly.js is inlined once, the CSS and
the few lines of table-sorting JavaScript are inline, and no element points at another address,
so the file opens offline and leaks nothing when opened.

Every text shown passes through :func:`segmint._secrets.redact` on its way into the page (in
:func:`_esc`, the one door): the writer redacts the manifest already, and a password that comes
in any other way (a note, a reason, a cell) is masked here too.
"""
from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segmint._secrets import MASK, redact
from segmint.cluster.leaderboard import LEADERBOARD_COLUMNS as _BOARD
from segmint.cluster.leaderboard import SELECTION_COLUMNS as _SELECTION
from segmint.cluster.leaderboard import parse_params
from segmint.cluster.registry import ALGORITHMS
from segmint.cluster.select import (
    DOUBTFUL,
    SEGMENT_STABILITY_COLUMNS,
    STABILITY_COLUMNS,
    STABLE,
)
from segmint.errors import InputError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["render_report"]

logger = logging.getLogger(__name__)

MISSING = "—"

# Leaderboard columns in the order shown (the leaderboard schema's shown columns); those
# absent from a leaderboard are left out.
LEADERBOARD_COLUMNS = tuple(c.name for c in (*_BOARD, *_SELECTION) if c.shown)
# The per-segment stability of the recommended solution (its solution column is not shown).
SEGMENT_STABILITY_SHOWN = tuple(c for c in SEGMENT_STABILITY_COLUMNS if c != "solution")
# Counts read better as whole numbers even when NaN elsewhere in the column made them floats.
_INTEGER_COLUMNS = frozenset({"n_clusters", "rank", "resamples", "segment", "size"})
FEATURE_INFO_SHOWN = ("column", "type", "reason", "nulls", "imputed", "distinct", "min", "max",
                      "mean", "stddev", "top_levels", "became")
# Manifest keys shown first, in this order; any others follow in the manifest's order.
_MANIFEST_ORDER = ("run_id", "created", "input", "versions", "recommended", "knee")

_NUM_CLASS = ' class="num"'
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_PLOT_HEIGHT = 380
# while set (segmint.report.figures), every figure embedded is also kept here by its div id
_COLLECTED: ContextVar[dict[str, Any] | None] = ContextVar("segmint_report_figures", default=None)


def render_report(
    *,
    title: str,
    manifest: Mapping[str, Any],
    leaderboard: pd.DataFrame,
    profile: pd.DataFrame | None,
    recommended: str | None,
    reasons: Sequence[str],
    stability: pd.DataFrame | None = None,
    feature_info: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    projections: Sequence[Mapping[str, Any]] = (),
    explanation: Any = None,
    segment_stability: pd.DataFrame | None = None,
    silhouette: Mapping[str, Any] | None = None,
    outliers: pd.DataFrame | None = None,
    migration: Mapping[str, Any] | None = None,
) -> str:
    """Render a run as one self-contained HTML document.

    The document opens offline: plotly.js is inlined once, and nothing is loaded from a CDN
    or any other address. All text taken from the arguments is redacted (a URL's password,
    ``password=...``; see :mod:`segmint._secrets`) and HTML-escaped.

    Parameters
    ----------
    title : str
        Shown as the page title and the main heading.
    manifest : mapping
        The run's manifest (``manifest.json``). Every key it has is shown in the header;
        ``run_id``, ``created``, ``input`` (``file``, ``rows``, ``sha256``), ``versions``,
        ``recommended`` and ``knee`` come first. ``knee`` as ``{"k": int}`` marks the knee on
        the elbow plots.
    leaderboard : pandas.DataFrame
        One row per solution. Must have a ``solution`` column; of ``algorithm``, ``scaling``,
        ``params`` (a mapping or its JSON text), ``n_clusters``, ``noise_share``,
        ``min_cluster_share``, ``mean_squared_distance``, ``davies_bouldin``,
        ``calinski_harabasz``, ``silhouette``, ``silhouette_sample``, ``bic``, ``fit_seconds``
        and ``rank`` those present are shown.
        Rows of algorithms whose registry entry has ``elbow`` make the elbow plots
        (``mean_squared_distance`` and ``davies_bouldin`` against ``n_clusters``), one line per
        algorithm, representation and the other parameters.
    profile : pandas.DataFrame or None
        The recommended solution's profile: one row per segment with ``segment`` and ``name``,
        and optionally ``size``, ``share`` and ``revenue_share`` (fractions of 1),
        ``insiders`` (bool), ``mean_<feature>``, ``median_<feature>``, ``lift_<feature>``
        for each numeric feature and ``top_<feature>``, ``topshare_<feature>``,
        ``lift_<feature>`` for each categorical one.
    recommended : str or None
        The recommended solution's name; its leaderboard and stability rows are highlighted.
    reasons : sequence of str
        Why it is recommended (or why none is), shown beside it.
    stability : pandas.DataFrame or None, default None
        One row per solution with ``stability_ari_mean``, ``stability_ari_std``,
        ``stability_jaccard_mean`` and ``resamples``.
    feature_info : pandas.DataFrame or None, default None
        The feature report of a customer-table run: one row per source column with its
        type, why, missing values, statistics and what it became.
    notes : sequence of str
        What the recipe inferred or did, in words.
    projections : sequence of mappings
        The recommended solution's customers projected: each with ``heading``, ``projection``
        (:class:`~segmint.prepare.projections.Projection`) and ``labels`` (the segment of
        every row of the projection's input); drawn coloured by segment, named as in ``profile``.
    explanation : SurrogateExplanation or None
        What a model predicting the segments relies on (:mod:`segmint.explain.surrogate`).
    segment_stability : pandas.DataFrame or None, default None
        One row per segment of the stability candidates (``Recommendation.segment_stability``):
        ``solution``, ``segment``, ``size``, ``jaccard_mean``, ``jaccard_min``, ``resamples``
        and ``verdict``. The recommended solution's rows are shown under "Stability per
        segment" (every row when there is no ``solution`` column), named as in ``profile``.
    silhouette : mapping or None, default None
        The recommended solution's silhouette plot: ``values`` (each drawn customer's
        silhouette), ``labels`` (their segments), ``customers`` (how many were clustered:
        more than drawn means a sample, said on the page) and ``representation``.
    outliers : pandas.DataFrame or None, default None
        The customers set apart as outliers, most unusual first: ``customer``,
        ``unusual_on`` (the feature on which it is furthest from the median customer, in
        interquartile ranges), ``how_far`` and the features; the first 20 are shown, under
        the manifest's ``outliers`` rule (``method``, ``contamination``, ``count``).
    migration : mapping or None, default None
        A scheduled re-fit's migration since the previous run: ``counts`` (a DataFrame,
        earlier segments as rows and later ones as columns, new customers a row and lapsed
        ones a column) and ``summary`` (lines of words).

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    InputError
        If ``leaderboard`` or ``stability`` has no ``solution`` column, or ``profile`` has no
        ``segment`` or ``name`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> leaderboard = pd.DataFrame({
    ...     "solution": ["kmeans-k2", "kmeans-k3"], "algorithm": ["kmeans", "kmeans"],
    ...     "n_clusters": [2, 3], "mean_squared_distance": [4.1, 1.2],
    ...     "davies_bouldin": [0.9, 0.5]})
    >>> page = render_report(title="Customers", manifest={"run_id": "r1"},
    ...                      leaderboard=leaderboard, profile=None,
    ...                      recommended="kmeans-k3", reasons=["lowest Davies-Bouldin"])
    >>> page.startswith("<!DOCTYPE html>")
    True
    >>> "<script src=" in page  # plotly.js is inline, not fetched
    False
    """
    _require_columns(leaderboard, ("solution",), "leaderboard")
    if stability is not None:
        _require_columns(stability, ("solution",), "stability table")
    if profile is not None:
        _require_columns(profile, ("segment", "name"), "profile")

    plots = _elbow_plots(leaderboard, knee=_knee_k(manifest))
    words = _words(leaderboard, recommended)
    heatmap = _heatmap_html(profile)
    silhouette_plot = _silhouette_html(silhouette, profile, words)
    migration_plot = _migration_html(migration)
    sections = [
        _header_html(title, manifest),
        _summary_html(manifest, leaderboard, profile, recommended, reasons),
        _cards_html(profile),
        _recommendation_html(recommended, reasons, words),
        heatmap,
        _profile_html(profile, words),
        _explanation_html(explanation, profile),
        _projections_html(projections, profile),
        silhouette_plot,
        _outliers_html(outliers, manifest),
        migration_plot,
        _plots_html(plots),
        _ways_html(leaderboard),
        _leaderboard_html(leaderboard, recommended),
        _stability_html(stability, recommended),
        _segment_stability_html(segment_stability, recommended, profile, words),
        _feature_info_html(feature_info, notes),
    ]
    plotly_js = _plotly_js() if any(figure is not None for _, _, figure, _ in plots) \
        or projections or heatmap or silhouette_plot or migration_plot else ""
    return _PAGE.format(
        title=_esc(title),
        css=_CSS,
        plotly_js=plotly_js,
        body="\n".join(section for section in sections if section),
        sort_js=_SORT_JS,
        filter_js=_FILTER_JS,
    )


# ---------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    # Every text of the page goes through here. Redact before escaping: escaping turns the
    # quotes of "{'password': 'x'}" into entities the redaction would not see through.
    return html.escape(redact(str(value)), quote=True)


def _is_missing(value: object) -> bool:
    # pd.isna on a dict or list answers elementwise, so only ask it about scalars.
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _format_float(value: float, digits: int = 4) -> str:
    """Round to ``digits`` significant digits; plain notation with thousands separators."""
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if not -4 <= exponent < 15:
        return f"{value:.{digits}g}"
    decimals = digits - 1 - exponent
    # Round first so 12345.678 shows as 12,350 (four digits), not 12,346.
    rounded = round(value, decimals)
    text = f"{rounded:,.{max(decimals, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _format_readable(value: Any) -> str:
    """A number as a marketing manager reads it: 1,234.5 / 3.46 / 0.0345."""
    if _is_missing(value):
        return MISSING
    value = float(value)
    if abs(value) >= 10:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return _format_float(value, digits=3)


def _format_lift(lift: float) -> str:
    if lift >= 10:
        return f"×{lift:,.0f}"
    if lift >= 1:
        return f"×{lift:.1f}"
    return f"×{lift:.2g}"


def _format_percent(fraction: Any) -> str:
    if _is_missing(fraction):
        return MISSING
    return f"{float(fraction) * 100:.1f}%"


def _format_cell(column: str, value: object) -> str:
    """Plain text of one table cell (not yet escaped)."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if column == "params" and isinstance(value, str) and value.startswith("{"):
        # leaderboard.csv holds params as JSON; show them as key=value like a dict.
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_format_param(item)}" for key, item in value.items())
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if column in _INTEGER_COLUMNS and float(value).is_integer():
            return f"{int(value):,}"
        return _format_float(float(value))
    return str(value)


def _format_param(value: object) -> str:
    if isinstance(value, (float, np.floating)) and not _is_missing(value):
        return _format_float(float(value))
    return str(value)


def _sort_value(value: object) -> str | None:
    """The raw number the sorting script compares; None for a text cell."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(float(value))
    if _is_missing(value):
        return ""
    return None


def _label(column: str) -> str:
    return column.replace("_", " ")


# ---------------------------------------------------------------- sections


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise InputError(f"the {what} has no column {column!r}; it has "
                             f"{', '.join(map(str, frame.columns)) or 'none'}", column=column)


def _knee_k(manifest: Mapping[str, Any]) -> int | None:
    knee = manifest.get("knee")
    if isinstance(knee, Mapping) and not _is_missing(knee.get("k")):
        try:
            return int(knee["k"])
        except (TypeError, ValueError):
            logger.warning("manifest knee %r has no integer k; the knee is not marked", knee)
    return None


def _header_html(title: str, manifest: Mapping[str, Any]) -> str:
    keys = [key for key in _MANIFEST_ORDER if key in manifest]
    keys += [key for key in manifest if key not in _MANIFEST_ORDER]
    rows = "".join(
        f"<dt>{_esc(_label(str(key)))}</dt><dd>{_meta_value(str(key), manifest[key])}</dd>"
        for key in keys
    )
    meta = f'<dl class="meta">{rows}</dl>' if rows else ""
    return f"<header><h1>{_esc(title)}</h1>{meta}</header>"


def _meta_value(key: str, value: object) -> str:
    """One manifest value as HTML: nested mappings inline, fingerprints as code."""
    if _names_secret(key) and not isinstance(value, (Mapping, list, tuple)):
        return _esc(MASK)
    if isinstance(value, Mapping):
        if not value:
            return MISSING
        return " · ".join(
            f'<span class="kv"><span class="k">{_esc(_label(str(k)))}</span> '
            f"{_meta_value(str(k), v)}</span>"
            for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(_meta_value(key, item) for item in value) or MISSING
    if key in {"sha256", "md5", "fingerprint", "run_id"} or key.endswith("_sha256"):
        return f"<code>{_esc(value)}</code>"
    return _esc(_format_cell(key, value))


def _names_secret(key: str) -> bool:
    # {"password": "x"} shows key and value apart, where redact sees no "password=x";
    # ask redact about the pair, so the names it masks stay defined in one place.
    probe = f"{key}=value"
    return redact(probe) != probe


def _summary_html(manifest: Mapping[str, Any], leaderboard: pd.DataFrame,
                  profile: pd.DataFrame | None, recommended: str | None,
                  reasons: Sequence[str]) -> str:
    """The run in a few sentences a manager reads first: how many customers, from what,
    which segmentation and why."""
    said = []
    customers = manifest.get("customers")
    given = manifest.get("input")
    source: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    what = f"{int(customers):,} customers" if isinstance(customers, (int, np.integer)) \
        else "The customers"
    if source.get("file"):
        lines = source.get("rows")
        what += f" from {Path(str(source['file'])).name}" + \
            (f" ({int(lines):,} rows)" if isinstance(lines, (int, np.integer)) else "")
    ways = len(leaderboard)
    said.append(f"{what} were segmented {ways:,} way{'s' if ways != 1 else ''}.")
    if recommended is not None:
        said.append(f"The recommended segmentation is {_words(leaderboard, recommended)}"
                    + (f", because {_lower_first(reasons[0])}" if reasons else "") + ".")
    else:
        said.append("No segmentation is recommended"
                    + (f": {_lower_first(reasons[0])}" if reasons else "") + ".")
    if profile is not None and "size" in profile.columns:
        outliers = profile.loc[profile["segment"] == -1, "size"]
        if len(outliers) and int(outliers.iloc[0]):
            total = int(profile["size"].sum())
            said.append(f"{int(outliers.iloc[0]):,} customers "
                        f"({_format_percent(int(outliers.iloc[0]) / max(total, 1))}) are set "
                        f"apart as outliers.")
    return ('<section id="summary" aria-labelledby="summary-heading"><h2 id="summary-heading">'
            f'Summary</h2><p class="summary">{_esc(" ".join(said))}</p></section>')


def _lower_first(text: str) -> str:
    text = str(text).rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


#: features' words for a segment card's action (transactions recipes, where the profile marks
#: the Insiders): the revenue and recency concepts of :func:`segmint.explain.good_direction`
_REVENUE_WORDS = ("revenue", "monetary", "spend", "sales", "amount")
_RECENCY_WORDS = ("recency", "since_last")


def _traits(row: Mapping[str, Any], features: Sequence[str], n: int = 3) -> list[str]:
    """The ``n`` features that set a segment apart most: the largest lifts either way
    (|log lift|), in words."""
    scored = []
    for feature in features:
        lift: Any = row.get(f"lift_{feature}")
        if _is_missing(lift) or float(lift) <= 0:
            continue
        scored.append((abs(float(np.log(float(lift)))), feature, float(lift)))
    out = []
    for _, feature, lift in sorted(scored, key=lambda t: -t[0])[:n]:
        if f"top_{feature}" in row:
            out.append(f"{_label(feature)}: mostly {row[f'top_{feature}']} "
                       f"({_format_percent(row.get(f'topshare_{feature}'))}, "
                       f"{_format_lift(lift)} the share among all customers)")
        else:
            out.append(f"{_label(feature)} {_format_readable(row.get(f'mean_{feature}'))} "
                       f"on average, {_format_lift(lift)} the average customer")
    return out


def _action(row: Mapping[str, Any], features: Sequence[str]) -> str | None:
    """What a marketer might do with a segment of transaction customers; None elsewhere."""
    if "insiders" not in row:
        return None
    if int(row["segment"]) == -1:
        return "Look at them one by one: unusual customers, kept out of the segments."
    if bool(row["insiders"]):
        return ("Reward and keep them: loyalty perks, early access, personal service; they "
                "buy without discounts.")

    def lift_of(words: Sequence[str]) -> float | None:
        for feature in features:
            if any(w in feature.lower() for w in words) and not _is_missing(row.get(f"lift_{feature}")):
                return float(row[f"lift_{feature}"])
        return None

    revenue, recency = lift_of(_REVENUE_WORDS), lift_of(_RECENCY_WORDS)
    if recency is not None and recency >= 1.25:
        if revenue is not None and revenue >= 1.0:
            return "Win them back: a personal offer before they are lost for good."
        return "Reactivate them cheaply (a reminder, a newsletter) or let them go."
    if revenue is not None and revenue < 0.8:
        return "Grow them: a second-purchase offer, products that go with what they bought."
    return "Keep them in the regular campaigns, and watch for the ones who drift."


def _cards_html(profile: pd.DataFrame | None) -> str:
    """One card per segment: its name and description, size, revenue share, the three
    traits that set it apart and, for transaction customers, a suggested action."""
    if profile is None or "size" not in profile.columns:
        return ""
    features = _profile_features(profile)
    cards = []
    for row in profile.to_dict("records"):
        badge = _insiders_badge(row)
        figures = [f'<span class="size">{_esc(_format_cell("size", row["size"]))} customers</span>']
        if "share" in row:
            figures.append(f'<span class="share">{_esc(_format_percent(row["share"]))} of all</span>')
        if "revenue_share" in row and not _is_missing(row["revenue_share"]):
            figures.append(f'<span class="revenue-share">'
                           f'{_esc(_format_percent(row["revenue_share"]))} of revenue</span>')
        description = row.get("description")
        text = "" if _is_missing(description) or not description else \
            f'<p class="description">{_esc(description)}</p>'
        traits = "".join(f"<li>{_esc(t)}</li>" for t in _traits(row, features))
        action = _action(row, features)
        cards.append(
            f'<article class="card" data-segment="{_esc(row["segment"])}">'
            f'<h3><span class="seg-id">{_esc(_format_cell("segment", row["segment"]))}</span> '
            f'{_esc(row["name"])}{badge}</h3>{text}'
            f'<p class="figures">{" · ".join(figures)}</p>'
            + (f'<ul class="traits">{traits}</ul>' if traits else "")
            + (f'<p class="action"><strong>Suggested:</strong> {_esc(action)}</p>' if action else "")
            + "</article>")
    return ('<section id="cards" aria-labelledby="cards-heading"><h2 id="cards-heading">'
            f'The segments</h2><div class="cards">{"".join(cards)}</div></section>')


def _words(leaderboard: pd.DataFrame, recommended: str | None) -> str | None:
    """The recommended solution in words (its leaderboard description), else its id."""
    if recommended is None:
        return None
    if "description" in leaderboard.columns:
        rows = leaderboard.loc[leaderboard["solution"] == recommended, "description"]
        if len(rows) and not _is_missing(rows.iloc[0]) and str(rows.iloc[0]).strip():
            return str(rows.iloc[0])
    return recommended


def _recommendation_html(recommended: str | None, reasons: Sequence[str],
                         words: str | None = None) -> str:
    if recommended is None:
        pick = '<p class="pick none">No solution recommended</p>'
    else:
        said = words or recommended
        pick = f'<p class="pick" id="recommended-solution">{_esc(said)}</p>'
        if said != recommended:
            pick += f'<p class="pick-id">solution <code>{_esc(recommended)}</code></p>'
    items = "".join(f"<li>{_esc(reason)}</li>" for reason in reasons)
    reason_list = f'<ul class="reasons">{items}</ul>' if items else ""
    return (f'<section class="pick-box" aria-labelledby="pick-heading">'
            f'<h2 id="pick-heading">Recommended solution</h2>{pick}{reason_list}</section>')


def _profile_html(profile: pd.DataFrame | None, recommended: str | None) -> str:
    """The profile table; ``recommended`` is the solution as the heading names it (in words)."""
    if profile is None:
        return ""
    columns = set(profile.columns)
    features = _profile_features(profile)
    head = ['<th scope="col">Segment</th>']
    if "size" in columns:
        head.append('<th scope="col" class="num">Customers</th>')
    if "share" in columns:
        head.append('<th scope="col" class="num">Share</th>')
    if "revenue_share" in columns:
        head.append('<th scope="col" class="num">Revenue share</th>')
    head += [f'<th scope="col" class="num">{_esc(_label(feature))}</th>' for feature in features]

    body = []
    for row in profile.to_dict("records"):
        badge = _insiders_badge(row)
        segment = _esc(_format_cell("segment", row["segment"]))
        cells = [f'<td class="segment"><span class="seg-id">{segment}</span> '
                 f'<strong>{_esc(row["name"])}</strong>{badge}</td>']
        if "size" in columns:
            cells.append(f'<td class="num">{_esc(_format_cell("size", row["size"]))}</td>')
        if "share" in columns:
            cells.append(f'<td class="num">{_share_cell(row["share"])}</td>')
        if "revenue_share" in columns:
            cells.append(f'<td class="num">{_share_cell(row["revenue_share"])}</td>')
        cells += [_feature_cell(row, feature) for feature in features]
        body.append(f"<tr>{''.join(cells)}</tr>")

    heading = "Segments" if recommended is None else f"Segments of {_esc(recommended)}"
    note = ('<p class="note">Each feature shows the segment&#x27;s average and, in brackets, '
            "its lift: the average divided by the average over all customers "
            "(×1.0 is typical, ×2.0 twice as high). A categorical feature shows the segment&#x27;s "
            "most common value, its share in the segment and its lift over its share among all "
            "customers.</p>") if features else ""
    return (f'<section id="profile"><h2>{heading}</h2>{note}<div class="table-wrap">'
            f'<table class="profile"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div></section>')


def _profile_features(profile: pd.DataFrame) -> list[str]:
    """The features a profile describes: ``mean_<f>`` (numeric) and ``top_<f>`` (categorical)."""
    return [column.split("_", 1)[1] for column in profile.columns
            if isinstance(column, str) and column.startswith(("mean_", "top_"))]


def _insiders_badge(row: Mapping[str, Any]) -> str:
    insider = row.get("insiders")
    return ('<span class="badge">Insiders</span>'
            if isinstance(insider, (bool, np.bool_)) and insider else "")


def _share_cell(fraction: Any) -> str:
    text = _format_percent(fraction)
    if text == MISSING:
        return text
    width = min(max(float(fraction) * 100, 0.0), 100.0)
    return f'{_esc(text)}<div class="bar"><span style="width:{width:.1f}%"></span></div>'


def _tone(feature: str, lift: float) -> str:
    """The lift's class: green when the segment is better than typical on a feature whose good
    direction is known (high spend, low recency), red when worse; for other features only
    high or low (no judgement: a high age is neither good nor bad)."""
    from segmint.explain import good_direction

    if 0.8 < lift < 1.25:
        return ""
    direction = good_direction(feature) * (1 if lift >= 1.25 else -1)
    if direction:
        return " hi" if direction > 0 else " lo"
    return " up" if lift >= 1.25 else " down"


def _feature_cell(row: Mapping[str, Any], feature: str) -> str:
    if f"top_{feature}" in row:  # a categorical feature: its most common level and share
        top: Any = row.get(f"top_{feature}")
        share: Any = row.get(f"topshare_{feature}")
        level_lift: Any = row.get(f"lift_{feature}")
        if _is_missing(top):
            return f'<td class="num">{MISSING}</td>'
        text = f'<span class="mean">{_esc(top)}: {_esc(_format_percent(share))}</span>'
        if not _is_missing(level_lift):
            # a level more common in the segment than overall is neither good nor bad
            tone = " up" if float(level_lift) >= 1.25 else " down" if float(level_lift) <= 0.8 else ""
            text += f' <span class="lift{tone}">({_esc(_format_lift(float(level_lift)))})</span>'
        return f'<td class="num">{text}</td>'
    mean: Any = row.get(f"mean_{feature}")
    lift: Any = row.get(f"lift_{feature}")
    median: Any = row.get(f"median_{feature}")
    title = "" if _is_missing(median) else f' title="median {_esc(_format_readable(median))}"'
    text = f'<span class="mean">{_esc(_format_readable(mean))}</span>'
    if not _is_missing(lift):
        lift = float(lift)
        text += f' <span class="lift{_tone(feature, lift)}">({_esc(_format_lift(lift))})</span>'
    return f'<td class="num"{title}>{text}</td>'


def _table_html(frame: pd.DataFrame, columns: Sequence[str], recommended: str | None,
                table_id: str) -> str:
    numeric = {column for column in columns if pd.api.types.is_numeric_dtype(frame[column])
               and not pd.api.types.is_bool_dtype(frame[column])}
    head = "".join(
        f'<th scope="col" tabindex="0"{_NUM_CLASS if column in numeric else ""}>'
        f"{_esc(_label(column))}</th>"
        for column in columns
    )
    body = []
    for row in frame[list(columns)].to_dict("records"):
        cells = []
        for column in columns:
            value = row[column]
            sort_value = _sort_value(value)
            data = "" if sort_value is None else f' data-v="{_esc(sort_value)}"'
            css = _NUM_CLASS if column in numeric else ""
            cells.append(f"<td{css}{data}>{_esc(_format_cell(column, value))}</td>")
        mark = (' class="recommended"' if recommended is not None
                and str(row.get("solution")) == recommended else "")
        body.append(f"<tr{mark}>{''.join(cells)}</tr>")
    return (f'<div class="table-wrap"><table class="sortable" id="{table_id}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _leaderboard_html(leaderboard: pd.DataFrame, recommended: str | None) -> str:
    columns = [column for column in LEADERBOARD_COLUMNS if column in leaderboard.columns]
    if "description" in columns:  # the solution in words first, its id beside it
        columns.remove("description")
        columns.insert(0, "description")
    return ('<section id="leaderboard-section"><h2>Leaderboard</h2><p class="note">All '
            "solutions of the run; click a column heading to sort, type to keep the rows that "
            "contain the text. The recommended solution is highlighted.</p>"
            '<p class="filter"><label for="leaderboard-filter">Filter solutions</label> '
            '<input type="search" id="leaderboard-filter" data-table="leaderboard" '
            'placeholder="e.g. k-means, 4 segments"> <span class="shown" aria-live="polite" '
            f'id="leaderboard-shown">{len(leaderboard):,} of {len(leaderboard):,} shown</span></p>'
            f"{_table_html(leaderboard, columns, recommended, 'leaderboard')}</section>")


def _stability_html(stability: pd.DataFrame | None, recommended: str | None) -> str:
    if stability is None:
        return ""
    columns = [column for column in STABILITY_COLUMNS if column in stability.columns]
    return ('<section><h2>Stability</h2><p class="note">Adjusted Rand index between each '
            "solution and its refits on resampled customers: 1 means the same segments every "
            "time. Stability Jaccard mean: the mean over its segments of each segment's "
            "Jaccard similarity with its best match in the refits.</p>"
            f"{_table_html(stability, columns, recommended, 'stability')}</section>")


def _segment_stability_html(segments: pd.DataFrame | None, recommended: str | None,
                            profile: pd.DataFrame | None = None, words: str | None = None) -> str:
    if segments is None or segments.empty:
        return ""
    if "solution" in segments.columns:
        if recommended is None:
            return ""
        segments = segments[segments["solution"].astype(str) == recommended]
        if segments.empty:
            return ""
    columns = [column for column in SEGMENT_STABILITY_SHOWN if column in segments.columns]
    if not columns:
        return ""
    if profile is not None and "segment" in segments.columns and "name" not in segments.columns:
        # the segments' names, as the profile gives them
        names = dict(zip(profile["segment"].tolist(), profile["name"].tolist(), strict=True))
        segments = segments.assign(name=[names.get(s, MISSING) for s in segments["segment"]])
        columns.insert(columns.index("segment") + 1, "name")
    whose = f" of {_esc(words or recommended)}" if recommended is not None else ""
    return ('<section><h2>Stability per segment</h2><p class="note">Each segment'
            f"{whose} against its best match when refitted on resampled customers: the "
            "Jaccard similarity (shared customers over customers in either; Hennig's "
            f"clusterboot), mean and lowest over the resamples. {STABLE} or more: stable; "
            f"{DOUBTFUL} to {STABLE}: doubtful; under {DOUBTFUL}: not to be trusted.</p>"
            f"{_table_html(segments, columns, None, 'segment-stability')}</section>")


def _feature_info_html(info: pd.DataFrame | None, notes: Sequence[str]) -> str:
    if info is None and not notes:
        return ""
    items = "".join(f"<li>{_esc(note)}</li>" for note in notes)
    note_list = f'<ul class="notes">{items}</ul>' if items else ""
    table = ""
    if info is not None:
        columns = [c for c in FEATURE_INFO_SHOWN if c in info.columns]
        table = _table_html(info, columns, None, "feature-info")
    return ('<section><h2>Columns of the customer table</h2><p class="note">How each column was '
            "read, what was missing and what it became in the clustered matrix.</p>"
            f"{note_list}{table}</section>")


# ---------------------------------------------------------------- plots


def _elbow_lines(leaderboard: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One (label, rows sorted by k) per (algorithm, scaling, tol) of the k-means rows."""
    if not {"algorithm", "n_clusters"} <= set(leaderboard.columns):
        return []
    elbow = [name for name, algo in ALGORITHMS.items() if algo.elbow]
    rows = leaderboard[leaderboard["algorithm"].isin(elbow)]
    if rows.empty:
        return []

    def line(row: pd.Series) -> str:  # in words: "k-means, tol 0.0001, log scaling"
        algo = ALGORITHMS[str(row["algorithm"])]
        params = parse_params(row["params"]) if "params" in row else {}
        parts = [algo.describe({k: _format_param(v) for k, v in params.items()
                                if k != algo.k_param})]
        for key in ("representation", "scaling"):
            if key in row and not _is_missing(row[key]):
                parts.append(f"{row[key]} scaling")
                break
        return ", ".join(parts)

    keys = rows.apply(line, axis=1)
    return [(str(key), group.sort_values("n_clusters"))
            for key, group in rows.groupby(keys, sort=True)]


def _elbow_plots(leaderboard: pd.DataFrame,
                 knee: int | None) -> list[tuple[str, str, go.Figure | None, str]]:
    """(div id, heading, figure or None, note) for the two elbow plots."""
    lines = _elbow_lines(leaderboard)
    plots = []
    for div_id, metric, heading in (
        ("elbow-msd", "mean_squared_distance", "Elbow: mean squared distance by k"),
        ("elbow-davies-bouldin", "davies_bouldin", "Davies-Bouldin index by k (lower is better)"),
    ):
        if not lines:
            plots.append((div_id, heading, None, "No k-means solutions in this run."))
        elif metric not in leaderboard.columns:
            plots.append((div_id, heading, None, f"The leaderboard has no {metric} column."))
        else:
            plots.append((div_id, heading, _line_figure(lines, metric, knee), ""))
    return plots


def _line_figure(lines: Sequence[tuple[str, pd.DataFrame]], metric: str,
                 knee: int | None) -> go.Figure:
    import plotly.graph_objects as go  # plotly loads on first report, not on import

    figure = go.Figure()
    for label, rows in lines:
        rows = rows[rows[metric].notna()]
        figure.add_trace(go.Scatter(
            x=rows["n_clusters"].astype(float).tolist(),
            y=rows[metric].astype(float).tolist(),
            customdata=rows["solution"].astype(str).tolist(),
            mode="lines+markers",
            name=label,
            hovertemplate=("%{customdata}<br>k=%{x}<br>" + _label(metric)
                           + "=%{y:.4g}<extra></extra>"),
        ))
    if _needs_log_axis(lines, metric):
        figure.update_yaxes(type="log", dtick=1, title_text=f"{_label(metric)} (log scale)")
    if knee is not None:
        figure.add_vline(x=knee, line_dash="dash", line_color="#6e7781",
                         annotation_text=f"knee k = {knee}", annotation_position="top right")
    figure.update_layout(
        template="plotly_white",
        height=_PLOT_HEIGHT,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        font={"color": "#1f2328"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        xaxis={"title": {"text": "clusters (k)"}, "dtick": 1},
        yaxis={"title": {"text": _label(metric)}},
    )
    return figure


def _needs_log_axis(lines: Sequence[tuple[str, pd.DataFrame]], metric: str) -> bool:
    """Log scale when one line sits 10x above another (e.g. scaled vs unscaled distances),
    so the flatter lines keep a visible elbow."""
    values = pd.concat([rows[metric] for _, rows in lines]).dropna()
    if values.empty or (values <= 0).any():
        return False
    tops = [rows[metric].max() for _, rows in lines if rows[metric].notna().any()]
    return max(tops) / min(tops) > 10


def _plots_html(plots: Sequence[tuple[str, str, go.Figure | None, str]]) -> str:
    blocks = []
    for div_id, heading, figure, note in plots:
        if figure is None:
            content = f'<p class="note">{_esc(note)}</p>'
        else:
            content = _embed(figure, div_id, _PLOT_HEIGHT)
        blocks.append(f'<figure class="plot"><figcaption>{_esc(heading)}</figcaption>'
                      f"{content}</figure>")
    return f'<section><h2>Choosing k</h2><div class="plots">{"".join(blocks)}</div></section>'


def _projections_html(projections: Sequence[Mapping[str, Any]], profile: pd.DataFrame | None) -> str:
    """The recommended solution's customers in 2-D or 3-D, coloured by segment and named as
    in its profile. Each projection: ``heading``, ``projection`` (a
    :class:`~segmint.prepare.projections.Projection`) and the ``labels`` of its input rows."""
    from segmint.report._figures import projection_figure

    if not projections:
        return ""
    names = _names(profile)
    blocks = []
    for i, shown in enumerate(projections):
        figure = projection_figure(shown["projection"], shown["labels"], names)
        content = _embed(figure, f"projection-{i}", _PLOT_HEIGHT + 80)
        blocks.append(f'<figure class="plot"><figcaption>{_esc(shown["heading"])}</figcaption>'
                      f'{content}<p class="note">{_esc(shown["projection"].note)}</p></figure>')
    return ('<section id="projections"><h2>The segments, projected</h2><p class="note">Each point '
            'a customer of the recommended solution (a seeded sample on large tables), coloured '
            f'by segment.</p><div class="plots">{"".join(blocks)}</div></section>')


def _explanation_html(explanation: Any, profile: pd.DataFrame | None = None) -> str:
    """What sets the segments apart, by a surrogate model that predicts them."""
    if explanation is None:
        return ""
    names = _names(profile)
    top = explanation.importance.head(10)
    rows = "".join(f"<tr><td>{_esc(r.feature)}</td><td>{r.mean_abs_shap:.3f}</td>"
                   f"<td>{r.gain:.1%}</td></tr>" for r in top.itertuples())
    by = explanation.by_segment
    per = []
    for segment in sorted(by["segment"].unique()):
        part = by[by["segment"] == segment].sort_values("rank").head(3)
        words = ", ".join(f"{f} ({'+' if v > 0 else '-'})"
                          for f, v in zip(part["feature"], part["mean_shap"], strict=True))
        recall = explanation.recall_by_segment.get(int(segment), float("nan"))
        named = f"{int(segment)}: {names[int(segment)]}" if int(segment) in names else str(int(segment))
        per.append(f"<tr><td>{_esc(named)}</td><td>{_esc(words)}</td><td>{recall:.1%}</td></tr>")
    return ('<section id="explanation"><h2>What sets the segments apart</h2>'
            f'<p class="note">{_esc(explanation.note)}</p><div class="table-wrap"><table>'
            f'<thead><tr>{_heads("column", "mean |SHAP|", "gain share")}</tr></thead>'
            f'<tbody>{rows}</tbody></table></div><div class="table-wrap"><table><thead><tr>'
            + _heads("segment", "columns that put customers in it (+ pushes in, - pushes out)",
                     "recall")
            + f'</tr></thead><tbody>{"".join(per)}</tbody></table></div></section>')


def _ways_html(leaderboard: pd.DataFrame) -> str:
    """Several ways of clustering side by side: each one's best solution, measured in its own
    space and in the common one."""
    from segmint.cluster import compare_ways

    needed = {"algorithm", "representation", "n_clusters", "common_davies_bouldin"}
    if not needed <= set(leaderboard.columns):
        return ""
    ways = compare_ways(leaderboard)
    if len(ways) < 2:
        return ""

    def cells(row: Any, prefix: str) -> str:
        return (f"<td>{row[prefix + 'davies_bouldin']:.3f}</td>"
                f"<td>{row[prefix + 'calinski_harabasz']:,.0f}</td>"
                f"<td>{row[prefix + 'silhouette']:.3f}</td>")

    body = "".join(f"<tr><td>{_esc(r['way'])}</td><td>{_esc(r['solution'])}</td>"
                   f"<td>{int(r['n_clusters'])}</td>{cells(r, '')}{cells(r, 'common_')}</tr>"
                   for _, r in ways.iterrows())
    return ('<section id="ways"><h2>Ways compared</h2><p class="note">Each way\'s best solution. '
            'Measures taken in different spaces do not compare (a 2-D layout or a unit-length '
            'embedding scores differently from the one-hot table), so each is also measured in '
            'the common space, where the selection ranks them. Davies-Bouldin: lower is better; '
            'Calinski-Harabasz and silhouette: higher.</p><div class="table-wrap"><table><thead>'
            '<tr>' + _heads("way", "best solution", "k", "Davies-Bouldin", "Calinski-Harabasz",
                            "silhouette", "DB, common", "CH, common", "silhouette, common")
            + f'</tr></thead><tbody>{body}</tbody></table></div></section>')


OUTLIERS_SHOWN = 20


def _outliers_html(outliers: pd.DataFrame | None, manifest: Mapping[str, Any]) -> str:
    """The customers set apart, most unusual first, with the rule that set them apart."""
    rule = manifest.get("outliers")
    if outliers is None or outliers.empty or not isinstance(rule, Mapping):
        return ""
    customers = manifest.get("customers")
    share = f" ({_format_percent(len(outliers) / customers)} of all)" \
        if isinstance(customers, int) and customers else ""
    how = f"{rule.get('method', 'a detector')}".replace("_", " ")
    if rule.get("contamination") is not None:
        how += f", which flags the {_format_percent(float(rule['contamination']))} most unusual"
    columns = ["customer", "unusual_on", "how_far",
               *[c for c in outliers.columns if c not in {"customer", "unusual_on", "how_far"}]]
    shown = outliers.head(OUTLIERS_SHOWN)
    return ('<section id="outliers" aria-labelledby="outliers-heading"><h2 id="outliers-heading">'
            f'Outliers</h2><p class="note">{len(outliers):,} customers{_esc(share)} were set '
            f"apart by {_esc(how)}; they are in no segment (segment -1). The "
            f"{min(len(outliers), OUTLIERS_SHOWN)} most unusual, each with the feature on which "
            "it is furthest from the median customer (in interquartile ranges): worth a look "
            "one by one (a wholesaler, a data error, a reseller).</p>"
            f"{_table_html(shown, columns, None, 'outlier-table')}</section>")


def _migration_html(migration: Mapping[str, Any] | None) -> str:
    """Where the previous run's customers are now: the transition matrix as a heatmap."""
    from segmint.report._figures import migration_figure

    if migration is None or migration["counts"].empty:
        return ""
    figure = migration_figure(migration["counts"])
    lines = [line.strip() for line in str(migration.get("summary", "")).splitlines() if line.strip()]
    said = f'<p class="summary">{_esc(lines[0])}</p>' if lines else ""
    rest = "".join(f"<li>{_esc(line)}</li>" for line in lines[1:])
    return ('<section id="migration" aria-labelledby="migration-heading">'
            '<h2 id="migration-heading">Where customers moved since the previous run</h2>'
            f"{said}" + (f'<ul class="notes">{rest}</ul>' if rest else "")
            + '<p class="note">Rows: each customer&#x27;s segment in the previous run (new '
            "customers a row of their own); columns: their segment now (lapsed customers, not "
            "in this run, a column). Each cell: customers, and the share of its row.</p>"
            '<figure class="plot wide"><figcaption>Transition matrix</figcaption>'
            f'{_embed(figure, "migration-matrix", int(figure.layout.height))}</figure></section>')


def _heads(*names: str) -> str:
    """Column headings (``<th scope="col">``) of a table made here."""
    return "".join(f'<th scope="col">{_esc(name)}</th>' for name in names)


def _names(profile: pd.DataFrame | None) -> dict[int, str]:
    """Segment id -> name, as the profile gives them."""
    if profile is None:
        return {}
    return {int(s): str(n) for s, n in zip(profile["segment"], profile["name"], strict=True)}


def _embed(figure: go.Figure, div_id: str, height: int) -> str:
    """A figure as a div of the page (plotly.js is inlined once, elsewhere); its camera
    button saves it as a PNG named after the div."""
    import plotly.io as pio

    collected = _COLLECTED.get()
    if collected is not None:
        collected[div_id] = figure
    config = {**_PLOT_CONFIG, "toImageButtonOptions": {"format": "png", "filename": div_id,
                                                       "scale": 2}}
    return pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=config, default_height=f"{height}px")


def _heatmap_html(profile: pd.DataFrame | None) -> str:
    """Lift per feature and segment as colours that know which direction is good."""
    from segmint.report._figures import profile_heatmap

    if profile is None or profile.empty:
        return ""
    features = [f for f in _profile_features(profile) if f"lift_{f}" in profile.columns]
    if not features:
        return ""
    figure = profile_heatmap(profile, features, {f: _label(f) for f in features})
    height = int(figure.layout.height or _PLOT_HEIGHT)
    return ('<section id="heatmap" aria-labelledby="heatmap-heading"><h2 id="heatmap-heading">'
            'How the segments differ</h2><p class="note">Each cell is a segment&#x27;s lift on a '
            "feature: its average over the average customer (a categorical feature: its most "
            "common level, and how much more common it is than among all customers). Green is "
            "better than typical and red worse, where the better direction is known (more "
            "revenue, a shorter time since the last purchase); elsewhere orange is higher and "
            "blue lower, with no judgement. Colours stop deepening at ×4 either way.</p>"
            '<figure class="plot wide"><figcaption>Lift by segment and feature</figcaption>'
            f'{_embed(figure, "profile-heatmap", height)}</figure></section>')


def _silhouette_html(silhouette: Mapping[str, Any] | None, profile: pd.DataFrame | None,
                     words: str | None) -> str:
    """The silhouette plot of the recommended solution."""
    from segmint.report._figures import silhouette_figure

    if silhouette is None or not len(silhouette["values"]):
        return ""
    values = np.asarray(silhouette["values"])
    figure = silhouette_figure(values, np.asarray(silhouette["labels"]), _names(profile))
    drawn, total = len(values), int(silhouette.get("customers", len(values)))
    sample = (f"A seeded sample of {drawn:,} of the {total:,} clustered customers, each "
              "segment in its share." if drawn < total else f"All {drawn:,} clustered customers.")
    space = silhouette.get("representation")
    where = f" in the {space} space the solution was fit in" if space else ""
    return ('<section id="silhouette" aria-labelledby="silhouette-heading">'
            '<h2 id="silhouette-heading">How well each customer fits its segment</h2>'
            '<p class="note">The silhouette of each customer' + _esc(where) + ": near 1, much "
            "closer to its own segment than to the next; near 0, on the border between two; "
            "below 0, closer to another segment than to its own. A segment with a wide band "
            f"above the dashed mean is well separated. {_esc(sample)} Outliers and noise are "
            "not clustered and not shown.</p>"
            f'<figure class="plot wide"><figcaption>Silhouette plot of {_esc(words or "")}'
            f'</figcaption>{_embed(figure, "silhouette-plot", int(figure.layout.height))}'
            "</figure></section>")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # One inline copy for every figure on the page; "</script" cannot end it early.
    source = get_plotlyjs().replace("</script", "<\\/script")
    return f'<script type="text/javascript">{source}</script>'


# ---------------------------------------------------------------- page

_CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --accent: #0b5cad;
        --pick: #fff8c5; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 24px 48px; }
.summary { font-size: 16px; max-width: 70em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card h3 { margin: 0 0 4px; font-size: 16px; }
.card .description { margin: 0 0 6px; color: var(--muted); }
.card .figures { margin: 0 0 6px; font-weight: 600; }
.card .traits { margin: 0 0 6px; padding-left: 18px; }
.card .action { margin: 0; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0;
          font-size: 13px; color: var(--muted); }
dl.meta dt { font-weight: 600; color: var(--ink); }
dl.meta dd { margin: 0; }
.kv .k { font-style: italic; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.pick-box { margin-top: 20px; padding: 4px 20px 12px; border: 2px solid var(--accent);
            border-radius: 8px; background: #f3f8ff; }
.pick-box h2 { border: 0; margin: 8px 0 0; font-size: 14px; text-transform: uppercase;
               letter-spacing: .04em; color: var(--muted); }
.pick-box .pick { margin: 0; font-size: 24px; font-weight: 700; color: var(--accent); }
.pick-box .pick.none { color: var(--muted); }
.reasons { margin: 6px 0 0; padding-left: 20px; }
.note { margin: 4px 0 10px; font-size: 13px; color: var(--muted); }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; vertical-align: bottom; }
#leaderboard td:first-child, #stability td:first-child { white-space: nowrap; }
#leaderboard { font-size: 12px; }
#leaderboard th, #leaderboard td { padding: 4px 6px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.recommended td { background: var(--pick); font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
table.profile { font-size: 14px; }
table.profile td { padding: 8px; }
.seg-id { color: var(--muted); }
.badge { display: inline-block; margin-left: 8px; padding: 0 8px; border-radius: 10px;
         background: #8250df; color: #fff; font-size: 11px; font-weight: 600; vertical-align: 1px; }
.lift { color: var(--muted); }
.lift.hi { color: #1a7f37; font-weight: 600; }
.lift.lo { color: #cf222e; }
.lift.up { color: var(--ink, #1f2328); font-weight: 600; }
.lift.down { font-style: italic; }
.bar { height: 4px; margin-top: 3px; border-radius: 2px; background: #eaeef2; }
.bar span { display: block; height: 100%; border-radius: 2px; background: var(--accent); }
/* auto-fill, not auto-fit: the first plot is drawn before the second exists, and must not
   take the whole row then. */
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 16px; }
figure.plot { margin: 0; min-width: 0; }
figcaption { font-weight: 600; font-size: 14px; }
figure.plot.wide { max-width: 1100px; }
.pick-box .pick-id { margin: 0; font-size: 12px; color: var(--muted); }
.filter { margin: 4px 0 8px; font-size: 13px; }
.filter input { font: inherit; padding: 3px 6px; min-width: 18em; border: 1px solid #8c959f;
                border-radius: 4px; }
.filter .shown { color: var(--muted); margin-left: 8px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.two h4 { margin: 4px 0; font-size: 14px; }
.two ol { margin: 0; padding-left: 20px; }
"""

# Click (or Enter on) a heading to sort by it; numbers sort by data-v, empty cells go last.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      function key(cell) {
        var v = cell.getAttribute("data-v");
        if (v === null) { return cell.textContent === "\\u2014" ? null : cell.textContent; }
        return v === "" ? null : parseFloat(v);
      }
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var c = typeof x === "number" ? x - y
              : String(x).localeCompare(String(y), undefined, {numeric: true});
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
"""

# Typing in a table's filter box keeps the rows whose text contains every word typed.
_FILTER_JS = """
document.querySelectorAll("input[data-table]").forEach(function (input) {
  var table = document.getElementById(input.getAttribute("data-table"));
  var shown = document.getElementById(input.getAttribute("data-table") + "-shown");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var n = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !keep;
      n += keep ? 1 : 0;
    });
    if (shown) { shown.textContent = n.toLocaleString("en") + " of " +
                 rows.length.toLocaleString("en") + " shown"; }
  });
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
{plotly_js}
</head>
<body>
<main>
{body}
</main>
<script>{sort_js}{filter_js}</script>
</body>
</html>
"""
