"""RFM scores and the named RFM segments: the rule-based segmentation marketers already use.

The ``rfm`` feature set of :mod:`segmint.recipes.transactions` computes ``recency_days``,
``frequency`` and ``monetary`` per customer; :func:`rfm_segments` turns those into quintile
scores and a segment name, so a run can show the rule-based segments beside the clustered ones.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from segmint.errors import InputError

__all__ = ["RFM_COLUMNS", "RFM_SEGMENT_MAP", "RFM_SEGMENTS", "rfm_segment", "rfm_segments",
           "score_edges", "score_with_edges"]

#: The customer-table columns the scores are computed from.
RFM_COLUMNS = ("recency_days", "frequency", "monetary")

#: (R score)(F score) pattern -> segment, the map widely used in RFM tutorials (e.g. the
#: Kaggle "RFM segmentation" notebooks' ``seg_map``). Every one of the 25 (R, F) pairs matches
#: exactly one pattern.
RFM_SEGMENT_MAP: tuple[tuple[str, str], ...] = (
    (r"[1-2][1-2]", "Hibernating"),
    (r"[1-2][3-4]", "At risk"),
    (r"[1-2]5", "Cannot lose them"),
    (r"3[1-2]", "About to sleep"),
    (r"33", "Need attention"),
    (r"[3-4][4-5]", "Loyal customers"),
    (r"41", "Promising"),
    (r"51", "New customers"),
    (r"[4-5][2-3]", "Potential loyalists"),
    (r"5[4-5]", "Champions"),
)

#: The segment names, best customers first (the order a report lists them in).
RFM_SEGMENTS: tuple[str, ...] = (
    "Champions", "Loyal customers", "Potential loyalists", "New customers", "Promising",
    "Need attention", "About to sleep", "At risk", "Cannot lose them", "Hibernating",
)


def rfm_segment(r_score: int, f_score: int) -> str:
    """The named segment of one (R, F) score pair, from :data:`RFM_SEGMENT_MAP`.

    Examples
    --------
    >>> rfm_segment(5, 5), rfm_segment(1, 1), rfm_segment(3, 3), rfm_segment(5, 1)
    ('Champions', 'Hibernating', 'Need attention', 'New customers')
    """
    key = f"{int(r_score)}{int(f_score)}"
    for pattern, name in RFM_SEGMENT_MAP:
        if re.fullmatch(pattern, key):
            return name
    raise ValueError(f"scores must be in 1..5, got R={r_score}, F={f_score}")


#: (R score, F score) -> segment, for all 25 pairs.
_SEGMENT_OF = {(r, f): rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}

def _quintile_scores(values: pd.Series) -> pd.Series:
    # Ranking first makes every rank distinct, so qcut always finds five non-empty edges
    # and equal values still get a reproducible score (earlier customer id, lower rank).
    if len(values) == 1:
        return pd.Series([3], index=values.index, dtype="int64")
    ranks = values.rank(method="first")
    return (pd.qcut(ranks, 5, labels=False) + 1).astype("int64")


def rfm_segments(table: pd.DataFrame) -> pd.DataFrame:
    r"""Quintile R, F, M scores (1..5, 5 best) and the named RFM segment of each customer.

    Scores: ``r_score`` from ``recency_days`` (fewest days since the last purchase scores 5),
    ``f_score`` from ``frequency`` (most purchase occasions scores 5), ``m_score`` from
    ``monetary`` (highest spend scores 5). Each column is ranked with ``rank(method="first")``
    over the customers sorted by id, so ties are broken by customer id and the scores are
    deterministic, then the ranks are cut into five equal-count bins (``pandas.qcut``): each
    score holds a fifth of the customers (give or take one), whatever the ties. A table with
    one customer scores 3 everywhere.

    The segment comes from the R and F scores only (M is reported, not used), by this map
    (:data:`RFM_SEGMENT_MAP`; rows: R score, columns: F score):

    ===  ===================  ===================  ===================  ===================  ================
    R\F  F = 1                F = 2                F = 3                F = 4                F = 5
    ===  ===================  ===================  ===================  ===================  ================
    5    New customers        Potential loyalists  Potential loyalists  Champions            Champions
    4    Promising            Potential loyalists  Potential loyalists  Loyal customers      Loyal customers
    3    About to sleep       About to sleep       Need attention       Loyal customers      Loyal customers
    2    Hibernating          Hibernating          At risk              At risk              Cannot lose them
    1    Hibernating          Hibernating          At risk              At risk              Cannot lose them
    ===  ===================  ===================  ===================  ===================  ================

    Some 11-segment variants add "Lost"; their rules use the M score or score totals and
    differ from source to source, so it is not part of this map.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per customer (the index), with columns ``recency_days``, ``frequency`` and
        ``monetary`` (the ``rfm`` feature set's table), no missing values.

    Returns
    -------
    pandas.DataFrame
        Same index and row order as ``table``; ``r_score``, ``f_score``, ``m_score`` (int64)
        and ``rfm_segment`` (pandas ``string``, one of :data:`RFM_SEGMENTS`).

    Raises
    ------
    InputError
        A column is missing or holds missing values.

    Examples
    --------
    >>> t = pd.DataFrame({"recency_days": [1.0, 300, 40, 10, 200],
    ...                   "frequency": [9.0, 1, 3, 5, 2],
    ...                   "monetary": [900.0, 15, 120, 300, 50]},
    ...                  index=pd.Index(["a", "b", "c", "d", "e"], name="customer"))
    >>> rfm_segments(t)  # doctest: +NORMALIZE_WHITESPACE
              r_score  f_score  m_score      rfm_segment
    customer
    a               5        5        5        Champions
    b               1        1        1      Hibernating
    c               3        3        3   Need attention
    d               4        4        4  Loyal customers
    e               2        2        2      Hibernating
    """
    missing = [c for c in RFM_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"RFM scores need the columns {list(RFM_COLUMNS)}; missing {missing}",
                         column=missing[0])
    for column in RFM_COLUMNS:
        if table[column].isna().any():
            row = int(table[column].isna().to_numpy().argmax())
            raise InputError(f"RFM scores need a value for every customer; "
                             f"{table.index[row]!r} has none", column=column, row=row + 1)
    ordered = table.sort_index(kind="stable")
    scores = pd.DataFrame({
        "r_score": _quintile_scores(-ordered["recency_days"]),
        "f_score": _quintile_scores(ordered["frequency"]),
        "m_score": _quintile_scores(ordered["monetary"]),
    }, index=ordered.index)
    scores["rfm_segment"] = pd.array(
        [_SEGMENT_OF[rf] for rf in zip(scores["r_score"], scores["f_score"], strict=True)],
        dtype="string")
    return scores.reindex(table.index)


#: score column -> (feature, higher is better)
_SCORED = {"r_score": ("recency_days", False), "f_score": ("frequency", True),
           "m_score": ("monetary", True)}


def score_edges(table: pd.DataFrame, scores: pd.DataFrame) -> dict[str, list[float]]:
    """The feature values where each score begins, learned from fitted scores, so new
    customers can be scored on the same scale: for F and M the smallest value that scored
    2, 3, 4, 5; for R the largest recency that did.

    Examples
    --------
    >>> t = pd.DataFrame({"recency_days": [1.0, 300, 40, 10, 200], "frequency": [9.0, 1, 3, 5, 2],
    ...                   "monetary": [900.0, 15, 120, 300, 50]})
    >>> score_edges(t, rfm_segments(t))["f_score"]
    [2.0, 3.0, 5.0, 9.0]
    """
    edges = {}
    for score, (feature, higher) in _SCORED.items():
        values = table[feature].astype("float64")
        by = values.groupby(scores[score])
        per = (by.min() if higher else by.max()).reindex(range(2, 6))
        edges[score] = [float(v) for v in per.ffill().fillna(np.inf if higher else -np.inf)]
    return edges


def score_with_edges(table: pd.DataFrame, edges: dict[str, list[float]]) -> pd.DataFrame:
    """R, F, M scores and the RFM segment of new customers on a fitted scale
    (:func:`score_edges`). A value equal to an edge takes the higher score.

    Examples
    --------
    >>> t = pd.DataFrame({"recency_days": [1.0, 300, 40, 10, 200], "frequency": [9.0, 1, 3, 5, 2],
    ...                   "monetary": [900.0, 15, 120, 300, 50]})
    >>> fitted = rfm_segments(t)
    >>> again = score_with_edges(t, score_edges(t, fitted))
    >>> cols = ["r_score", "f_score", "m_score"]
    >>> bool((again[cols] == fitted[cols]).all().all())
    True
    """
    out = pd.DataFrame(index=table.index)
    for score, (feature, higher) in _SCORED.items():
        values = table[feature].astype("float64").to_numpy()
        cut = np.asarray(edges[score], dtype="float64")
        passed = values[:, None] >= cut[None, :] if higher else values[:, None] <= cut[None, :]
        out[score] = (1 + passed.sum(axis=1)).astype("int64")
    out["rfm_segment"] = pd.array([_SEGMENT_OF[rf] for rf in
                                   zip(out["r_score"], out["f_score"], strict=True)], dtype="string")
    return out
