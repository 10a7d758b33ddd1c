"""From many solutions to one recommended solution, with its reasons and its stability."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from segmint.cluster.leaderboard import column_names, parse_params
from segmint.cluster.registry import ALGORITHMS
from segmint.cluster.sweep import Solution
from segmint.spec import SelectSpec

__all__ = ["leaderboard", "find_knee", "knee_by_group", "stability", "recommend", "Recommendation",
           "compare_ways"]

#: the measures of :func:`compare_ways`, in their own space and in the common one
_WAY_MEASURES = ("davies_bouldin", "calinski_harabasz", "silhouette")

log = logging.getLogger(__name__)


def leaderboard(solutions: list[Solution]) -> pd.DataFrame:
    """One row per solution, in sweep order. :func:`recommend` adds ``eligible``, ``at_knee``
    and ``rank`` (1 = the first candidate, among eligible solutions only)."""
    return pd.DataFrame([s.row() for s in solutions], columns=column_names(selection=False))


def find_knee(k: list[int] | np.ndarray, inertia: list[float] | np.ndarray) -> int | None:
    """The elbow of a decreasing, convex inertia-by-k curve (Kneedle), or None.

    Examples
    --------
    >>> find_knee([1, 2, 3, 4, 5, 6], [100.0, 40.0, 20.0, 15.0, 12.0, 10.0])
    3
    """
    from kneed import KneeLocator

    k, inertia = np.asarray(k, dtype=float), np.asarray(inertia, dtype=float)
    order = np.argsort(k)
    k, inertia = k[order], inertia[order]
    if len(k) < 3 or not np.isfinite(inertia).all():
        return None
    knee = KneeLocator(k, inertia, curve="convex", direction="decreasing").knee
    return None if knee is None else int(knee)


def _curve_key(row: pd.Series) -> str:
    """The elbow curve a leaderboard row is on: algorithm, representation and every parameter
    but the number of clusters."""
    algo = ALGORITHMS.get(str(row["algorithm"]))
    k_param = algo.k_param if algo else None
    rest = {k: v for k, v in parse_params(row["params"]).items() if k != k_param}
    return "|".join([str(row["algorithm"]), str(row["representation"]),
                     *(f"{k}={v}" for k, v in sorted(rest.items()))])


def knee_by_group(board: pd.DataFrame) -> dict[str, int | None]:
    """Knee of inertia over k for each elbow curve (algorithms whose registry entry has
    ``elbow``), keyed by :func:`_curve_key`."""
    knees: dict[str, int | None] = {}
    elbow = [name for name, algo in ALGORITHMS.items() if algo.elbow]
    rows = board[board["algorithm"].isin(elbow)]
    if rows.empty:
        return knees
    keys = rows.apply(_curve_key, axis=1)
    for key, group in rows.groupby(keys, sort=False):
        knees[str(key)] = find_knee(group["k"], group["inertia"])
    return knees


def stability(solution: Solution, data: pd.DataFrame | np.ndarray, *, resamples: int = 10,
              fraction: float = 0.8, seed: int = 0) -> dict[str, float]:
    """Bootstrap stability: refit the same pipeline (representation and clusterer) on seeded
    subsamples of ``data`` (what the pipeline takes: the customer table's features) and compare
    its labels with the solution's on the same customers (adjusted Rand index, mean and std).

    1.0 means the segments come back identical whatever subset of customers is used.
    """
    if solution.clustered is not None and len(data) == len(solution.clustered):
        # the whole table given: the solution's clustered customers are what it was fitted on
        data = data.iloc[solution.clustered] if isinstance(data, pd.DataFrame) \
            else data[solution.clustered]
    n = len(data)
    size = max(2, int(round(fraction * n)))
    aris = []
    for b in range(resamples):
        idx = np.sort(np.random.default_rng([seed, b]).choice(n, size, replace=False))
        model = clone(solution.model)
        part = data.iloc[idx] if isinstance(data, pd.DataFrame) else data[idx]
        labels = model.fit_predict(part) if hasattr(model, "fit_predict") \
            else model.fit(part).predict(part)
        aris.append(adjusted_rand_score(solution.clustered_labels()[idx], labels))
    return {"stability_ari_mean": float(np.mean(aris)), "stability_ari_std": float(np.std(aris)),
            "resamples": resamples}


@dataclass
class Recommendation:
    solution: str | None
    reasons: list[str]
    knee: dict[str, int | None]  # per elbow curve (see _curve_key)
    stability: pd.DataFrame
    board: pd.DataFrame  # the leaderboard with eligible, at_knee, rank and recommended

    @property
    def chosen_knee(self) -> int | None:
        """The knee of the recommended solution's own curve (else the first curve's)."""
        row = self.board[self.board["recommended"]]
        if len(row) and _curve_key(row.iloc[0]) in self.knee:
            return self.knee[_curve_key(row.iloc[0])]
        return next((k for k in self.knee.values() if k is not None), None)


def _ordinal(i: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")


def recommend(solutions: list[Solution], board: pd.DataFrame, data: pd.DataFrame | np.ndarray,
              spec: SelectSpec, seed: int = 0, progress=None) -> Recommendation:
    """Pick one solution: eligible (>= 2 clusters, no tiny cluster, little noise), then best by
    Davies-Bouldin and silhouette with a preference for k at the elbow, then stable under
    resampling (refits on ``data``, what the solutions' pipelines take). Rule-based solutions
    (no model) are shown for comparison and never recommended. Returns the choice and the
    reasons in words."""
    knees = knee_by_group(board)
    board = board.copy()
    board["eligible"] = ((board["n_clusters"] >= 2)
                         & (board["min_cluster_share"] >= spec.min_cluster_share)
                         & (board["noise_share"] <= spec.max_noise_share)
                         & board["common_davies_bouldin"].notna()
                         & board["solution"].isin([s.name for s in solutions if s.model is not None])
                         & (board["n_clusters"] >= (spec.min_k or 0))
                         & (board["n_clusters"] <= (spec.max_k or np.inf)))
    board["at_knee"] = [knees.get(_curve_key(r)) is not None and r["k"] == knees[_curve_key(r)]
                        for _, r in board.iterrows()]
    board["rank"] = pd.Series(pd.NA, index=board.index, dtype="Int64")
    board["recommended"] = False
    eligible = board[board["eligible"]].copy()
    empty_stab = pd.DataFrame(columns=["solution", "stability_ari_mean", "stability_ari_std",
                                       "resamples"])
    if eligible.empty:
        wanted = "" if spec.min_k is None and spec.max_k is None else \
            f", between {spec.min_k or 2} and {spec.max_k or 'any number of'} segments"
        return Recommendation(None, ["no solution has two or more clusters with none below "
                                     f"{spec.min_cluster_share:.0%} of customers{wanted}"], knees,
                              empty_stab, board)
    # ranked in the common space: measures of different spaces do not compare
    db_rank = eligible["common_davies_bouldin"].rank(method="min", ascending=True)
    sil_rank = eligible["common_silhouette"].rank(method="min", ascending=False)
    eligible["score"] = (db_rank + sil_rank.fillna(len(eligible))) / (2 * len(eligible))
    # An elbow is evidence too: it moves a solution up by a tenth of the field.
    eligible["order"] = eligible["score"] - 0.1 * eligible["at_knee"]
    eligible = eligible.sort_values(["order", "solution"], kind="stable")
    board.loc[eligible.index, "rank"] = np.arange(1, len(eligible) + 1)
    by_name = {s.name: s for s in solutions}
    # candidates: the best-ranked distinct partitions (k-means at several tol often agree)
    picked: list[str] = []
    for name in eligible["solution"]:
        if len(picked) == spec.stability_top:
            break
        if not any(np.array_equal(by_name[name].labels, by_name[p].labels) for p in picked):
            picked.append(name)
    candidates = eligible.set_index("solution").loc[picked].reset_index()
    rows = []
    for i, name in enumerate(candidates["solution"]):
        rows.append({"solution": name, **stability(by_name[name], data,
                                                   resamples=spec.stability_resamples,
                                                   fraction=spec.stability_fraction, seed=seed)})
        if progress:
            progress(i + 1, len(candidates), f"stability {name}")
    stab = pd.DataFrame(rows)
    stable = stab[stab["stability_ari_mean"] >= 0.75]
    chosen = stable["solution"].iloc[0] if len(stable) else \
        stab.sort_values("stability_ari_mean", ascending=False)["solution"].iloc[0]
    board.loc[board["solution"] == chosen, "recommended"] = True
    row = eligible.set_index("solution").loc[chosen]
    st = stab.set_index("solution").loc[chosen]
    n_elig = len(eligible)
    reasons = []
    own_knee = knees.get(_curve_key(row))
    if row["at_knee"]:
        reasons.append(f"k={int(row['k'])} is at the elbow of its inertia curve")
    elif own_knee is not None:
        reasons.append(f"the elbow of its inertia curve is at k={own_knee}; k={int(row['k'])} "
                       f"separates the segments better")
    elif not math.isnan(row["k"]):
        curve = board[board.apply(_curve_key, axis=1) == _curve_key(row)]
        tried = sorted({int(k) for k in curve["k"].dropna()})
        reasons.append(f"its inertia curve has no clear elbow over k {tried[0]}..{tried[-1]}; "
                       f"k={int(row['k'])} ranks best on Davies-Bouldin and silhouette together")
    if not math.isnan(row["k"]):
        curve = board[board.apply(_curve_key, axis=1) == _curve_key(row)]
        small = sorted({int(k) for k in curve.loc[~curve["eligible"]
                                                  & (curve["min_cluster_share"]
                                                     < spec.min_cluster_share), "k"].dropna()})
        if small:
            reasons.append(f"k={', '.join(map(str, small))} left a segment under "
                           f"{spec.min_cluster_share:.0%} of customers, so were not eligible")
    if chosen != eligible["solution"].iloc[0]:
        reasons.append(f"{eligible['solution'].iloc[0]} ranked higher but was less stable under "
                       f"resampling (see the stability table)")
    spaces = board["representation"].nunique() > 1
    where = " in the common space" if spaces else ""
    db_pos = int((eligible["common_davies_bouldin"] < row["common_davies_bouldin"]).sum() + 1)
    reasons.append(f"Davies-Bouldin{where} {row['common_davies_bouldin']:.3f} "
                   f"({_ordinal(db_pos)} lowest of {n_elig} eligible solutions)")
    if not math.isnan(row["common_silhouette"]):
        sil_pos = int((eligible["common_silhouette"] > row["common_silhouette"]).sum() + 1)
        reasons.append(f"silhouette{where} {row['common_silhouette']:.3f} "
                       f"({_ordinal(sil_pos)} highest)")
    if spec.min_k is not None or spec.max_k is not None:
        reasons.append(f"{int(row['n_clusters'])} segments, within the {spec.min_k or 2} to "
                       f"{spec.max_k or 'any'} asked for (select.min_k / max_k)")
    reasons.append(f"smallest segment holds {row['min_cluster_share']:.1%} of customers "
                   f"(at least {spec.min_cluster_share:.0%})")
    if row["noise_share"] > 0:
        reasons.append(f"{row['noise_share']:.1%} of customers left as noise")
    reasons.append(f"bootstrap stability: mean ARI {st['stability_ari_mean']:.3f} over "
                   f"{int(st['resamples'])} resamples of {spec.stability_fraction:.0%}"
                   + ("" if st["stability_ari_mean"] >= 0.75 else
                      " (no candidate reached 0.75; the most stable was taken)"))
    return Recommendation(chosen, reasons, knees, stab, board)


def compare_ways(board: pd.DataFrame) -> pd.DataFrame:
    """One row per way of clustering (algorithm x representation, rule-based ones aside): its
    best solution, the first-ranked eligible one (else the lowest Davies-Bouldin in the common
    space), with Davies-Bouldin, Calinski-Harabasz and silhouette in its own space, as one
    method is usually reported, and in the common space, where the ways compare.

    Examples
    --------
    >>> board = pd.DataFrame({"solution": ["a2", "a3", "b3"], "algorithm": ["kmeans"] * 3,
    ...     "representation": ["standard", "standard", "text"], "n_clusters": [2, 3, 3],
    ...     "rank": [2, 1, pd.NA], "davies_bouldin": [1.0, 0.8, 0.5],
    ...     "calinski_harabasz": [9.0, 8.0, 7.0], "silhouette": [0.3, 0.4, 0.5],
    ...     "common_davies_bouldin": [1.0, 0.8, 1.9], "common_calinski_harabasz": [9.0, 8.0, 3.0],
    ...     "common_silhouette": [0.3, 0.4, 0.1]})
    >>> compare_ways(board)[["way", "solution"]].values.tolist()
    [['kmeans on standard', 'a3'], ['kmeans on text', 'b3']]
    """
    from segmint.cluster.rules import RULE_ALGORITHMS

    rows = []
    shown = board[~board["algorithm"].isin(RULE_ALGORITHMS)]
    for (algorithm, representation), group in shown.groupby(["algorithm", "representation"],
                                                             sort=False):
        ranked = group[group["rank"].notna()] if "rank" in group else group.iloc[:0]
        best = ranked.sort_values("rank").iloc[0] if len(ranked) else \
            group.sort_values("common_davies_bouldin", na_position="last").iloc[0]
        algo = ALGORITHMS.get(str(algorithm))
        mixed = algo is not None and algo.input == "mixed"
        rows.append({"way": f"{algorithm} on {'the mixed table' if mixed else representation}",
                     "solution": best["solution"], "n_clusters": int(best["n_clusters"]),
                     **{m: best[m] for m in _WAY_MEASURES},
                     **{f"common_{m}": best[f"common_{m}"] for m in _WAY_MEASURES}})
    return pd.DataFrame(rows)
