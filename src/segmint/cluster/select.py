"""From many solutions to one recommended solution, with its reasons and its stability."""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline

from segmint._threads import map_in_threads, threads, using_threads
from segmint.cluster.leaderboard import column_names, parse_params
from segmint.cluster.registry import ALGORITHMS
from segmint.cluster.sweep import Solution
from segmint.spec import SelectSpec

__all__ = ["leaderboard", "find_knee", "knee_by_group", "stability", "stability_tables",
           "segment_stability", "segment_jaccard", "verdict", "recommend", "Recommendation",
           "compare_ways", "STABILITY_COLUMNS", "SEGMENT_STABILITY_COLUMNS"]

#: the measures of :func:`compare_ways`, in their own space and in the common one
_WAY_MEASURES = ("davies_bouldin", "calinski_harabasz", "silhouette")

log = logging.getLogger(__name__)


def leaderboard(solutions: list[Solution]) -> pd.DataFrame:
    """One row per solution, in sweep order. :func:`recommend` adds ``eligible``, ``at_knee``
    and ``rank`` (1 = the first candidate, among eligible solutions only)."""
    return pd.DataFrame([s.row() for s in solutions], columns=column_names(selection=False))


def find_knee(k: list[int] | np.ndarray, inertia: list[float] | np.ndarray) -> int | None:
    """The elbow of a decreasing, convex inertia-by-k curve (Kneedle), or None.

    Kneedle (Satopää et al. 2011) as the ``kneed`` package computes it for
    ``KneeLocator(k, inertia, curve="convex", direction="decreasing")`` with its defaults
    (sensitivity S=1, the curve as given, the first knee): both axes normalised to [0, 1],
    the difference curve ``(1 - y) - x``, and the first local maximum after which the
    difference falls below that maximum minus S times the mean step of x (a local minimum
    first resets the threshold to 0). Written out here because importing ``kneed`` (SciPy's
    signal package with it) cost about 1.3 s, a quarter of the demo's run time;
    ``tests/cluster/test_select.py`` checks it against ``kneed`` on random curves.

    Examples
    --------
    >>> find_knee([1, 2, 3, 4, 5, 6], [100.0, 40.0, 20.0, 15.0, 12.0, 10.0])
    3
    """
    k, inertia = np.asarray(k, dtype=float), np.asarray(inertia, dtype=float)
    order = np.argsort(k)
    k, inertia = k[order], inertia[order]
    if len(k) < 3 or not np.isfinite(inertia).all():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (k - k.min()) / (k.max() - k.min())
        y = (inertia - inertia.min()) / (inertia.max() - inertia.min())
    difference = (y.max() - y) - x
    maxima, minima = _extrema(difference, np.greater_equal), _extrema(difference, np.less_equal)
    if not maxima.size:
        return None
    limits = difference[maxima] - np.abs(np.diff(x).mean())
    at_max = dict(zip(maxima.tolist(), limits.tolist(), strict=True))
    is_min = set(minima.tolist())
    threshold, where, active = 0.0, 0, True
    for i in range(int(maxima[0]), len(difference) - 1):
        if i in at_max:
            threshold, where, active = at_max[i], i, True
        if i in is_min:
            threshold, active = 0.0, False
        if active and difference[i + 1] < threshold:
            return int(k[where])
    return None


def _extrema(values: np.ndarray, compare: Callable[[Any, Any], Any]) -> np.ndarray:
    """Indices where ``values`` compares true with both neighbours, an end with itself
    (``scipy.signal.argrelextrema`` with order 1 and mode "clip")."""
    n = len(values)
    at = np.arange(n)
    return np.flatnonzero(compare(values, values[np.minimum(at + 1, n - 1)])
                          & compare(values, values[np.maximum(at - 1, 0)]))


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


#: the verdicts of per-segment stability (Hennig's clusterboot guidance, as the issue gives it)
STABLE, DOUBTFUL = 0.75, 0.6
SEGMENT_STABILITY_COLUMNS = ("solution", "segment", "size", "jaccard_mean", "jaccard_min",
                             "resamples", "verdict")
STABILITY_COLUMNS = ("solution", "stability_ari_mean", "stability_ari_std",
                     "stability_jaccard_mean", "resamples")


def _rows(data: pd.DataFrame | np.ndarray, rows: np.ndarray) -> pd.DataFrame | np.ndarray:
    return data.iloc[rows] if isinstance(data, pd.DataFrame) else data[rows]


def _fit_predict(estimator: Any, X: Any) -> np.ndarray:
    return np.asarray(estimator.fit_predict(X) if hasattr(estimator, "fit_predict")
                      else estimator.fit(X).predict(X))


def _same(a: Any, b: Any) -> bool:
    """Parameter dicts equal (False where a value does not compare, an array)."""
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False


def _engine_seed(solution: Solution) -> tuple[Any, int] | None:
    """(fitted estimator, seed) when the grid engine can refit this solution's clusterer: its
    algorithm has a fast path and the estimator is exactly what the registry builds from the
    solution's params and that seed (nothing set beside them, such as a mixed clusterer's
    categorical columns); else None (refit a clone of the estimator)."""
    algo = ALGORITHMS.get(solution.algorithm)
    model = solution.model
    if algo is None or algo.fast_path is None or not isinstance(model, Pipeline) \
            or list(model.named_steps) != ["prepare", "cluster"]:
        return None
    estimator = model.named_steps["cluster"]
    seed = estimator.get_params(deep=False).get("random_state", 0) if algo.seeded else 0
    if not isinstance(seed, (int, np.integer)):
        return None
    try:
        built = algo.make(dict(solution.params), int(seed)).get_params(deep=False)
    except (TypeError, ValueError):
        return None
    if not _same(built, estimator.get_params(deep=False)):
        return None
    return estimator, int(seed)


def _refit_resample(members: list[Solution], part: pd.DataFrame | np.ndarray,
                    plain: bool) -> dict[str, np.ndarray]:
    """Refit every solution of ``members`` on the rows ``part``: labels by solution name.

    Plain: clone each solution's whole pipeline and fit it (one scikit-learn fit each). Else
    each distinct preparation is refitted once, and the clusterers of one algorithm on one
    preparation are fitted together by the algorithm's grid engine (equal to scikit-learn per
    setting); the others are refitted one by one from a clone of their estimator."""
    out: dict[str, np.ndarray] = {}
    if plain:
        for s in members:
            assert s.model is not None
            out[s.name] = _fit_predict(clone(s.model), part)
        return out
    prepared: dict[int, Any] = {}
    engine: dict[tuple[str, int, int], list[Solution]] = {}
    for s in members:
        model = s.model
        if not isinstance(model, Pipeline) or list(model.named_steps) != ["prepare", "cluster"]:
            assert model is not None
            out[s.name] = _fit_predict(clone(model), part)
            continue
        prepare = model.named_steps["prepare"]
        if id(prepare) not in prepared:  # the sweep shares one preparation per space
            prepared[id(prepare)] = part if prepare in (None, "passthrough") \
                else clone(prepare).fit_transform(part)
        X = prepared[id(prepare)]
        found = _engine_seed(s)
        # the engine works in float64: another matrix (float32 embeddings, sparse) keeps
        # scikit-learn's own fit, which would compute in that type
        if found is not None and isinstance(X, np.ndarray) and X.dtype == np.float64:
            engine.setdefault((s.algorithm, id(prepare), found[1]), []).append(s)
        else:
            out[s.name] = _fit_predict(clone(model.named_steps["cluster"]), X)
    for (algorithm, prep_id, seed), group in engine.items():
        X = prepared[prep_id]
        fast_path = ALGORITHMS[algorithm].fast_path
        assert fast_path is not None
        result = None
        if len(group) > 1:
            try:
                result = fast_path(X, [dict(s.params) for s in group], seed)
            except (ValueError, TypeError):  # scikit-learn's own fit says what is wrong
                result = None
        if result is None:  # one setting, or a grid the engine does not do
            for s in group:
                assert s.model is not None
                out[s.name] = _fit_predict(clone(s.model.named_steps["cluster"]), X)
            continue
        for s, (_, _, labels, _) in zip(group, result, strict=True):
            out[s.name] = np.asarray(labels)
    return out


def _refits(solutions: list[Solution], data: pd.DataFrame | np.ndarray, *, resamples: int,
            fraction: float, seed: int, plain: bool = False,
            progress: Any = None) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """For each solution, its refits: ``[(rows, labels)]``, one per resample, where ``rows``
    are positions in the solution's clustered customers and ``labels`` the refit's segments
    of those rows. Resample ``b`` of ``n`` customers is ``default_rng([seed, b])``'s choice
    of ``round(fraction * n)`` of them, sorted: the same rows whatever else is refitted."""
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s.name: [] for s in solutions}
    # one set of rows per mask of clustered customers (outliers set apart, or not)
    groups: dict[bytes | None, list[Solution]] = {}
    for s in solutions:
        whole = s.clustered is not None and len(data) == len(s.clustered)
        key = np.asarray(s.clustered, dtype=bool).tobytes() if whole else None
        groups.setdefault(key, []).append(s)
    total, done = len(groups) * resamples, 0
    for key, members in groups.items():
        # the whole table given: the solution's clustered customers are what it was fitted on
        view = data if key is None else _rows(data, np.asarray(members[0].clustered))
        n = len(view)
        size = max(2, int(round(fraction * n)))

        def one(b: int, members=members, view=view, n=n, size=size
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            idx = np.sort(np.random.default_rng([seed, b]).choice(n, size, replace=False))
            return idx, _refit_resample(members, _rows(view, idx), plain)

        def said(b: int, before=done) -> None:
            if progress:
                progress(before + b + 1, total, f"stability resample {b + 1} of {resamples}")

        # resamples on the run's threads, each refit on one (the engines give the same labels
        # at any count); at most two resamples' copies are held at once on two threads
        workers = threads()
        with using_threads(1):
            found = map_in_threads(one, range(resamples), workers, done=said)
        for idx, labels_of in found:
            for name, labels in labels_of.items():
                out[name].append((idx, labels))
        done += resamples
    return out


def segment_jaccard(original: np.ndarray, refit: np.ndarray) -> dict[int, float]:
    """Each original segment's Jaccard similarity with its best match among the refit's
    clusters, on the same customers (Hennig's clusterboot, one resample).

    For segment A and each refit cluster B: ``|A & B| / |A | B|``; the segment's value is the
    largest. Noise (label -1) is not a segment: it is not scored, and it is no refit cluster a
    segment can match (a segment's members that became noise count against it). Only
    segments with members among these customers are scored.

    Examples
    --------
    >>> segment_jaccard(np.array([0, 0, 0, 1, 1, 1]), np.array([5, 5, 5, 5, 7, 7]))
    {0: 0.75, 1: 0.6666666666666666}
    """
    original, refit = np.asarray(original), np.asarray(refit)
    segments = np.unique(original[original >= 0])
    clusters = np.unique(refit[refit >= 0])
    if len(segments) == 0:
        return {}
    if len(clusters) == 0:
        return {int(s): 0.0 for s in segments}
    both = (original >= 0) & (refit >= 0)
    i = np.searchsorted(segments, original[both])
    j = np.searchsorted(clusters, refit[both])
    inter = np.bincount(i * len(clusters) + j,
                        minlength=len(segments) * len(clusters)).reshape(len(segments), -1)
    a = np.bincount(np.searchsorted(segments, original[original >= 0]), minlength=len(segments))
    b = np.bincount(np.searchsorted(clusters, refit[refit >= 0]), minlength=len(clusters))
    jaccard = inter / (a[:, None] + b[None, :] - inter)
    return {int(s): float(v) for s, v in zip(segments, jaccard.max(axis=1), strict=True)}


def verdict(jaccard_mean: float) -> str:
    """A segment's mean Jaccard in words: ``stable`` (>= 0.75), ``doubtful`` (0.6 to 0.75),
    ``not to be trusted`` (< 0.6)."""
    if math.isnan(jaccard_mean):
        return "not measured"
    if jaccard_mean >= STABLE:
        return "stable"
    return "doubtful" if jaccard_mean >= DOUBTFUL else "not to be trusted"


def _measure(solution: Solution, refits: list[tuple[np.ndarray, np.ndarray]],
             resamples: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """The solution's stability row and its per-segment table from its refits."""
    original = solution.clustered_labels()
    aris = [adjusted_rand_score(original[idx], labels) for idx, labels in refits]
    segments = np.unique(original[original >= 0])
    per = np.full((len(segments), len(refits)), np.nan)
    for b, (idx, labels) in enumerate(refits):
        for s, value in segment_jaccard(original[idx], labels).items():
            per[np.searchsorted(segments, s), b] = value
    scored = (~np.isnan(per)).sum(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a segment never in a resample
        means, mins = np.nanmean(per, axis=1), np.nanmin(per, axis=1)
    sizes = pd.Series(solution.labels).value_counts()
    table = pd.DataFrame({"solution": solution.name, "segment": segments.astype(np.int64),
                          "size": [int(sizes.get(s, 0)) for s in segments],
                          "jaccard_mean": means, "jaccard_min": mins,
                          "resamples": scored.astype(np.int64),
                          "verdict": [verdict(float(m)) for m in means]},
                         columns=list(SEGMENT_STABILITY_COLUMNS))
    row = {"stability_ari_mean": float(np.mean(aris)), "stability_ari_std": float(np.std(aris)),
           "stability_jaccard_mean": float(np.nanmean(means)) if np.isfinite(means).any()
           else math.nan,
           "resamples": resamples}
    return row, table


def stability_tables(solutions: list[Solution], data: pd.DataFrame | np.ndarray, *,
                     resamples: int = 10, fraction: float = 0.8, seed: int = 0,
                     progress: Any = None, plain: bool = False
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bootstrap stability of several solutions at once: ``(stability, segment_stability)``.

    Each resample is ``fraction`` of the customers each solution was clustered on (its
    ``clustered`` ones when ``data`` is the whole table), drawn from ``seed`` and the
    resample's number, so every solution sees the same customers. On each, every solution is
    refitted from scratch, as it was fitted (same parameters, same seed), and its labels are
    compared with the solution's own on those customers:

    * ``stability`` (one row per solution): the adjusted Rand index, mean and std over the
      resamples, and ``stability_jaccard_mean``, the mean over segments of their
      ``jaccard_mean`` below;
    * ``segment_stability`` (one row per segment, noise aside): Hennig's clusterboot measure,
      the Jaccard similarity of the segment with its best match in the refit
      (:func:`segment_jaccard`), mean and min over the resamples, and a verdict: ``stable``
      (>= 0.75), ``doubtful`` (0.6 to 0.75), ``not to be trusted`` (< 0.6). As in fpc's
      clusterboot, a resample without any member of the segment does not score it (left out
      of the mean; ``resamples`` counts those that did).

    The refits go through the grid engine: on each resample the preparation (representation)
    of each space is refitted once, and the clusterers of one algorithm on one space are
    fitted in one call of the algorithm's fast path (k-means over k and tol, DBSCAN over eps
    and min_samples; equal to scikit-learn's fit of each setting); other algorithms, and
    matrices the engine does not take, are refitted from a clone of their estimator.
    ``plain=True`` refits each solution's whole pipeline with scikit-learn instead (same
    resamples, same results; the engine is only faster).

    Refits start from scratch, not warm from the solution's centres: the question is whether
    the algorithm finds these segments again on other customers. Started from the full-data
    centres, k-means on 80% of the same customers mostly returns to the same fixed point, and
    would measure little but that; a poor local optimum the seed happened to reach would look
    stable. No algorithm here is better measured warm.
    """
    refits = _refits(solutions, data, resamples=resamples, fraction=fraction, seed=seed,
                     plain=plain, progress=progress)
    rows, tables = [], []
    for s in solutions:
        row, table = _measure(s, refits[s.name], resamples)
        rows.append({"solution": s.name, **row})
        tables.append(table)
    stab = pd.DataFrame(rows, columns=list(STABILITY_COLUMNS))
    segments = pd.concat(tables, ignore_index=True) if tables else \
        pd.DataFrame(columns=list(SEGMENT_STABILITY_COLUMNS))
    return stab, segments


def stability(solution: Solution, data: pd.DataFrame | np.ndarray, *, resamples: int = 10,
              fraction: float = 0.8, seed: int = 0) -> dict[str, float]:
    """Bootstrap stability of one solution: refit its pipeline (representation and
    clusterer) on seeded subsamples of ``data`` (what the pipeline takes: the customer
    table's features) and compare its labels with the solution's on the same customers:
    adjusted Rand index (mean and std) and the mean over segments of their clusterboot
    Jaccard (see :func:`stability_tables`, which also gives each segment's).

    1.0 means the segments come back identical whatever subset of customers is used.
    """
    stab, _ = stability_tables([solution], data, resamples=resamples, fraction=fraction,
                               seed=seed)
    row = stab.iloc[0]
    return {"stability_ari_mean": float(row["stability_ari_mean"]),
            "stability_ari_std": float(row["stability_ari_std"]),
            "stability_jaccard_mean": float(row["stability_jaccard_mean"]),
            "resamples": int(row["resamples"])}


def segment_stability(solution: Solution, data: pd.DataFrame | np.ndarray, *,
                      resamples: int = 10, fraction: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Each segment's clusterboot stability (see :func:`stability_tables`)."""
    return stability_tables([solution], data, resamples=resamples, fraction=fraction,
                            seed=seed)[1]


@dataclass
class Recommendation:
    solution: str | None
    reasons: list[str]
    knee: dict[str, int | None]  # per elbow curve (see _curve_key)
    stability: pd.DataFrame
    board: pd.DataFrame  # the leaderboard with eligible, at_knee, rank and recommended
    # each stability candidate's segments: clusterboot Jaccard and verdict (see stability_tables)
    segment_stability: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(SEGMENT_STABILITY_COLUMNS)))

    @property
    def chosen_knee(self) -> int | None:
        """The knee of the recommended solution's own curve (else the first curve's)."""
        return chosen_knee(self.board, self.knee)


def chosen_knee(board: pd.DataFrame, knee: Mapping[str, int | None]) -> int | None:
    """The knee of the recommended solution's curve in ``board`` (its ``recommended``
    column), else the first curve's; ``knee`` is :func:`knee_by_group`'s."""
    if "recommended" in board.columns:
        row = board[board["recommended"].fillna(False).astype(bool)]
        if len(row) and _curve_key(row.iloc[0]) in knee:
            return knee[_curve_key(row.iloc[0])]
    return next((k for k in knee.values() if k is not None), None)


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
    empty_stab = pd.DataFrame(columns=list(STABILITY_COLUMNS))
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
    # every candidate refitted on the same resamples, through the grid engine
    stab, segments = stability_tables([by_name[name] for name in candidates["solution"]], data,
                                      resamples=spec.stability_resamples,
                                      fraction=spec.stability_fraction, seed=seed,
                                      progress=progress)
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
    mine = segments[segments["solution"] == chosen]
    weak = mine[mine["jaccard_mean"] < DOUBTFUL]
    if len(weak):
        listed = ", ".join(f"{int(r['segment'])} (Jaccard {r['jaccard_mean']:.2f})"
                           for _, r in weak.iterrows())
        reasons.append(f"segment{'s' if len(weak) > 1 else ''} {listed} "
                       f"{'are' if len(weak) > 1 else 'is'} not to be trusted: under "
                       f"{DOUBTFUL} mean Jaccard with {'their' if len(weak) > 1 else 'its'} "
                       f"best match over the resamples (see the stability per segment)")
    return Recommendation(chosen, reasons, knees, stab, board, segments)


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
