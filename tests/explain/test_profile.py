from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmint.explain import centroids_long, name_segments, profile


@pytest.fixture
def table():
    return pd.DataFrame({
        "gross_revenue": [100.0, 120.0, 80.0, 5000.0, 7000.0, 10.0],
        "recency_days": [200.0, 180.0, 220.0, 3.0, 5.0, 100.0],
        "frequency": [0.01, 0.02, 0.01, 0.5, 0.7, 0.1],
    })


def test_profile_numbers_by_hand(table):
    labels = np.array([0, 0, 0, 1, 1, -1])
    p = profile(table, labels).set_index("segment")
    total = table["gross_revenue"].sum()  # 12310
    assert p.loc[1, "size"] == 2 and p.loc[1, "share"] == pytest.approx(2 / 6)
    assert p.loc[1, "revenue_share"] == pytest.approx(12000 / total)
    assert p.loc[1, "mean_gross_revenue"] == 6000.0 and p.loc[1, "median_recency_days"] == 4.0
    assert p.loc[1, "lift_gross_revenue"] == pytest.approx(6000 / (total / 6))
    assert p["insiders"].tolist() == [False, False, True]  # segments -1, 0, 1
    assert p.loc[-1, "name"] == "outliers (noise)"
    assert p.loc[1, "name"] == "high revenue, frequent, recent"


def test_names_are_unique(table):
    names = name_segments(table, np.array([0, 0, 1, 2, 2, 3]))
    assert len(set(names.values())) == 4


def test_centroids_long_is_ml_centroids_shaped(table):
    c = centroids_long(table, np.array([0, 0, 0, 1, 1, -1]))
    assert list(c.columns) == ["segment", "feature", "value"]
    assert len(c) == 2 * 3
    assert c[(c.segment == 0) & (c.feature == "recency_days")]["value"].item() == 200.0
