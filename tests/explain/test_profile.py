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
    p = profile(table, labels, revenue="gross_revenue").set_index("segment")
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
    assert list(c.columns) == ["segment", "feature", "category", "value"]
    assert len(c) == 2 * 3
    assert c[(c.segment == 0) & (c.feature == "recency_days")]["value"].item() == 200.0


def test_no_revenue_declared_no_revenue_share(table):
    p = profile(table, np.array([0, 0, 0, 1, 1, 1]))
    assert "revenue_share" not in p.columns and "insiders" not in p.columns


def test_categorical_columns_get_top_level_share_and_lift():
    t = pd.DataFrame({"spend": [1.0, 2.0, 3.0, 10.0, 11.0, 12.0],
                      "job": ["admin.", "admin.", "student", "retired", "retired", "retired"]})
    p = profile(t, np.array([0, 0, 0, 1, 1, 1]), types={"spend": "numeric", "job": "categorical"})
    p = p.set_index("segment")
    assert p.loc[0, "top_job"] == "admin." and p.loc[0, "topshare_job"] == pytest.approx(2 / 3)
    # admin. is 2 of 6 overall (1/3) and 2 of 3 in segment 0: lift 2
    assert p.loc[0, "lift_job"] == pytest.approx(2.0)
    assert p.loc[1, "top_job"] == "retired" and p.loc[1, "lift_job"] == pytest.approx(2.0)
    assert "retired" in p.loc[1, "name"].split(", ")
    c = centroids_long(t, np.array([0, 0, 0, 1, 1, 1]), types={"spend": "numeric", "job": "categorical"})
    shares = c[(c.segment == 0) & (c.feature == "job")].set_index("category")["value"]
    assert shares.to_dict() == pytest.approx({"admin.": 2 / 3, "student": 1 / 3})
