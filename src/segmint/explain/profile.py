"""Per-segment profiles a marketing manager can read, in the features' own units."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

__all__ = ["profile", "centroids_long", "name_segments", "good_direction", "GOOD_DIRECTION",
           "NOISE_NAME"]

#: words for a feature being high / low; anything else reads "high <feature>" / "low <feature>"
_WORDS: dict[str, tuple[str, str]] = {
    "gross_revenue": ("high revenue", "low revenue"),
    "monetary": ("high spend", "low spend"),
    "revenue": ("high revenue", "low revenue"),
    "Amount": ("high spend per line", "low spend per line"),
    "recency_days": ("lapsed", "recent"),
    "Recency": ("lapsed", "recent"),
    "frequency": ("frequent", "infrequent"),
    "NumberOfOrders": ("many orders", "few orders"),
    "quantity_of_products": ("many products", "few products"),
    "returns": ("many returns", "few returns"),
}

NOISE_NAME = "outliers (noise)"

#: Which way is good for a feature a marketer reads: +1 higher is better (spend, frequency),
#: -1 lower is better (days since the last purchase, returns). Features not listed have no
#: good direction (age, a balance): a report shows them high or low, not good or bad.
GOOD_DIRECTION: dict[str, int] = {
    "gross_revenue": 1, "monetary": 1, "revenue": 1, "Amount": 1, "frequency": 1,
    "NumberOfOrders": 1, "quantity_of_products": 1,
    "recency_days": -1, "Recency": -1, "returns": -1,
}


def good_direction(feature: str) -> int:
    """+1 when more of ``feature`` is good, -1 when less is, 0 when neither is known.

    Examples
    --------
    >>> good_direction("recency_days"), good_direction("monetary"), good_direction("age")
    (-1, 1, 0)
    """
    return GOOD_DIRECTION.get(feature, 0)


def _types(table: pd.DataFrame, types: dict[str, str] | None) -> dict[str, str]:
    """Column types, inferred from dtypes where not given (numbers numeric, else categorical)."""
    types = dict(types or {})
    for column in table.columns:
        if column not in types:
            numeric = pd.api.types.is_numeric_dtype(table[column]) \
                and not pd.api.types.is_bool_dtype(table[column])
            types[column] = "numeric" if numeric else "categorical"
    return types


def _indicators(table: pd.DataFrame,
                types: dict[str, str]) -> tuple[pd.DataFrame, list[tuple[str, object]]]:
    """Numeric and binary columns as they are; each categorical level as a 0/1 column, so
    every measure below is a mean. Returns the wide table (columns 0..m-1) and, per column,
    its (feature, level) with level None for a numeric or binary feature."""
    parts, keys = [], []
    for column in table.columns:
        if types[column] == "categorical":
            values = table[column].astype("object")
            for level in pd.unique(values.dropna()):
                parts.append((values == level).astype("float64").where(values.notna()))
                keys.append((column, level))
        else:
            parts.append(pd.to_numeric(table[column], errors="coerce").astype("float64"))
            keys.append((column, None))
    wide = pd.concat(parts, axis=1, ignore_index=True) if parts else pd.DataFrame(index=table.index)
    return wide, keys


def name_segments(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
                  top: int = 3, threshold: float = 0.25) -> dict[int, str]:
    """Name each segment by the features that set it apart most.

    A numeric feature counts when the segment's mean is at least ``threshold`` population
    standard deviations from the population mean; a categorical level counts when its share
    in the segment is that far above its share overall (measured the same way, as a 0/1
    column). The ``top`` largest differences name the segment ("high revenue, frequent,
    recent"; "job: retired"). Segments with none are "typical".

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 12.0, 1000.0], "recency_days": [300.0, 280.0, 2.0]})
    >>> name_segments(t, np.array([0, 0, 1]))
    {0: 'low revenue, lapsed', 1: 'high revenue, recent'}
    >>> t = pd.DataFrame({"job": ["retired", "student", "student", "admin."]})
    >>> name_segments(t, np.array([0, 1, 1, 0]))[1]
    'job: student'
    """
    types = _types(table, types)
    wide, keys = _indicators(table, types)
    mean, std = wide.mean(), wide.std(ddof=0).replace(0, np.nan)
    labels = np.asarray(labels)
    names: dict[int, str] = {}
    for seg in sorted({int(x) for x in labels}):
        if seg < 0:
            names[seg] = NOISE_NAME
            continue
        z = ((wide[labels == seg].mean() - mean) / std).dropna()
        # a categorical level names a segment only by being over-represented
        over = np.array([keys[j][1] is None or v > 0 for j, v in z.items()], dtype=bool)
        z = z[(z.abs() >= threshold).to_numpy() & over]
        z = z.reindex(z.abs().sort_values(ascending=False, kind="stable").index)[:top]
        words = []
        for j, value in z.items():
            feature, level = keys[j]
            if level is not None:
                words.append(f"{feature}: {level}")
            elif types.get(feature) == "binary":
                words.append(str(feature) if value > 0 else f"no {feature}")
            else:
                high, low = _WORDS.get(feature, (f"high {feature}", f"low {feature}"))
                words.append(high if value > 0 else low)
        names[seg] = ", ".join(words) if words else "typical"
    seen = Counter(names.values())
    for seg, name in list(names.items()):
        if seen[name] > 1:
            names[seg] = f"{name} ({seg})"
    return names


def profile(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
            revenue: str | None = None) -> pd.DataFrame:
    """One row per segment: segment, name, size, share and, per column of ``table``:

    - numeric and binary columns: ``mean_``, ``median_`` and ``lift_`` (segment mean /
      population mean; for a 0/1 column the mean is the share of ones);
    - categorical columns: ``top_<column>`` (the segment's most common level),
      ``topshare_<column>`` (its share in the segment) and ``lift_<column>`` (that share / the
      level's share overall).

    With ``revenue`` (a column of ``table`` holding each customer's total spend, as the recipe
    declares it), ``revenue_share`` is the segment's part of the total and ``insiders`` marks
    the segment with the highest mean revenue (noise excluded). Without one there are no such
    columns: no revenue figure is made up from another column.

    Examples
    --------
    >>> t = pd.DataFrame({"gross_revenue": [10.0, 30.0, 160.0]})
    >>> p = profile(t, np.array([0, 0, 1]), revenue="gross_revenue")
    >>> p[["segment", "size", "revenue_share", "insiders"]].values.tolist()
    [[0, 2, 0.2, False], [1, 1, 0.8, True]]
    >>> float(p.loc[1, "lift_gross_revenue"])
    2.4
    >>> "revenue_share" in profile(t, np.array([0, 0, 1])).columns
    False
    """
    labels = np.asarray(labels)
    types = _types(table, types)
    if revenue is not None and revenue not in table.columns:
        raise ValueError(f"revenue column {revenue!r} is not in the table")
    names = name_segments(table, labels, types=types)
    grouped_index = pd.Index(labels)
    sizes = pd.Series(labels).value_counts().sort_index()
    out = pd.DataFrame({"segment": sizes.index.astype(int),
                        "name": [names[int(s)] for s in sizes.index],
                        "size": sizes.to_numpy(), "share": sizes.to_numpy() / len(labels)})
    if revenue is not None:
        spend = pd.to_numeric(table[revenue]).astype("float64")
        total = spend.sum()
        by_seg = spend.groupby(grouped_index).sum().reindex(sizes.index)
        out["revenue_share"] = (by_seg / total).to_numpy() if total else np.nan
        seg_rev = spend.groupby(grouped_index).mean().reindex(sizes.index)
        seg_rev = seg_rev.where(seg_rev.index >= 0)
        top = seg_rev.idxmax() if seg_rev.notna().any() else None
        out["insiders"] = [bool(s == top) for s in sizes.index]
    for feature in table.columns:
        values = table[feature]
        if types[feature] == "categorical":
            values = values.astype("object")
            overall = values.value_counts(normalize=True)
            tops: list[str | None] = []
            shares: list[float] = []
            lifts: list[float] = []
            for seg in sizes.index:
                counts = values[labels == seg].value_counts(normalize=True)
                if counts.empty:
                    tops.append(None)
                    shares.append(np.nan)
                    lifts.append(np.nan)
                    continue
                level = counts.index[0]
                tops.append(str(level))
                shares.append(float(counts.iloc[0]))
                lifts.append(float(counts.iloc[0] / overall[level]))
            out[f"top_{feature}"] = tops
            out[f"topshare_{feature}"] = shares
            out[f"lift_{feature}"] = lifts
            continue
        numbers = pd.to_numeric(values).astype("float64")
        grouped = numbers.groupby(grouped_index)
        means = grouped.mean().reindex(sizes.index)
        out[f"mean_{feature}"] = means.to_numpy()
        out[f"median_{feature}"] = grouped.median().reindex(sizes.index).to_numpy()
        pop = numbers.mean()
        out[f"lift_{feature}"] = (means / pop).to_numpy() if pop != 0 else np.nan
    return out.reset_index(drop=True)


def centroids_long(table: pd.DataFrame, labels: np.ndarray, *,
                   types: dict[str, str] | None = None) -> pd.DataFrame:
    """BigQuery ML's ML.CENTROIDS shape: one row per (segment, feature) with the segment's mean
    in the feature's own units, and for a categorical feature one row per (segment, feature,
    category) with the category's share in the segment (BigQuery's ``categorical_value``).
    Noise (-1) is left out.

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1.0, 3.0, 10.0], "c": ["x", "y", "y"]})
    >>> centroids_long(t, np.array([0, 0, 1])).values.tolist()
    [[0, 'a', None, 2.0], [0, 'c', 'x', 0.5], [0, 'c', 'y', 0.5], [1, 'a', None, 10.0], [1, 'c', 'y', 1.0]]
    """
    labels = np.asarray(labels)
    types = _types(table, types)
    keep = labels >= 0
    rows: list[tuple[int, str, str | None, float]] = []
    for seg in sorted({int(x) for x in labels[keep]}):
        part = table[labels == seg]
        for feature in table.columns:
            if types[feature] == "categorical":
                shares = part[feature].astype("object").value_counts(normalize=True).sort_index()
                rows += [(seg, feature, str(level), float(share)) for level, share in shares.items()]
            else:
                rows.append((seg, feature, None, float(pd.to_numeric(part[feature]).mean())))
    out = pd.DataFrame(rows, columns=["segment", "feature", "category", "value"])
    out["category"] = out["category"].astype("object").where(out["category"].notna(), None)
    return out.astype({"segment": "int64"})
