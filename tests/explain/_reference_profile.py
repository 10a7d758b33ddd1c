"""The per-solution pandas implementation of profiles and centroid tables, as segmint had it
before profiles were computed for all solutions at once: the reference the vectorised path is
checked against (tests/explain/test_profiles_many.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from segmint.explain.profile import (
    NAME_PARTS,
    THRESHOLD,
    _descriptions,
    _indicators,
    _names,
    _Trait,
    _types,
    _yes_no,
)


def _traits(table: pd.DataFrame, labels: np.ndarray, types: dict[str, str]) -> dict[int, list[_Trait]]:
    wide, keys = _indicators(table, types)
    numeric = [j for j, (feature, level) in enumerate(keys)
               if level is None and types.get(feature) != "binary"]
    clipped = wide.copy()
    if numeric:
        low, high = wide[numeric].quantile(0.01), wide[numeric].quantile(0.99)
        clipped[numeric] = wide[numeric].clip(low, high, axis=1)
    mean, std = clipped.mean(), clipped.std(ddof=0).replace(0, np.nan)
    raw_mean = wide.mean()
    index = pd.Index(labels)
    by_segment = clipped.groupby(index).mean()
    raw_by_segment = wide.groupby(index).mean()
    yes_no = {feature: _yes_no(list(pd.unique(table[feature].dropna())))
              for feature in table.columns if types[feature] == "categorical"}

    out: dict[int, list[_Trait]] = {}
    for seg in by_segment.index:
        z = ((by_segment.loc[seg] - mean) / std).dropna()
        traits: dict[str, _Trait] = {}  # one per feature: a categorical's strongest level
        for j, value in z.items():
            feature, level = keys[int(j)]
            kind = "categorical" if level is not None else \
                "binary" if types.get(feature) == "binary" else "numeric"
            if kind == "numeric":
                seg_mean, pop_mean = float(raw_by_segment.loc[seg, j]), float(raw_mean[j])
                if np.sign(seg_mean - pop_mean) != np.sign(value):
                    continue
                trait = _Trait(feature, kind, float(value), seg_mean, pop_mean)
            elif kind == "binary":
                share, overall = float(by_segment.loc[seg, j]), float(mean[j])
                side = 1 if value > 0 else 0
                trait = _Trait(feature, kind, float(value), share if side else 1 - share,
                               overall if side else 1 - overall, level=side)
            else:
                if value <= 0:
                    continue
                trait = _Trait(feature, kind, float(value), float(by_segment.loc[seg, j]),
                               float(mean[j]), level=level, yes_no=yes_no.get(feature))
            if feature not in traits or abs(trait.z) > abs(traits[feature].z):
                traits[feature] = trait
        out[int(seg)] = sorted(traits.values(), key=lambda t: -abs(t.z))
    return out


def profile(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
            revenue: str | None = None) -> pd.DataFrame:
    labels = np.asarray(labels)
    types = _types(table, types)
    if revenue is not None and revenue not in table.columns:
        raise ValueError(f"revenue column {revenue!r} is not in the table")
    traits = _traits(table, labels, types)
    names = _names(traits, NAME_PARTS, THRESHOLD)
    descriptions = _descriptions(traits, table, labels, revenue)
    grouped_index = pd.Index(labels)
    sizes = pd.Series(labels).value_counts().sort_index()
    out = pd.DataFrame({"segment": sizes.index.astype(int),
                        "name": [names[int(s)] for s in sizes.index],
                        "description": [descriptions[int(s)] for s in sizes.index],
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
