"""Columns a customer table should not have but real exports do: each is handled by a stated
rule (in the feature report) or stopped with a clear message, never a traceback."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import segmint

N = 12_000


@pytest.fixture(scope="module")
def clients() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    amounts = rng.gamma(2, 10, N)
    return pd.DataFrame({
        "spend": rng.gamma(2, 100, N), "visits": rng.poisson(5, N).astype(float),
        "region": rng.choice(["N", "S", "E"], N),
        "empty": np.nan,                                                   # all null
        "flat": 7.0,                                                       # constant
        "amount": [f"{x:.2f}" if i % 50 else "n/a?" for i, x in enumerate(amounts)],  # 2% strays
        "mixed": [str(i) if i % 3 else "abc" for i in range(N)],           # a third text
        "postcode": [f"P{i % 10_000:05d}" for i in range(N)],              # 10,000 levels
    })


@pytest.fixture(scope="module")
def report(clients) -> pd.DataFrame:
    from segmint.pipeline import describe_columns

    return describe_columns(clients, {"recipe": {"kind": "attributes"}}).set_index("column")


def test_an_all_null_and_a_constant_column_are_left_out_saying_why(report):
    assert report.loc["empty", "type"] == "ignore"
    assert "every row is missing" in report.loc["empty", "reason"]
    assert report.loc["flat", "type"] == "ignore" and "constant" in report.loc["flat", "reason"]


def test_a_number_column_with_a_few_stray_tokens_is_numeric_and_the_strays_missing(clients, report):
    assert report.loc["amount", "type"] == "numeric"
    strays = int((clients["amount"] == "n/a?").sum())  # counted independently: 240
    assert f"{strays} values that are not ('n/a?') read as missing" in report.loc["amount", "reason"]
    assert int(report.loc["amount", "nulls"]) == strays
    assert "missing_amount" in report.loc["amount", "became"]


def test_a_column_of_numbers_and_words_is_named_mixed_and_left_out(report):
    assert report.loc["mixed", "type"] == "ignore"
    assert report.loc["mixed", "reason"].startswith("mixed types: 67% numbers and 33% text")


def test_a_10000_level_categorical_is_left_out_unless_asked_and_then_capped(clients, report, tmp_path):
    assert report.loc["postcode", "type"] == "ignore"
    assert "10000 distinct values" in report.loc["postcode", "reason"]
    spec = {"recipe": {"kind": "attributes", "columns": {"postcode": "categorical"}},
            "prepare": {"rare_share": 0, "max_levels": 20},
            "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2]}}]},
            "select": {"stability_resamples": 2}, "profile": {"explain": False, "projections": []}}
    run = segmint.run(clients, spec, output=tmp_path)
    columns = run.manifest["prepared_columns"]["standard"]
    postcode = [c for c in columns if c.startswith("postcode_")]
    # at most max_levels one-hot columns, the rest folded into postcode_other
    assert len(postcode) == 20 and "postcode_other" in postcode
    assert len(run.solution("kmeans_k2").labels()) == N
