"""Profiles and centroid tables of many solutions at once (explain.profiles,
explain.centroids_long_many) equal the per-solution pandas computation segmint had before
(tests/explain/_reference_profile.py), on a numeric table like the demo's and on a mixed
customer table with 0/1 columns, categories and missing values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _reference_profile import centroids_long as reference_centroids
from _reference_profile import profile as reference_profile

from segmint.explain import centroids_long, centroids_long_many, profile, profiles
from segmint.explain._grouped import group


def _numeric(n: int = 900) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(1)
    t = pd.DataFrame({"gross_revenue": rng.lognormal(5, 1.2, n),
                      "recency_days": rng.integers(0, 370, n).astype("float64"),
                      "qty_products": rng.poisson(30, n).astype("float64"),
                      "returns": np.where(rng.random(n) < 0.7, 0.0, rng.integers(1, 9, n))})
    return t, {c: "numeric" for c in t.columns}


def _mixed(n: int = 700) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(2)
    job = rng.choice(["admin.", "blue-collar", "technician", "retired", "student"], n,
                     p=[0.4, 0.25, 0.2, 0.1, 0.05]).astype(object)
    job[rng.random(n) < 0.05] = None
    balance = rng.normal(1500, 900, n)
    balance[rng.random(n) < 0.08] = np.nan
    t = pd.DataFrame({"age": rng.integers(18, 90, n).astype("float64"), "balance": balance,
                      "housing": rng.choice(["yes", "no"], n, p=[0.65, 0.35]),
                      "default": (rng.random(n) < 0.1).astype("float64"), "job": job})
    return t, {"age": "numeric", "balance": "numeric", "housing": "categorical",
               "default": "binary", "job": "categorical"}


def _labelings(t: pd.DataFrame) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    n = len(t)
    score = t.select_dtypes("number").rank(pct=True).mean(axis=1).to_numpy()
    noisy = np.minimum((score * 4).astype(int), 3)
    noisy[rng.random(n) < 0.03] = -1  # DBSCAN-like noise
    return [np.minimum((score * k).astype(int), k - 1) for k in (2, 3, 5, 8)] + [
        rng.integers(0, 6, n), noisy, np.zeros(n, dtype=int), np.arange(n) % 7 - 1]


@pytest.mark.parametrize("make", [_numeric, _mixed], ids=["numeric", "mixed"])
def test_profiles_of_many_labelings_equal_the_per_solution_pandas_profile(make):
    t, types = make()
    revenue = "gross_revenue" if "gross_revenue" in t.columns else None
    labelings = _labelings(t)
    got = profiles(t, labelings, types=types, revenue=revenue)
    assert len(got) == len(labelings)
    for labels, frame in zip(labelings, got, strict=True):
        want = reference_profile(t, labels, types=types, revenue=revenue)
        _settle_ties(t, types, labels, frame, want)
        # names and descriptions word for word; numbers to rounding (pandas adds with Kahan)
        pd.testing.assert_frame_equal(frame, want, check_exact=False, rtol=1e-12, atol=0)
        assert frame["size"].sum() == len(t)
    # one labeling alone gives the same frame as it does among many
    pd.testing.assert_frame_equal(profile(t, labelings[2], types=types, revenue=revenue), got[2])


def _settle_ties(t, types, labels, frame, want):
    """Where a segment's most common level is tied, pandas' value_counts picks either; segmint
    takes the one more common overall. Check that rule there, then compare the rest."""
    for column in [c for c in t.columns if types[c] == "categorical"]:
        overall = list(t[column].value_counts().index)
        for i, seg in enumerate(want["segment"]):
            counts = t.loc[labels == seg, column].value_counts()
            tied = list(counts.index[counts == counts.max()]) if len(counts) else []
            if len(tied) > 1:
                assert frame.loc[i, f"top_{column}"] == min(tied, key=overall.index)
                chosen = frame.loc[i, f"top_{column}"]
                want.loc[i, f"top_{column}"] = chosen
                # the lift is the level taken's
                want.loc[i, f"lift_{column}"] = counts.max() / counts.sum() / \
                    t[column].value_counts(normalize=True)[chosen]


@pytest.mark.parametrize("make", [_numeric, _mixed], ids=["numeric", "mixed"])
def test_centroid_tables_of_many_labelings_equal_the_per_solution_ones(make):
    t, types = make()
    labelings = _labelings(t)
    got = centroids_long_many(t, labelings, types=types)
    for labels, frame in zip(labelings, got, strict=True):
        want = reference_centroids(t, labels, types=types)
        pd.testing.assert_frame_equal(frame, want, check_exact=False, rtol=1e-12, atol=0)
        assert -1 not in set(frame["segment"])
    pd.testing.assert_frame_equal(centroids_long(t, labelings[1], types=types), got[1])


def test_group_medians_and_means_against_numpy_per_segment():
    rng = np.random.default_rng(4)
    x = rng.normal(size=301)
    x[rng.random(301) < 0.1] = np.nan
    labels = rng.integers(-1, 4, 301)
    g = group([labels, labels[::-1].copy()])
    for j, lab in enumerate([labels, labels[::-1]]):
        rows = g.rows[j]
        for r, seg in zip(range(rows.start, rows.stop), g.ids[j], strict=True):
            part = x[lab == seg]
            assert g.medians(x)[r] == np.nanmedian(part)
            assert g.means(x)[0][r, 0] == pytest.approx(np.nanmean(part), rel=1e-13)
            assert g.sizes()[r] == len(part)
    # a segment whose values are all missing has no median and no mean
    y = np.where(labels == 2, np.nan, x)
    r = g.rows[0].start + list(g.ids[0]).index(2)
    assert np.isnan(g.medians(y)[r]) and np.isnan(g.means(y)[0][r, 0])


def test_a_tie_for_the_top_level_goes_to_the_level_more_common_overall():
    t = pd.DataFrame({"channel": ["web", "web", "web", "store", "store", "app"]})
    p = profile(t, np.array([0, 0, 1, 1, 2, 2]), types={"channel": "categorical"})
    # segment 1 holds one web and one store, segment 2 one store and one app: web, then store
    # are the more common overall
    assert p["top_channel"].tolist() == ["web", "web", "store"]
    assert p["topshare_channel"].tolist() == [1.0, 0.5, 0.5]
    assert p["lift_channel"].tolist() == pytest.approx([2.0, 1.0, 1.5])
