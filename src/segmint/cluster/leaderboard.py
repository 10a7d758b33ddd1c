"""The leaderboard: one row per solution. Its columns are defined here once; the sweep writes
rows with them, the run folder stores them, the report shows them and the tests read them.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Column", "LEADERBOARD_COLUMNS", "SELECTION_COLUMNS", "params_text", "parse_params",
           "read_leaderboard", "column_names"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype the column has once read back
    doc: str
    shown: bool = True  # a column of the report's leaderboard table


#: Written by the sweep, one row per solution.
LEADERBOARD_COLUMNS: tuple[Column, ...] = (
    Column("solution", "string", "the solution's id, also its folder under solutions/"),
    Column("algorithm", "string", "a name from segmint.cluster.ALGORITHMS"),
    Column("representation", "string", "the space clustered in (a scaling, text or tree embedding)"),
    Column("params", "string", "the algorithm's parameters as a JSON object", shown=False),
    Column("description", "string", "the solution in words"),
    Column("k", "float64", "the value of the algorithm's number-of-clusters parameter, if any", shown=False),
    Column("n_clusters", "int64", "clusters found (noise excluded)"),
    Column("sizes", "string", "segment:customers, space-separated", shown=False),
    Column("noise_share", "float64", "share of customers left as noise"),
    Column("min_cluster_share", "float64", "share of customers in the smallest segment"),
    Column("inertia", "float64", "sum of squared distances to the segment centres", shown=False),
    Column("mean_squared_distance", "float64", "inertia / assigned customers (BigQuery ML's name)"),
    Column("davies_bouldin", "float64", "Davies-Bouldin index (lower is better)"),
    Column("calinski_harabasz", "float64", "Calinski-Harabasz index (higher is better)"),
    Column("silhouette", "float64", "mean silhouette (higher is better)"),
    Column("silhouette_sample", "int64", "customers the silhouette was computed on"),
    Column("common_davies_bouldin", "float64",
           "Davies-Bouldin in the common space (the first scaled representation), where "
           "solutions of different spaces compare; the selection ranks on it"),
    Column("common_calinski_harabasz", "float64", "Calinski-Harabasz in the common space"),
    Column("common_silhouette", "float64", "silhouette in the common space"),
    Column("bic", "float64", "Bayesian information criterion (mixtures only)"),
    Column("fit_seconds", "float64", "fit time (a share of the group's time for grid fits)"),
)

#: Added by the selection (segmint.cluster.select.recommend).
SELECTION_COLUMNS: tuple[Column, ...] = (
    Column("eligible", "bool", "can be recommended: >= 2 segments, none tiny, little noise", shown=False),
    Column("at_knee", "bool", "k is at the elbow of its inertia curve", shown=False),
    Column("rank", "Int64", "rank among eligible solutions (1 = first candidate)"),
    Column("recommended", "bool", "the recommended solution", shown=False),
)


def column_names(selection: bool = True) -> list[str]:
    cols = LEADERBOARD_COLUMNS + (SELECTION_COLUMNS if selection else ())
    return [c.name for c in cols]


def params_text(params: dict[str, Any]) -> str:
    """Parameters as the JSON text the leaderboard stores.

    Examples
    --------
    >>> params_text({"n_clusters": 5, "tol": 0.001})
    '{"n_clusters": 5, "tol": 0.001}'
    """
    return json.dumps(params, sort_keys=False, default=str)


def parse_params(text: Any) -> dict[str, Any]:
    """The parameters of a leaderboard row: JSON, or the ``k=v, k=v`` text of format-1 runs.

    Examples
    --------
    >>> parse_params('{"eps": 0.5, "min_samples": 10}')
    {'eps': 0.5, 'min_samples': 10}
    >>> parse_params("eps=0.8, min_samples=5")
    {'eps': 0.8, 'min_samples': 5}
    """
    if isinstance(text, dict):
        return dict(text)
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return {}
    text = str(text)
    if text.lstrip().startswith("{"):
        return dict(json.loads(text))
    out: dict[str, Any] = {}
    for part in re.split(r",\s*", text):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def read_leaderboard(path: Any) -> pd.DataFrame:
    """A leaderboard.csv, with the columns of this version whatever version wrote it.

    Runs of format 1 named the representation ``scaling``, stored params as ``k=v`` text and
    had a ``tol`` column; they are read into today's columns.
    """
    board = pd.read_csv(path, dtype={"solution": "string", "algorithm": "string"},
                        keep_default_na=True)
    if "representation" not in board.columns and "scaling" in board.columns:
        board = board.rename(columns={"scaling": "representation"})
    if "params" in board.columns:
        board["params"] = [params_text(parse_params(p)) for p in board["params"]]
    if "description" not in board.columns:
        board.insert(board.columns.get_loc("params") + 1, "description", board["solution"])
    for measure in ("davies_bouldin", "calinski_harabasz", "silhouette"):
        if f"common_{measure}" not in board.columns and measure in board.columns:
            # runs before the common space measured every solution in its own space only
            board[f"common_{measure}"] = board[measure]
    return board
