"""What sets the segments apart, asked of a model: a LightGBM classifier learns to predict each
customer's segment from the table's original columns, and SHAP values say which columns it
relies on, overall and for each segment.

A surrogate explains the segments only as well as it predicts them: the holdout accuracy comes
with the importances, and a note warns when it is too low for them to mean much.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segmint.errors import InputError
from segmint.explain.profile import _types

__all__ = ["SurrogateExplanation", "explain_segments"]

log = logging.getLogger(__name__)

#: Below this holdout accuracy (or balanced accuracy) the note warns that the importances explain little.
LOW_ACCURACY = 0.7
#: Customers whose SHAP values are computed: a seeded sample, every segment kept. TreeSHAP
#: costs about 0.55 ms a customer on the demo's model (1.1 s of its run at 2,000); on the demo,
#: 1,000 customers give the same ranking as all 5,695, each mean |SHAP| within 1% of the top one.
SHAP_ROWS = 1_000
#: At least this many customers of each segment (or all of a smaller one) in the SHAP sample.
SHAP_ROWS_PER_SEGMENT = 100
#: Part of the training rows held back to stop adding trees (the holdout is kept for the score).
EARLY_STOPPING_SHARE = 0.1

#: From this many training rows LightGBM uses every usable core; below, one thread.
THREADED_ROWS = 20_000

_N_ESTIMATORS = 200
_STOPPING_ROUNDS = 20


@dataclass(frozen=True)
class SurrogateExplanation:
    """What a LightGBM model predicting the segments relies on.

    Attributes
    ----------
    accuracy, balanced_accuracy : float
        On the holdout (balanced: the mean of the segments' recalls).
    recall_by_segment : dict[int, float]
        Share of each segment's holdout customers predicted into it (NaN: none held out).
    importance : pandas.DataFrame
        ``feature``, ``mean_abs_shap`` (mean \\|SHAP\\| over customers and the segments'
        outputs, in log-odds) and ``gain`` (LightGBM's split gain, as a share of the total),
        most important first.
    by_segment : pandas.DataFrame
        ``segment``, ``feature``, ``mean_abs_shap``, ``mean_shap``, ``rank``: over the customers
        of a segment, the SHAP values of that segment's output; ``mean_shap`` > 0 means the
        column's values push them into it. ``rank`` 1 is the largest ``mean_abs_shap``.
    note : str
        One paragraph for a reader: how well the model predicts, and what was left out or sampled.
    n_customers : int
        Customers the model was fit and scored on (after leaving out outliers and sampling).
    n_trees : int
        Trees kept by early stopping.
    """

    accuracy: float
    balanced_accuracy: float
    recall_by_segment: dict[int, float]
    importance: pd.DataFrame
    by_segment: pd.DataFrame
    note: str
    n_customers: int = 0
    n_trees: int = 0

    def top_features(self, segment: int, n: int = 3) -> list[str]:
        """The ``n`` columns the model relies on most to put customers into ``segment``."""
        rows = self.by_segment[self.by_segment["segment"] == segment]
        if rows.empty:
            known = sorted(int(s) for s in self.by_segment["segment"].unique())
            raise KeyError(f"segment {segment} was not explained; explained segments: {known}")
        return rows.sort_values("rank")["feature"].head(n).tolist()

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Plain DataFrames for writing: ``summary`` (one row), ``recall``, ``importance``,
        ``by_segment``."""
        summary = pd.DataFrame({"accuracy": [self.accuracy],
                                "balanced_accuracy": [self.balanced_accuracy],
                                "n_customers": [self.n_customers], "n_trees": [self.n_trees],
                                "note": [self.note]})
        recall = pd.DataFrame({"segment": list(self.recall_by_segment),
                               "recall": list(self.recall_by_segment.values())})
        return {"summary": summary, "recall": recall.astype({"segment": "int64", "recall": "float64"}),
                "importance": self.importance.copy(), "by_segment": self.by_segment.copy()}

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> SurrogateExplanation:
        """The explanation back from :meth:`to_frames`' tables (as a run folder keeps them).

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> table = pd.DataFrame({"spend": rng.gamma(2.0, 50.0, 400), "visits": rng.poisson(3, 400)})
        >>> labels = (table["spend"] > 100).to_numpy().astype(int)
        >>> found = explain_segments(table, labels, seed=0, n_jobs=1)
        >>> again = SurrogateExplanation.from_frames(found.to_frames())
        >>> again.accuracy == found.accuracy and again.recall_by_segment == found.recall_by_segment
        True
        """
        summary = frames["summary"].iloc[0]
        recall = frames["recall"]
        return cls(accuracy=float(summary["accuracy"]),
                   balanced_accuracy=float(summary["balanced_accuracy"]),
                   recall_by_segment={int(s): float(r) for s, r in
                                      zip(recall["segment"], recall["recall"], strict=True)},
                   importance=frames["importance"].reset_index(drop=True),
                   by_segment=frames["by_segment"].reset_index(drop=True),
                   note=str(summary["note"]), n_customers=int(summary["n_customers"]),
                   n_trees=int(summary["n_trees"]))


def explain_segments(table: pd.DataFrame, labels: np.ndarray, *, types: dict[str, str] | None = None,
                     seed: int = 0, max_rows: int = 50_000, holdout: float = 0.25,
                     n_jobs: int | None = None) -> SurrogateExplanation:
    """Fit a LightGBM model that predicts each customer's segment from ``table``'s columns and
    say, with SHAP values, which columns it relies on.

    The model (multiclass, up to 200 trees of depth 5) is fit on a stratified, seeded split:
    ``holdout`` of each segment is kept back to score it, and trees stop being added when they
    no longer help on a tenth of the remaining customers, so the holdout score is not tuned
    to. SHAP values come from a stratified sample of about 1,000 customers (at least 100 of
    each segment, or all of a smaller one). LightGBM uses every usable core from 20,000
    training rows, one thread below.

    Parameters
    ----------
    table : pandas.DataFrame
        The customers' original columns, one row per customer in the order of ``labels``:
        numbers (NaN allowed), 0/1 columns and categoricals (text, missing values allowed;
        LightGBM splits them natively).
    labels : numpy.ndarray
        Each customer's segment. Segments below 0 (outliers, noise) are left out of the fit.
    types : dict, optional
        ``"numeric"``, ``"binary"`` or ``"categorical"`` per column, as for
        :func:`~segmint.explain.profile`; inferred from the dtypes where not given.
    seed : int
        Seeds the split, the samples and LightGBM: the same call gives the same numbers.
    max_rows : int
        Above this many customers the model sees a stratified sample of this size.
    holdout : float
        Share of customers (stratified by segment) held out to score the model.
    n_jobs : int, optional
        LightGBM's threads; None: the run's (``segmint._threads.threads``). A caller that keeps
        other cores busy meanwhile gives fewer (LightGBM's OpenMP threads wait by spinning,
        taking cores from the other work). The numbers do not depend on it.

    Returns
    -------
    SurrogateExplanation

    Raises
    ------
    InputError
        When fewer than two segments are left once outliers are set aside: there is nothing
        to tell apart.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = pd.DataFrame({"spend": rng.gamma(2.0, 50.0, 600), "age": rng.integers(18, 80, 600)})
    >>> ex = explain_segments(t, (t["spend"] > 100).to_numpy().astype(int))
    >>> ex.accuracy > 0.95, ex.top_features(1, n=1)
    (True, ['spend'])
    """
    labels = np.asarray(labels)
    _check_arguments(table, labels, max_rows=max_rows, holdout=holdout)
    types = _types(table, types)
    rng = np.random.default_rng(seed)
    notes = []

    clustered = labels >= 0
    if not clustered.all():
        notes.append(f"{int((~clustered).sum()):,} outliers (segment < 0) were left out of the fit")
    frame = _model_frame(table.loc[clustered], types)
    y = labels[clustered].astype(np.int64)
    segments = np.unique(y)
    if len(segments) < 2:
        only = f"segment {int(segments[0])}" if len(segments) else "no segment"
        raise InputError(f"nothing to explain: every clustered customer is in {only}; a surrogate "
                         "model needs at least two segments to tell apart")

    if len(y) > max_rows:
        keep = _stratified_pick(y, max_rows / len(y), rng, at_least=min(2, len(y)))
        notes.append(f"the model saw a stratified sample of {int(keep.sum()):,} of the {len(y):,} "
                     "clustered customers")
        frame, y = frame.loc[keep], y[keep]

    held = _stratified_pick(y, holdout, rng, keep_one_out=True)
    train = ~held
    stopping = np.zeros(len(y), dtype=bool)
    stopping[np.flatnonzero(train)[_stratified_pick(y[train], EARLY_STOPPING_SHARE, rng,
                                                     keep_one_out=True)]] = True
    fit_rows = train & ~stopping

    model = _fit(frame, y, fit_rows, stopping, seed, n_jobs)
    predicted = model.predict(frame.loc[held]) if held.any() else np.array([], dtype=np.int64)
    truth = y[held]
    recall = {int(s): float(np.mean(predicted[truth == s] == s)) if (truth == s).any() else float("nan")
              for s in segments}
    accuracy = float(np.mean(predicted == truth)) if held.any() else float("nan")
    balanced = float(np.nanmean(list(recall.values()))) if held.any() else float("nan")

    importance, by_segment = _shap_tables(model, frame, y, segments, rng, n_jobs)
    notes.insert(0, _accuracy_sentence(accuracy, balanced, frame.shape[1], holdout))
    log.info("surrogate: %d customers, %d segments, %d trees, holdout accuracy %.3f",
             len(y), len(segments), _n_trees(model), accuracy)
    return SurrogateExplanation(
        accuracy=accuracy, balanced_accuracy=balanced, recall_by_segment=recall,
        importance=importance, by_segment=by_segment, note="; ".join(notes) + ".",
        n_customers=len(y), n_trees=_n_trees(model))


def _check_arguments(table: pd.DataFrame, labels: np.ndarray, *, max_rows: int, holdout: float) -> None:
    # the caller's mistakes, said with the parameter, the value and what is accepted
    if labels.ndim != 1 or len(labels) != len(table):
        raise ValueError(f"labels: expected one segment per row of the table ({len(table)}), "
                         f"got shape {labels.shape}")
    if table.shape[1] == 0:
        raise ValueError("table: expected at least one column, got none")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout: expected a share strictly between 0 and 1, got {holdout!r}")
    if int(max_rows) < 100:
        raise ValueError(f"max_rows: expected at least 100, got {max_rows!r}")


def _model_frame(table: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Columns as LightGBM reads them: categoricals as pandas categories, the rest as floats
    with NaN. Renamed f0, f1, ... (LightGBM refuses some characters in feature names);
    ``attrs["columns"]`` keeps the original names in order."""
    parts = {}
    for i, column in enumerate(table.columns):
        values = table[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        if types.get(column) == "categorical" or not numeric:
            # through object: a pandas string column's <NA> becomes a missing category
            parts[f"f{i}"] = values.astype("object").where(values.notna(), None).astype("category")
        else:
            parts[f"f{i}"] = pd.to_numeric(values, errors="coerce").astype("float64")
    frame = pd.DataFrame(parts, index=table.index)
    frame.attrs["columns"] = [str(c) for c in table.columns]
    return frame


def _stratified_pick(y: np.ndarray, share: float, rng: np.random.Generator, *, at_least: int = 0,
                     keep_one_out: bool = False) -> np.ndarray:
    """A seeded mask picking ``share`` of each segment's rows (rounded), at least ``at_least``
    of each; with ``keep_one_out`` never all of a segment, so the rows not picked still hold
    every segment."""
    picked = np.zeros(len(y), dtype=bool)
    for segment in np.unique(y):
        rows = np.flatnonzero(y == segment)
        count = max(int(round(share * len(rows))), min(at_least, len(rows)))
        if keep_one_out:
            count = min(count, len(rows) - 1)
        picked[rng.permutation(rows)[:count]] = True
    return picked


def _threads(n_rows: int, n_jobs: int | None = None) -> int:
    """The run's threads (``segmint._threads.threads``: ``--threads`` / SEGMINT_THREADS, else
    the cores this process may use), or one thread for a small table: there LightGBM's
    per-round thread synchronisation costs more than it saves (2.5x slower on 2,000 customers
    with 2 threads, far worse when other work holds the cores)."""
    from segmint._threads import threads

    return 1 if n_rows < THREADED_ROWS else (n_jobs or threads())


def _fit(frame: pd.DataFrame, y: np.ndarray, fit_rows: np.ndarray, stopping: np.ndarray, seed: int,
         n_jobs: int | None = None):
    import lightgbm as lgb

    n = int(fit_rows.sum())
    model = lgb.LGBMClassifier(
        n_estimators=_N_ESTIMATORS, learning_rate=0.1, num_leaves=15,
        # TreeSHAP costs the square of a tree's depth per leaf: depth 5 and 15 leaves keep it to seconds
        max_depth=5,
        # LightGBM's defaults (20 rows a leaf, 100 a categorical group) suit large tables only:
        # on a few hundred customers they forbid the splits that tell small segments apart
        min_child_samples=int(np.clip(n // 200, 5, 20)), min_data_per_group=int(np.clip(n // 50, 5, 100)),
        random_state=seed, n_jobs=_threads(n, n_jobs), deterministic=True, force_col_wise=True, verbose=-1)
    evaluation: dict[str, Any] = {}
    if stopping.any():
        held_x, held_y = frame.loc[stopping], y[stopping]
        # LightGBM 4.7 renamed eval_set to eval_X / eval_y and warns on the old name
        if "eval_X" in inspect.signature(model.fit).parameters:
            evaluation = {"eval_X": held_x, "eval_y": held_y}
        else:
            evaluation = {"eval_set": [(held_x, held_y)]}
        evaluation["callbacks"] = [lgb.early_stopping(_STOPPING_ROUNDS, verbose=False)]
    model.fit(frame.loc[fit_rows], y[fit_rows], **evaluation)
    return model


def _n_trees(model) -> int:
    """Boosting rounds the model predicts with: the best one when early stopping kept more."""
    best = int(model.best_iteration_ or 0)
    return best if best > 0 else int(model.booster_.current_iteration())


def _shap_tables(model, frame: pd.DataFrame, y: np.ndarray, segments: np.ndarray,
                 rng: np.random.Generator, n_jobs: int | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Global importance (mean |SHAP|, weighted back to the segments' true sizes, and gain) and
    the per-segment table, from SHAP values on a stratified sample of customers."""
    columns = frame.attrs["columns"]
    sample = np.zeros(len(y), dtype=bool)
    for segment in segments:
        rows = np.flatnonzero(y == segment)
        count = min(len(rows), max(int(round(SHAP_ROWS * len(rows) / len(y))), SHAP_ROWS_PER_SEGMENT))
        sample[rng.permutation(rows)[:count]] = True
    # the model's classes are its label-encoded segments, in sorted order
    phi = _tree_shap(model, frame.loc[sample], len(segments), len(columns), n_jobs)
    y_sample = y[sample]

    # each sampled customer stands for n_segment / n_sampled customers of its segment
    weights = np.empty(len(y_sample))
    for segment in segments:
        mask = y_sample == segment
        weights[mask] = (y == segment).sum() / mask.sum()
    mean_abs = np.average(np.abs(phi).mean(axis=2), axis=0, weights=weights)
    gain = model.booster_.feature_importance(importance_type="gain", iteration=_n_trees(model))
    importance = pd.DataFrame({"feature": columns, "mean_abs_shap": mean_abs,
                               "gain": gain / gain.sum() if gain.sum() > 0 else np.zeros(len(gain))})
    importance = importance.sort_values("mean_abs_shap", ascending=False, kind="stable")

    parts = []
    for k, segment in enumerate(segments):
        own = phi[y_sample == segment, :, k]
        part = pd.DataFrame({"segment": int(segment), "feature": columns,
                             "mean_abs_shap": np.abs(own).mean(axis=0), "mean_shap": own.mean(axis=0)})
        part = part.sort_values("mean_abs_shap", ascending=False, kind="stable")
        part["rank"] = np.arange(1, len(part) + 1)
        parts.append(part)
    by_segment = pd.concat(parts, ignore_index=True).astype({"segment": "int64", "rank": "int64"})
    return importance.reset_index(drop=True), by_segment


def _tree_shap(model, rows: pd.DataFrame, n_classes: int, n_features: int,
               n_jobs: int | None = None) -> np.ndarray:
    """Exact SHAP values (TreeSHAP, path-dependent: what ``shap.TreeExplainer`` gives for a
    LightGBM model, which it too gets from LightGBM) as (customers, features, classes), from
    LightGBM's own ``pred_contrib``: importing shap cost about 2 s a run.
    ``tests/explain/test_surrogate.py`` checks them against shap's."""
    from segmint._threads import threads

    # rows are independent: on every thread the run may use (the fit stays single-threaded
    # for small tables, see _threads)
    contrib = np.asarray(model.booster_.predict(rows, pred_contrib=True,
                                                num_threads=n_jobs or threads(),
                                                num_iteration=_n_trees(model)), dtype=np.float64)
    if n_classes == 2:  # one output, the second class's log-odds; the last column is the bias
        return _per_class(contrib[:, :n_features], n_classes, n_features)
    # per class, its features then its bias
    by_class = contrib.reshape(len(rows), n_classes, n_features + 1)[:, :, :n_features]
    return _per_class(list(by_class.transpose(1, 0, 2)), n_classes, n_features)


def _per_class(values, n_classes: int, n_features: int) -> np.ndarray:
    """SHAP values as one (customers, features, classes) array, whichever shape shap returned:
    a list of per-class arrays (shap < 0.45), one 3-D array (later), or, for two classes,
    LightGBM's single output for the second class (the first is its negative).

    Examples
    --------
    >>> a = np.arange(12.0).reshape(2, 3, 2)
    >>> bool((_per_class([a[:, :, 0], a[:, :, 1]], 2, 3) == a).all())
    True
    >>> _per_class(np.ones((4, 3)), 2, 3)[0].tolist()
    [[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]]
    """
    if isinstance(values, list):
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        if len(arrays) == 1 and n_classes == 2:
            return np.stack([-arrays[0], arrays[0]], axis=2)
        phi = np.stack(arrays, axis=2)
    else:
        phi = np.asarray(values, dtype=np.float64)
        if phi.ndim == 2 and n_classes == 2:
            phi = np.stack([-phi, phi], axis=2)
        elif phi.ndim == 3 and phi.shape[1] == n_classes and phi.shape[2] == n_features \
                and n_classes != n_features:
            phi = phi.transpose(0, 2, 1)  # (customers, classes, features)
    if phi.shape[1:] != (n_features, n_classes):
        raise ValueError(f"unexpected SHAP output shape {phi.shape} for {n_features} features "
                         f"and {n_classes} segments")
    return phi


def _accuracy_sentence(accuracy: float, balanced: float, n_columns: int, holdout: float) -> str:
    columns = f"{n_columns} original column" + ("s" if n_columns != 1 else "")
    where = f"on a {holdout:.0%} holdout"
    if np.isnan(accuracy):
        return (f"a LightGBM model was fit to predict the segment from the {columns}, but too few "
                "customers were left to hold out and score it, so its importances are unchecked")
    if min(accuracy, balanced) < LOW_ACCURACY:
        return (f"warning: a LightGBM model predicts the segment from the {columns} with only "
                f"{accuracy:.1%} accuracy (balanced {balanced:.1%}) {where}, below {LOW_ACCURACY:.0%}: "
                "the segments are not a simple function of these columns, so the importances "
                "below explain little")
    return (f"a LightGBM model predicts the segment from the {columns} with {accuracy:.1%} "
            f"accuracy (balanced {balanced:.1%}) {where}; what it relies on is what sets the "
            "segments apart")
