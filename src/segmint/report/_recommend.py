"""The report of a recommend run: what was read, the models beside the naive baselines (in
words, a chart and the table), what each segment buys and is recommended, and a sample of the
top-N lists. The same page as a segmentation run's (one style, plotly inline, no CDN).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from segmint.errors import ModelError
from segmint.report._html import (
    _CSS,
    _FILTER_JS,
    _PAGE,
    _SORT_JS,
    _embed,
    _esc,
    _header_html,
    _label,
    _plotly_js,
    _table_html,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["build_recommend_report", "render_recommend_report"]

#: ranking measures drawn, in this order, when the metrics have them
RANKING_SHOWN = ("ndcg_at_k", "precision_at_k", "recall_at_k", "map_at_k", "hit_rate_at_k")
#: rating measures drawn (lower is better), when the metrics have them
RATING_SHOWN = ("rmse", "mae")
_BASELINE_COLOUR = "#8c959f"
_MODEL_COLOUR = "#0b5cad"
_ITEMS_SHOWN = 10
_SAMPLE_CUSTOMERS = 10


def build_recommend_report(run: str | Path) -> str:
    """The report of a recommend run folder (``segmint recommend``), from its files."""
    folder = Path(run)
    for name in ("manifest.json", "metrics.csv", "recommendations.parquet"):
        if not (folder / name).is_file():
            raise ModelError(f"the recommend run lacks {name}", file=str(folder))
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        metrics = pd.read_csv(folder / "metrics.csv")
        recommendations = pd.read_parquet(folder / "recommendations.parquet")
    except Exception as exc:  # a damaged file: pandas and pyarrow raise many kinds
        raise ModelError(f"the recommend run is unreadable ({type(exc).__name__}: {exc})",
                         file=str(folder)) from None
    by_segment = folder / "segment_top_items.parquet"
    return render_recommend_report(
        title=f"segmint recommendations {manifest.get('name', folder.name)}",
        manifest=manifest, metrics=metrics, recommendations=recommendations,
        segment_top_items=pd.read_parquet(by_segment) if by_segment.is_file() else None)


def render_recommend_report(*, title: str, manifest: Mapping[str, Any], metrics: pd.DataFrame,
                            recommendations: pd.DataFrame,
                            segment_top_items: pd.DataFrame | None = None) -> str:
    """A recommend run as one self-contained page.

    Parameters
    ----------
    title : str
    manifest : mapping
        The run's manifest: ``interactions`` (``rows``, ``customers``, ``items``, ``kind``,
        ``notes``), ``models`` (evaluated, baselines included), ``recommend_with``, ``top_n``,
        ``k``, ``split``.
    metrics : pandas.DataFrame
        ``metrics.csv``: ``model``, ``split`` (``mean`` rows are the averages) and the measures.
    recommendations : pandas.DataFrame
        ``customer``, ``rank``, ``item``, ``score`` and optionally ``title``.
    segment_top_items : pandas.DataFrame or None
        What each segment buys and is recommended (``segment``, ``source``, ``rank``,
        ``item``, ``customers``, ``share``, optionally ``title``).

    Returns
    -------
    str
        The HTML document.
    """
    from segmint.recommend.pipeline import BASELINES

    baselines = {b for names in BASELINES.values() for b in names}
    mean = metrics[metrics["split"].astype(str) == "mean"].drop(columns=["split"])
    chosen = str(manifest.get("recommend_with", ""))
    k = manifest.get("k")
    figures = []
    ranking = [m for m in RANKING_SHOWN if m in mean.columns and mean[m].notna().any()]
    rating = [m for m in RATING_SHOWN if m in mean.columns and mean[m].notna().any()]
    if ranking:
        figures.append(("recommend-ranking", f"Ranking measures at k = {k} (higher is better)",
                        _bars(mean, ranking, baselines, k)))
    if rating:
        figures.append(("recommend-rating", "Rating errors (lower is better)",
                        _bars(mean, rating, baselines, k)))
    header = {key: value for key, value in manifest.items()
              if key not in {"interactions", "timings_seconds", "side_features"}}
    sections = [
        _header_html(title, header),
        _summary(manifest, mean, chosen, baselines, ranking, rating),
        _figures(figures),
        _metrics_table(mean, chosen),
        _segments(segment_top_items),
        _sample(recommendations, chosen),
    ]
    return _PAGE.format(title=_esc(title), css=_CSS, plotly_js=_plotly_js() if figures else "",
                        body="\n".join(s for s in sections if s), sort_js=_SORT_JS,
                        filter_js=_FILTER_JS)


def _summary(manifest: Mapping[str, Any], mean: pd.DataFrame, chosen: str, baselines: set[str],
             ranking: list[str], rating: list[str]) -> str:
    """What was read and how the chosen model does beside the best baseline, in words."""
    read = manifest.get("interactions") or {}
    said = []
    if read:
        said.append(f"{int(read.get('customers', 0)):,} customers and "
                    f"{int(read.get('items', 0)):,} items, from {int(read.get('rows', 0)):,} "
                    f"{'ratings' if read.get('kind') == 'explicit' else 'interactions'}.")
    said.append(f"Every customer gets the top {manifest.get('top_n')} items of {chosen} "
                f"(items they already have left out).")
    rows = mean.set_index("model")
    others = [b for b in rows.index if b in baselines]
    if chosen in rows.index and others:
        for measure, better in ((ranking[0] if ranking else None, max),
                                (rating[0] if rating else None, min)):
            if measure is None:
                continue
            values = rows.loc[others, measure].dropna()
            if values.empty or pd.isna(rows.loc[chosen, measure]):
                continue
            best = better(values.index, key=lambda b: values[b])
            mine, theirs = float(rows.loc[chosen, measure]), float(values[best])
            words = _label(measure).replace(" at k", f"@{manifest.get('k')}")
            ratio = f" ({mine / theirs:.1f} times as high)" if better is max and theirs > 0 \
                else ""
            said.append(f"On the held-out {manifest.get('split', '')} split, its {words} is "
                        f"{mine:.4f} against {theirs:.4f} for the best naive baseline "
                        f"({best}){ratio}.")
    notes = "".join(f"<li>{_esc(note)}</li>" for note in read.get("notes", []))
    return ('<section id="summary" aria-labelledby="summary-heading"><h2 id="summary-heading">'
            f'Summary</h2><p class="summary">{_esc(" ".join(said))}</p>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</section>")


def _bars(mean: pd.DataFrame, measures: list[str], baselines: set[str], k: Any) -> go.Figure:
    """One group of bars per measure, one bar per model; baselines grey."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for _, row in mean.iterrows():
        model = str(row["model"])
        baseline = model in baselines
        figure.add_trace(go.Bar(
            x=[_label(m).replace(" at k", f"@{k}") for m in measures],
            y=[float(row[m]) for m in measures],
            name=f"{model} (baseline)" if baseline else model,
            marker={"color": _BASELINE_COLOUR if baseline else None,
                    "pattern": {"shape": "/" if baseline else ""}},
            hovertemplate=f"{model}<br>%{{x}} = %{{y:.4f}}<extra></extra>"))
    figure.update_layout(template="plotly_white", barmode="group", height=380,
                         margin={"l": 60, "r": 20, "t": 30, "b": 50}, font={"color": "#1f2328"},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0})
    return figure


def _figures(figures: list[tuple[str, str, go.Figure]]) -> str:
    if not figures:
        return ""
    blocks = "".join(f'<figure class="plot"><figcaption>{_esc(heading)}</figcaption>'
                     f"{_embed(figure, div_id, 380)}</figure>"
                     for div_id, heading, figure in figures)
    return ('<section id="model-charts"><h2>The models beside the naive baselines</h2>'
            '<p class="note">Measured on held-out interactions, averaged over the splits. The '
            "grey, hatched bars are the naive baselines every model must beat.</p>"
            f'<div class="plots">{blocks}</div></section>')


def _metrics_table(mean: pd.DataFrame, chosen: str) -> str:
    columns = [c for c in mean.columns if mean[c].notna().any()]
    table = _table_html(mean.rename(columns={"model": "solution"}),
                        ["solution", *[c for c in columns if c != "model"]], chosen,
                        "recommend-metrics")
    return ('<section id="metrics"><h2>Every measure</h2><p class="note">The mean over the '
            "splits; click a heading to sort. The model the recommendations come from is "
            f"highlighted.</p>{table}</section>")


def _segments(by_segment: pd.DataFrame | None) -> str:
    """Per segment, the items its customers bought most beside those recommended to it most."""
    if by_segment is None or by_segment.empty:
        return ""
    name = "title" if "title" in by_segment.columns else "item"
    blocks = []
    for segment, rows in by_segment.groupby("segment", sort=True):
        columns = []
        for source in ("bought", "recommended"):
            part = rows[rows["source"] == source].sort_values("rank").head(_ITEMS_SHOWN)
            items = "".join(f"<li>{_esc(r[name] if pd.notna(r[name]) else r['item'])} "
                            f'<span class="note">({r["share"]:.0%} of the segment)</span></li>'
                            for _, r in part.iterrows())
            columns.append(f'<div><h4>{source.capitalize()} most</h4><ol>{items}</ol></div>')
        blocks.append(f'<article class="card"><h3>Segment {_esc(segment)}</h3>'
                      f'<div class="two">{"".join(columns)}</div></article>')
    return ('<section id="segment-items"><h2>What each segment buys, and is recommended</h2>'
            '<p class="note">The items most of a segment&#x27;s customers bought (in the '
            "training interactions) beside those most often in their top-N lists; the share is "
            "of the segment&#x27;s customers.</p>"
            f'<div class="cards">{"".join(blocks)}</div></section>')


def _sample(recommendations: pd.DataFrame, chosen: str) -> str:
    customers = recommendations["customer"].drop_duplicates().head(_SAMPLE_CUSTOMERS)
    rows = recommendations[recommendations["customer"].isin(customers)
                           & (recommendations["rank"] <= 5)]
    columns = [c for c in ("customer", "rank", "item", "title", "score") if c in rows.columns]
    return ('<section id="recommendations"><h2>Recommendations, a first look</h2>'
            f'<p class="note">The top 5 of {_esc(chosen)} for the first {len(customers)} '
            "customers; recommendations.parquet and .csv hold every customer&#x27;s list.</p>"
            f"{_table_html(rows, columns, None, 'recommend-sample')}</section>")
