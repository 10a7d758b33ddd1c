"""Per-segment profiles a marketing manager can read, in the features' own units."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

__all__ = ["profile", "centroids_long", "name_segments", "revenue_column"]

#: words for a feature being high / low; anything else reads "high <feature>" / "low <feature>"
_WORDS: dict[str, tuple[str, str]] = {
    "gross_revenue": ("high revenue", "low revenue"),
    "Amount": ("high spend per line", "low spend per line"),
    "recency_days": ("lapsed", "recent"),
    "Recency": ("lapsed", "recent"),
    "frequency": ("frequent", "infrequent"),
    "NumberOfOrders": ("many orders", "few orders"),
    "quantity_of_products": ("many products", "few products"),
    "returns": ("many returns", "few returns"),
}

NOISE_NAME = "outliers (noise)"


def revenue_column(columns, preferred: str | None = None) -> str | None:
    """The column that holds revenue: ``preferred`` if given, else gross_revenue or Amount."""
    if preferred:
        return preferred
    for name in ("gross_revenue", "Amount", "revenue"):
        if name in columns:
            return name
    return None


def name_segments(table: pd.DataFrame, labels: np.ndarray, *, top: int = 3,
                  threshold: float = 0.25) -> dict[int, str]:
    """Name each segment by the features that set it apart most.

    A feature counts when the segment's mean is at least ``threshold`` population standard
    deviations from the population mean; the ``top`` largest such differences name it
    ("high revenue, frequent, recent"). Segments with none are "typical".

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 12.0, 1000.0], "recency_days": [300.0, 280.0, 2.0]})
    >>> name_segments(t, np.array([0, 0, 1]))
    {0: 'low revenue, lapsed', 1: 'high revenue, recent'}
    """
    mean, std = table.mean(), table.std(ddof=0).replace(0, np.nan)
    names: dict[int, str] = {}
    for seg in sorted(set(int(x) for x in labels)):
        if seg < 0:
            names[seg] = NOISE_NAME
            continue
        z = ((table[labels == seg].mean() - mean) / std).dropna()
        z = z[z.abs() >= threshold]
        z = z.reindex(z.abs().sort_values(ascending=False, kind="stable").index)[:top]
        words = []
        for feature, value in z.items():
            high, low = _WORDS.get(feature, (f"high {feature}", f"low {feature}"))
            words.append(high if value > 0 else low)
        names[seg] = ", ".join(words) if words else "typical"
    seen = Counter(names.values())
    for seg, name in list(names.items()):
        if seen[name] > 1:
            names[seg] = f"{name} ({seg})"
    return names


def profile(table: pd.DataFrame, labels: np.ndarray, *, revenue: str | None = None) -> pd.DataFrame:
    """One row per segment: segment, name, size, share, revenue_share, insiders, and for each
    feature its mean, median and lift (segment mean / population mean).

    The segment with the highest mean revenue (noise excluded) is marked ``insiders``.

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 30.0, 160.0]})
    >>> p = profile(t, np.array([0, 0, 1]))
    >>> p[["segment", "size", "revenue_share", "insiders"]].values.tolist()
    [[0, 2, 0.2, False], [1, 1, 0.8, True]]
    >>> float(p.loc[1, "lift_gross_revenue"])
    2.4
    """
    labels = np.asarray(labels)
    revenue = revenue_column(table.columns, revenue)
    names = name_segments(table, labels)
    pop_mean = table.mean()
    grouped = table.groupby(labels, sort=True)
    means, medians, sizes = grouped.mean(), grouped.median(), grouped.size()
    out = pd.DataFrame({"segment": sizes.index.astype(int), "name": [names[int(s)] for s in sizes.index],
                        "size": sizes.to_numpy(), "share": sizes.to_numpy() / len(labels)})
    if revenue is not None:
        total = table[revenue].sum()
        out["revenue_share"] = (grouped[revenue].sum() / total).to_numpy() if total else np.nan
        seg_rev = means[revenue].where(means.index >= 0)
        top = seg_rev.idxmax() if seg_rev.notna().any() else None
        out["insiders"] = [bool(s == top) for s in sizes.index]
    else:
        out["revenue_share"] = np.nan
        out["insiders"] = False
    for feature in table.columns:
        out[f"mean_{feature}"] = means[feature].to_numpy()
        out[f"median_{feature}"] = medians[feature].to_numpy()
        lift = means[feature] / pop_mean[feature] if pop_mean[feature] != 0 else np.nan
        out[f"lift_{feature}"] = np.asarray(lift, dtype=float)
    return out.reset_index(drop=True)


def centroids_long(table: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """BigQuery ML's ML.CENTROIDS shape: one row per (segment, feature) with the segment's mean
    in the feature's own units. Noise (-1) is left out.

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1.0, 3.0, 10.0]})
    >>> centroids_long(t, np.array([0, 0, 1])).values.tolist()
    [[0, 'a', 2.0], [1, 'a', 10.0]]
    """
    labels = np.asarray(labels)
    keep = labels >= 0
    means = table[keep].groupby(labels[keep], sort=True).mean()
    long = means.rename_axis("segment").reset_index().melt(id_vars="segment", var_name="feature",
                                                           value_name="value")
    long["segment"] = long["segment"].astype(int)
    order = {f: i for i, f in enumerate(table.columns)}
    long = long.sort_values(["segment", "feature"], key=lambda c: c.map(order) if c.name == "feature" else c)
    return long.reset_index(drop=True)
