"""Segment migration between two runs: which customers moved from which segment to which.

A company re-runs its segmentation every month. Between an earlier and a later run this module

1. matches the later run's segments to the earlier run's (a re-fit numbers its segments
   arbitrarily), so that "Insiders" stays "Insiders": by members (:func:`match_members`) or by
   centroids (:func:`match_centroids`), each an optimal one-to-one assignment
   (:func:`scipy.optimize.linear_sum_assignment`) with a score per pair;
2. counts the customers (and their revenue) that went from each earlier segment to each later
   one, with the customers who arrived (new) and those who left (lapsed)
   (:func:`transitions`).

:func:`migrate` does both for two saved solutions (``run.solution()``); the functions over
plain frames serve a scheduled re-run that scores with a published model, whose segment ids
are the model's own and need no matching (``migrate(..., match=False)`` or
``transitions(..., match=None)``).

Which matching by default (``how="auto"``): by members when the two runs share at least
:data:`MIN_SHARED` (half) of the smaller run's customers, else by centroids. Members measure
directly what a marketer means by "the same segment": the same people. Centroids drift between
months even when nobody moves (every customer's recency grows by a month; revenue accumulates),
so two close segments can swap places in centroid space; but when few customers are shared
(a new customer base, re-keyed ids) the members say little and the centroids are all there is.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from segmint.errors import InputError, ModelError, public

if TYPE_CHECKING:
    from segmint.runs import SavedSolution

__all__ = ["MIN_SHARED", "NEW_CUSTOMERS", "LAPSED", "SegmentMatch", "Migration",
           "match_segments", "match_members", "match_centroids", "centroid_scale",
           "transitions", "migrate"]

log = logging.getLogger(__name__)

#: ``how="auto"`` matches by members when the runs share at least this part of the smaller
#: run's customers, else by centroids.
MIN_SHARED = 0.5
#: The row of the transition matrix for customers only in the later run.
NEW_CUSTOMERS = "new customers"
#: The column of the transition matrix for customers only in the earlier run.
LAPSED = "lapsed"

_HOWS = ("auto", "members", "centroids")
_NOISE = -1  # the outlier segment: always itself, never matched to another


@dataclass(frozen=True)
class SegmentMatch:
    """How the later run's segments map onto the earlier run's.

    Attributes
    ----------
    how : {"members", "centroids", "identity"}
        What the match was made by; "identity": ids kept as they are (no matching).
    mapping : dict of int to int
        Later segment id -> its id after matching: the matched earlier segment's id, -1 for
        the outlier segment, or a new id above the earlier run's largest for a later segment
        left unmatched.
    names : dict of int to str
        Segment id after matching -> name: the earlier segment's name for a matched one, the
        later segment's own name for a new one.
    pairs : pandas.DataFrame
        One row per later segment: ``later_segment``, ``later_name``, ``segment`` (id after
        matching), ``earlier_segment`` (missing for a new one), ``earlier_name``, ``name``
        (after matching), ``score`` (Jaccard of the members, 1 is the same customers; or the
        standardised distance of the centroids, 0 is the same centre) and ``new``.
    """

    how: Literal["members", "centroids", "identity"]
    mapping: dict[int, int]
    names: dict[int, str]
    pairs: pd.DataFrame = field(repr=False)

    @property
    def score(self) -> str:
        """What ``pairs["score"]`` holds: "jaccard", "distance" or "none"."""
        return {"members": "jaccard", "centroids": "distance"}.get(self.how, "none")

    @property
    def new_segments(self) -> list[int]:
        """The later segments left unmatched, by their ids after matching."""
        return sorted(int(s) for s in self.pairs.loc[self.pairs["new"], "segment"])

    def relabel(self, labels: pd.Series) -> pd.Series:
        """The later run's labels in the earlier run's ids (the outliers, -1, stay -1).

        Examples
        --------
        >>> m = match_members(pd.Series([0, 1]), pd.Series([1, 0]))
        >>> m.relabel(pd.Series([1, 0, 0])).tolist()
        [0, 1, 1]
        """
        mapping = {_NOISE: _NOISE, **self.mapping}
        unknown = sorted(set(pd.unique(labels).tolist()) - set(mapping))
        if unknown:
            raise InputError(f"labels hold segments {unknown[:5]} that the match does not know "
                             f"(it maps {sorted(self.mapping)})")
        return labels.map(mapping).astype("int64")


@dataclass(frozen=True)
class Migration:
    """Where the earlier run's customers went in the later run.

    Attributes
    ----------
    counts : pandas.DataFrame
        Customers: rows the earlier segments by name, then :data:`NEW_CUSTOMERS` (only in the
        later run); columns the later segments by name after matching, then :data:`LAPSED`
        (only in the earlier run). Row sums are the earlier segments' sizes, column sums the
        later segments' sizes.
    revenue : pandas.DataFrame or None
        The same cells holding revenue: each customer's revenue in the later run (over the
        period the later run covers: all history when it re-reads every line), and for a
        lapsed customer (absent from the later run) the earlier run's. Missing revenue counts
        as 0. None when no revenue was given.
    new_customers, lapsed_customers : list of str
        Customer ids only in the later run, only in the earlier run (sorted).
    match : SegmentMatch
        How the later segments were matched to the earlier ones.
    earlier_names, later_names : dict of int to str
        Segment id -> the row / column label (later ids after matching).
    """

    counts: pd.DataFrame
    revenue: pd.DataFrame | None
    new_customers: list[str]
    lapsed_customers: list[str]
    match: SegmentMatch
    earlier_names: dict[int, str]
    later_names: dict[int, str]

    def stayed(self) -> pd.Series:
        """Per earlier segment (by name), the share of its customers in the same segment later
        (lapsed customers count as moved); NaN for an empty segment."""
        kept = self._kept()
        return pd.Series({name: same / size if size else float("nan")
                          for name, (same, size) in kept.items()}, name="stayed", dtype="float64")

    def _kept(self) -> dict[str, tuple[int, int]]:
        """Per earlier segment's row label: (customers in the same segment later, its size)."""
        return {name: (int(self.counts.loc[name, self.later_names[seg]])
                       if seg in self.later_names else 0, int(self.counts.loc[name].sum()))
                for seg, name in self.earlier_names.items()}

    def to_dict(self) -> dict[str, Any]:
        """The summary's figures, as JSON-ready values."""
        figures = self._figures()
        pairs = self.match.pairs
        return {
            "match": self.match.how,
            "score": self.match.score,
            **{f"{k}_customers": v for k, v in figures.items()},
            "pairs": [{k: _plain(v) for k, v in row.items()} for row in pairs.to_dict("records")],
            "stayed": {k: _plain(v) for k, v in self.stayed().items()},
            "summary": self.summary(),
        }

    def summary(self) -> str:
        """A few lines a person reads: totals, the match with its scores, who stayed where.

        Examples
        --------
        >>> m = transitions(pd.Series([0, 0, 1], index=["a", "b", "c"]),
        ...                 pd.Series([0, 1, 1], index=["a", "b", "d"]),
        ...                 earlier_names={0: "Insiders", 1: "Sleepers"})
        >>> print(m.summary())
        3 customers earlier, 3 later: 2 in both, 1 new, 1 lapsed.
        Segments kept their ids (no matching).
          Insiders: 1 of 2 stayed (50.0%)
          Sleepers: 0 of 1 stayed (0.0%)
        """
        d = self._figures()
        lines = [f"{d['earlier']:,} customers earlier, {d['later']:,} later: {d['shared']:,} in "
                 f"both, {d['new']:,} new, {d['lapsed']:,} lapsed."]
        pairs = self.match.pairs
        if self.match.how == "identity":
            lines.append("Segments kept their ids (no matching).")
        else:
            what = "Jaccard of members" if self.match.how == "members" else \
                "standardised centroid distance"
            lines.append(f"Segments matched by {self.match.how} ({what}):")
            for row in pairs.itertuples():
                if row.new:
                    lines.append(f"  later {row.later_segment} ({row.later_name}) -> new segment "
                                 f"{row.segment}")
                else:
                    score = "" if pd.isna(row.score) else f" ({row.score:.3f})"
                    lines.append(f"  later {row.later_segment} ({row.later_name}) -> "
                                 f"{row.earlier_name}{score}")
        for name, (same, size) in self._kept().items():
            share = "" if not size else f" ({100 * same / size:.1f}%)"
            lines.append(f"  {name}: {same:,} of {size:,} stayed{share}")
        return "\n".join(lines)

    def _figures(self) -> dict[str, int]:
        earlier = int(self.counts.drop(index=NEW_CUSTOMERS).to_numpy().sum())
        later = int(self.counts.drop(columns=LAPSED).to_numpy().sum())
        return {"earlier": earlier, "later": later, "shared": earlier - len(self.lapsed_customers),
                "new": len(self.new_customers), "lapsed": len(self.lapsed_customers)}

    @public
    def write(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the migration to a new folder, atomically: ``counts`` and ``revenue`` as
        Parquet and CSV, ``match.csv`` (the pairs), ``new_customers.csv``,
        ``lapsed_customers.csv`` and ``summary.json`` (:meth:`to_dict`). A reader sees the
        whole folder or none of it.

        Parameters
        ----------
        folder : str or Path
            The folder to make; it must not exist unless ``overwrite``.
        overwrite : bool, default False
            Replace an existing folder (only once the new one is complete).

        Returns
        -------
        pathlib.Path
            The folder written.

        Examples
        --------
        >>> import tempfile
        >>> m = transitions(pd.Series([0, 1], index=["a", "b"]), pd.Series([1], index=["b"]))
        >>> out = m.write(Path(tempfile.mkdtemp()) / "migration")
        >>> sorted(p.name for p in out.iterdir())[:3]
        ['counts.csv', 'counts.parquet', 'lapsed_customers.csv']
        """
        from segmint.io import atomic_dir
        from segmint.io._writers import write_parquet

        final = Path(folder)
        with atomic_dir(final, overwrite=overwrite) as tmp:
            tables = {"counts": self.counts}
            if self.revenue is not None:
                tables["revenue"] = self.revenue
            for name, table in tables.items():
                write_parquet(table, tmp / f"{name}.parquet", index=True)
                table.to_csv(tmp / f"{name}.csv", lineterminator="\n")
            self.match.pairs.to_csv(tmp / "match.csv", index=False, lineterminator="\n")
            for name, ids in (("new_customers", self.new_customers),
                              ("lapsed_customers", self.lapsed_customers)):
                pd.DataFrame({"customer": ids}).to_csv(tmp / f"{name}.csv", index=False,
                                                      lineterminator="\n")
            (tmp / "summary.json").write_text(json.dumps(self.to_dict(), indent=2),
                                              encoding="utf-8")
        return final


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NumPy numbers as Python's, NaN and missing as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value


def _labels(labels: Any, what: str) -> pd.Series:
    """A labels Series indexed by customer id (as text, one row each), segments as int64."""
    if isinstance(labels, pd.DataFrame):
        if not {"customer", "segment"} <= set(labels.columns):
            raise InputError(f"{what} labels need columns customer and segment; got "
                             f"{list(labels.columns)}")
        labels = labels.set_index("customer")["segment"]
    if not isinstance(labels, pd.Series):
        raise InputError(f"{what} labels must be a Series indexed by customer (or a frame of "
                         f"customer and segment); got {type(labels).__name__}")
    if labels.isna().any():
        raise InputError(f"{what} labels have a missing segment",
                         row=int(np.flatnonzero(labels.isna().to_numpy())[0]) + 1)
    ids = labels.index.astype("string")
    if ids.isna().any():
        raise InputError(f"{what} labels have a missing customer id",
                         row=int(np.flatnonzero(ids.isna())[0]) + 1)
    if ids.has_duplicates:
        first = ids[ids.duplicated()][0]
        raise InputError(f"{what} labels hold customer {first!r} twice")
    try:
        segments = labels.to_numpy().astype("int64")
        whole = bool((segments == labels.to_numpy()).all())
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise InputError(f"{what} segments must be integer ids; got {labels.dtype}")
    return pd.Series(segments, index=pd.Index(ids, name="customer"), name="segment")


def _names(names: Mapping[int, str] | None, segments: Any) -> dict[int, str]:
    """Every segment's name: the given ones, else "segment <id>" (the outliers by theirs)."""
    from segmint.explain import NOISE_NAME

    given = {int(k): str(v) for k, v in (names or {}).items()}
    return {int(s): given.get(int(s), NOISE_NAME if s == _NOISE else f"segment {int(s)}")
            for s in sorted(set(segments))}


def _match(how: Literal["members", "centroids"], score: np.ndarray, earlier_ids: list[int],
           later_ids: list[int], earlier_names: dict[int, str], later_names: dict[int, str],
           *, noise_score: float = float("nan"), keep: np.ndarray | None = None) -> SegmentMatch:
    """The optimal one-to-one assignment on ``score`` (earlier x later, segments without the
    outliers; higher Jaccard or lower distance is better), unmatched later segments numbered
    above the earlier run's largest id. ``keep`` (same shape) says which pairs may match at
    all (two segments with no customer in common are not the same segment): the others are
    made worthless before the assignment, so they cannot crowd out a pair that may match."""
    from scipy.optimize import linear_sum_assignment

    matched: dict[int, tuple[int, float]] = {}
    if score.size:
        maximize = how == "members"
        cost = score
        if keep is not None:
            # worthless: no Jaccard, or a distance above the sum of every allowed one
            worst = 0.0 if maximize else float(score[keep].sum()) + 1.0
            cost = np.where(keep, score, worst)
        rows, cols = linear_sum_assignment(cost, maximize=maximize)
        for r, c in zip(rows, cols, strict=True):
            if keep is None or keep[r, c]:
                matched[later_ids[c]] = (earlier_ids[r], float(score[r, c]))
    next_id = max([*earlier_names, _NOISE]) + 1
    mapping: dict[int, int] = {}
    names: dict[int, str] = {}
    records = []
    for seg in sorted(later_names):
        if seg == _NOISE:
            mapping[seg], old, value, new = _NOISE, _NOISE if _NOISE in earlier_names else None, \
                noise_score, False
        elif seg in matched:
            old, value = matched[seg]
            mapping[seg], new = old, False
        else:
            mapping[seg], old, value, new = next_id, None, float("nan"), True
            next_id += 1
        name = earlier_names[old] if old is not None else later_names[seg]
        names[mapping[seg]] = name
        records.append({"later_segment": seg, "later_name": later_names[seg],
                        "segment": mapping[seg],
                        "earlier_segment": pd.NA if old is None else old,
                        "earlier_name": None if old is None else earlier_names[old],
                        "name": name, "score": value, "new": new})
    pairs = pd.DataFrame.from_records(records, columns=["later_segment", "later_name", "segment",
                                                        "earlier_segment", "earlier_name", "name",
                                                        "score", "new"])
    pairs = pairs.astype({"later_segment": "int64", "segment": "int64",
                          "earlier_segment": "Int64", "score": "float64", "new": "bool"})
    return SegmentMatch(how=how, mapping=mapping, names=names, pairs=pairs)


@public
def match_members(earlier_labels: pd.Series, later_labels: pd.Series, *,
                  earlier_names: Mapping[int, str] | None = None,
                  later_names: Mapping[int, str] | None = None,
                  min_jaccard: float = 0.0) -> SegmentMatch:
    """Match segments by their members: the Jaccard index of every earlier and later segment
    over the customers in both runs, then the one-to-one assignment of the highest total.

    A later segment that shares no customer with the earlier segment it would be assigned
    (Jaccard 0, or not above ``min_jaccard``), or is left over because the later run has more
    segments, is new. The outlier segment -1 maps to -1 (its Jaccard is reported, not used to
    match).

    Parameters
    ----------
    earlier_labels, later_labels : pandas.Series
        Segment id per customer, indexed by customer id (or frames of customer and segment,
        as ``SavedSolution.labels()`` returns).
    earlier_names, later_names : mapping of int to str, optional
        Segment names (a profile's ``name``); default "segment <id>".
    min_jaccard : float, default 0.0
        A pair whose Jaccard is not above it is no match: the later segment is new. The
        default matches any two segments with a customer in common.

    Returns
    -------
    SegmentMatch
        ``pairs["score"]`` is the Jaccard index.

    Raises
    ------
    InputError
        When no customer is in both runs.

    Examples
    --------
    >>> earlier = pd.Series([0, 0, 1, 1, 2], index=list("abcde"))
    >>> later = pd.Series([5, 5, 3, 3, 3], index=list("abcde"))   # 5 is 0; 3 is mostly 1
    >>> m = match_members(earlier, later, earlier_names={0: "Insiders", 1: "Sleepers", 2: "New"})
    >>> m.mapping
    {3: 1, 5: 0}
    >>> m.pairs[["later_segment", "name", "score"]].values.tolist()
    [[3, 'Sleepers', 0.6666666666666666], [5, 'Insiders', 1.0]]
    """
    if not 0.0 <= min_jaccard < 1.0:
        raise InputError(f"min_jaccard must be in [0, 1); got {min_jaccard!r}")
    earlier = _labels(earlier_labels, "the earlier")
    later = _labels(later_labels, "the later")
    e_names = _names(earlier_names, earlier.unique())
    l_names = _names(later_names, later.unique())
    shared = earlier.index.intersection(later.index)
    if len(shared) == 0:
        raise InputError("the two runs share no customer, so their segments cannot be matched "
                         "by members; match by centroids (how='centroids')")
    e, l_ = earlier.loc[shared].to_numpy(), later.loc[shared].to_numpy()
    e_ids = sorted(s for s in e_names if s != _NOISE)
    l_ids = sorted(s for s in l_names if s != _NOISE)
    overlap = pd.crosstab(e, l_).reindex(index=[*e_ids, _NOISE], columns=[*l_ids, _NOISE],
                                          fill_value=0).to_numpy(dtype="float64")
    e_sizes = overlap.sum(axis=1, keepdims=True)
    l_sizes = overlap.sum(axis=0, keepdims=True)
    union = e_sizes + l_sizes - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        jaccard = np.where(union > 0, overlap / union, 0.0)
    noise = float(jaccard[-1, -1]) if _NOISE in e_names and _NOISE in l_names else float("nan")
    core = jaccard[:-1, :-1]
    return _match("members", core, e_ids, l_ids, e_names, l_names, noise_score=noise,
                  keep=(overlap[:-1, :-1] > 0) & (core > min_jaccard))


def _wide(centroids: pd.DataFrame, what: str) -> pd.DataFrame:
    """A long centroid table (segment, feature, category, value) as segment x column, the
    column a numeric feature's name or ``feature=category`` for a category's share."""
    needed = {"segment", "feature", "value"}
    if not isinstance(centroids, pd.DataFrame) or not needed <= set(centroids.columns):
        raise InputError(f"{what} centroids need columns segment, feature, (category,) value as "
                         f"SavedSolution.centroids() returns")
    table = centroids[centroids["segment"].astype("int64") != _NOISE]
    category = table["category"] if "category" in table.columns else \
        pd.Series(None, index=table.index, dtype="object")
    column = np.where(category.isna(), table["feature"].astype(str),
                      table["feature"].astype(str) + "=" + category.astype(str))
    wide = pd.DataFrame({"segment": table["segment"].astype("int64").to_numpy(), "column": column,
                         "value": pd.to_numeric(table["value"]).to_numpy(dtype="float64")})
    if wide.duplicated(["segment", "column"]).any():
        raise InputError(f"{what} centroids hold a segment's feature twice")
    out = wide.pivot(index="segment", columns="column", values="value")
    out.attrs["features"] = sorted(set(table["feature"].astype(str)))
    return out


@public
def centroid_scale(customers: pd.DataFrame, centroids: pd.DataFrame) -> pd.Series:
    """Each centroid column's scale: the customers' standard deviation of a numeric feature,
    and of a category's 0/1 indicator for a categorical one (a constant column: 1).

    Parameters
    ----------
    customers : pandas.DataFrame
        A customer table with the centroids' features (the earlier run's ``customers()``).
    centroids : pandas.DataFrame
        A long centroid table (``SavedSolution.centroids()``), which says the columns.

    Returns
    -------
    pandas.Series
        Indexed like :func:`match_centroids` 's columns: the feature, or ``feature=category``.

    Examples
    --------
    >>> customers = pd.DataFrame({"spend": [0.0, 10.0, 20.0]})
    >>> c = pd.DataFrame({"segment": [0], "feature": ["spend"], "category": [None], "value": [5.0]})
    >>> centroid_scale(customers, c).to_dict()
    {'spend': 10.0}
    """
    wide = _wide(centroids, "the")
    missing = sorted(set(wide.attrs["features"]) - set(customers.columns))
    if missing:
        raise InputError(f"the customer table lacks the centroids' features {missing}",
                         column=missing[0])
    scale = {}
    for column in wide.columns:
        if column in customers.columns:  # a numeric feature
            values = pd.to_numeric(customers[column]).astype("float64")
        else:  # feature=category: the share of the category, so the std of its indicator
            feature, _, category = column.partition("=")
            values = (customers[feature].astype(str) == category).astype("float64")
        std = float(values.std())
        scale[column] = std if np.isfinite(std) and std > 0 else 1.0
    return pd.Series(scale, dtype="float64")


@public
def match_centroids(earlier_centroids: pd.DataFrame, later_centroids: pd.DataFrame, *,
                    scale: pd.Series | None = None,
                    earlier_names: Mapping[int, str] | None = None,
                    later_names: Mapping[int, str] | None = None,
                    max_distance: float | None = None) -> SegmentMatch:
    """Match segments by their centroids: the Euclidean distance of every earlier and later
    centroid, each column divided by one common scale, then the one-to-one assignment of the
    lowest total. Every later segment is matched while earlier ones remain (unless farther
    than ``max_distance``); the ones left over are new. The outlier segment -1 (which has no
    centroid) maps to -1.

    Parameters
    ----------
    earlier_centroids, later_centroids : pandas.DataFrame
        Long centroid tables in feature units (``SavedSolution.centroids()``: segment,
        feature, category, value). A category absent from one side counts as share 0.
    scale : pandas.Series, optional
        Each column's scale (:func:`centroid_scale` of the earlier run's customers). Default:
        the spread of the earlier centroids (their standard deviation across segments).
    earlier_names, later_names : mapping of int to str, optional
        Segment names; default "segment <id>". The later segments' ids (and -1 when either
        side names it) come from the centroids and the names together.
    max_distance : float, optional
        A pair farther apart (in scale units) is no match: the later segment is new.

    Returns
    -------
    SegmentMatch
        ``pairs["score"]`` is the standardised distance.

    Raises
    ------
    InputError
        When the two runs' centroids are over different features.

    Examples
    --------
    >>> def long(values):
    ...     return pd.DataFrame([(s, "spend", None, v) for s, v in values.items()],
    ...                         columns=["segment", "feature", "category", "value"])
    >>> m = match_centroids(long({0: 10.0, 1: 500.0}), long({0: 480.0, 1: 12.0, 2: 90.0}),
    ...                     scale=pd.Series({"spend": 100.0}))
    >>> m.mapping
    {0: 1, 1: 0, 2: 2}
    >>> m.pairs["score"].round(2).tolist()
    [0.2, 0.02, nan]
    """
    if max_distance is not None and not max_distance > 0:
        raise InputError(f"max_distance must be positive; got {max_distance!r}")
    earlier = _wide(earlier_centroids, "the earlier")
    later = _wide(later_centroids, "the later")
    if earlier.attrs["features"] != later.attrs["features"]:
        only_e = sorted(set(earlier.attrs["features"]) - set(later.attrs["features"]))
        only_l = sorted(set(later.attrs["features"]) - set(earlier.attrs["features"]))
        raise InputError(f"the two runs' centroids are over different features (only earlier: "
                         f"{only_e}, only later: {only_l}), so they cannot be compared; match "
                         f"by members (how='members')")
    columns = sorted(set(earlier.columns) | set(later.columns))
    # a category a segment lacks is share 0 there (a numeric feature is never missing)
    e = earlier.reindex(columns=columns).fillna(0.0)
    l_ = later.reindex(columns=columns).fillna(0.0)
    if scale is None:
        spread = e.std(axis=0, ddof=0)
        scale = spread.where(spread > 0, 1.0)
    missing = [c for c in columns if c not in scale.index]
    if missing:
        raise InputError(f"the scale lacks centroid columns {missing[:5]}", column=missing[0])
    s = scale.reindex(columns).to_numpy(dtype="float64")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise InputError("the scale must be positive and finite for every column")
    E, L = e.to_numpy() / s, l_.to_numpy() / s
    distance = np.sqrt(((E[:, None, :] - L[None, :, :]) ** 2).sum(axis=2))
    e_ids, l_ids = [int(x) for x in e.index], [int(x) for x in l_.index]
    e_names = _names(earlier_names, [*e_ids, *(earlier_names or {})])
    l_names = _names(later_names, [*l_ids, *(later_names or {})])
    extra = sorted(set(l_names) - set(l_ids) - {_NOISE})
    if extra:
        raise InputError(f"later segments {extra[:5]} have names but no centroid")
    keep = None if max_distance is None else distance <= max_distance
    return _match("centroids", distance, e_ids, l_ids, e_names, l_names, keep=keep)


def _shared_share(earlier: pd.Series, later: pd.Series) -> float:
    smaller = min(len(earlier), len(later))
    return len(earlier.index.intersection(later.index)) / smaller if smaller else 0.0


def _profile_names(solution: SavedSolution) -> dict[int, str]:
    profile = solution.profile()
    if not {"segment", "name"} <= set(profile.columns):
        raise ModelError("the solution's profile lacks segment names", file=str(solution.folder))
    return {int(s): str(n) for s, n in zip(profile["segment"], profile["name"], strict=True)}


def _check_how(how: str) -> None:
    if how not in _HOWS:
        raise InputError(f"how must be one of {', '.join(map(repr, _HOWS))}; got {how!r}")


@public
def match_segments(earlier: SavedSolution, later: SavedSolution, *,
                   how: Literal["auto", "members", "centroids"] = "auto",
                   min_jaccard: float = 0.0, max_distance: float | None = None) -> SegmentMatch:
    """Match a later run's segments to an earlier run's, so a segment keeps its name.

    Parameters
    ----------
    earlier, later : SavedSolution
        ``open_run(path).solution(name)`` of the two runs.
    how : {"auto", "members", "centroids"}, default "auto"
        "members": :func:`match_members` (Jaccard over the customers in both runs);
        "centroids": :func:`match_centroids`, each feature divided by the earlier run's
        customers' standard deviation (:func:`centroid_scale`); "auto": members when the runs
        share at least :data:`MIN_SHARED` of the smaller run's customers, else centroids
        (else members when the centroids are over different features).
    min_jaccard, max_distance : float, optional
        How alike two segments must be to match, by members / by centroids (see
        :func:`match_members`, :func:`match_centroids`); a later segment matched to none is new.

    Returns
    -------
    SegmentMatch

    Raises
    ------
    InputError
        How is unknown; members without a shared customer; centroids over different features.

    Examples
    --------
    >>> old, new = segmint.open_run("runs/2026-11"), segmint.open_run("runs/2026-12")  # doctest: +SKIP
    >>> match_segments(old.solution(), new.solution()).pairs                          # doctest: +SKIP
    """
    _check_how(how)
    e_labels, l_labels = _labels(earlier.labels(), "the earlier"), _labels(later.labels(), "the later")
    e_names, l_names = _profile_names(earlier), _profile_names(later)
    if how == "auto":
        share = _shared_share(e_labels, l_labels)
        same_features = sorted(earlier.metrics["features"]) == sorted(later.metrics["features"])
        how = "members" if share >= MIN_SHARED or (share > 0 and not same_features) else "centroids"
        log.info("matching segments by %s (%.0f%% of the smaller run's customers shared)",
                 how, 100 * share)
    if how == "members":
        return match_members(e_labels, l_labels, earlier_names=e_names, later_names=l_names,
                             min_jaccard=min_jaccard)
    e_centroids, l_centroids = earlier.centroids(), later.centroids()
    customers = earlier.run.customers()
    return match_centroids(e_centroids, l_centroids,
                           scale=centroid_scale(customers, e_centroids),
                           earlier_names=e_names, later_names=l_names,
                           max_distance=max_distance)


def _identity(earlier_names: dict[int, str], later_names: dict[int, str]) -> SegmentMatch:
    """Ids kept as they are (a published model's): a later id's name is the earlier one's."""
    names = {s: earlier_names.get(s, n) for s, n in later_names.items()}
    pairs = pd.DataFrame({
        "later_segment": list(later_names), "later_name": list(later_names.values()),
        "segment": list(later_names),
        "earlier_segment": pd.array([s if s in earlier_names else pd.NA for s in later_names],
                                    dtype="Int64"),
        "earlier_name": [earlier_names.get(s) for s in later_names],
        "name": [names[s] for s in later_names], "score": np.nan,
        "new": [s not in earlier_names for s in later_names]})
    return SegmentMatch(how="identity", mapping={s: s for s in later_names}, names=names,
                        pairs=pairs.astype({"later_segment": "int64", "segment": "int64",
                                            "score": "float64", "new": "bool"}))


def _axis_labels(names: dict[int, str], reserved: str,
                 new: Collection[int] = ()) -> dict[int, str]:
    """Row or column labels: the names, a new segment's marked, any clash made unique by id."""
    labels = {s: f"{n} (new)" if s in new else n for s, n in names.items()}
    seen = pd.Series(list(labels.values()))
    clash = set(seen[seen.duplicated(keep=False)]) | {reserved}
    return {s: f"{label} [segment {s}]" if label in clash else label for s, label in labels.items()}


def _revenue(revenue: pd.Series | None, what: str) -> pd.Series | None:
    if revenue is None:
        return None
    if not isinstance(revenue, pd.Series):
        raise InputError(f"{what} revenue must be a Series indexed by customer; got "
                         f"{type(revenue).__name__}")
    ids = revenue.index.astype("string")
    if ids.has_duplicates:
        raise InputError(f"{what} revenue holds customer {ids[ids.duplicated()][0]!r} twice")
    try:
        values = pd.to_numeric(revenue).astype("float64").to_numpy()
    except (TypeError, ValueError):
        raise InputError(f"{what} revenue is not numeric ({revenue.dtype})") from None
    return pd.Series(values, index=ids)


@public
def transitions(earlier_labels: pd.Series, later_labels: pd.Series, *,
                earlier_names: Mapping[int, str] | None = None,
                later_names: Mapping[int, str] | None = None,
                earlier_revenue: pd.Series | None = None,
                later_revenue: pd.Series | None = None,
                match: SegmentMatch | None = None) -> Migration:
    """The transition matrix of customers (and revenue) between two labelings.

    Parameters
    ----------
    earlier_labels, later_labels : pandas.Series
        Segment id per customer, indexed by customer id (or frames of customer and segment).
    earlier_names, later_names : mapping of int to str, optional
        Segment names; default "segment <id>".
    earlier_revenue, later_revenue : pandas.Series, optional
        Revenue per customer, indexed by customer id. A cell's revenue is the later run's of
        each customer in it; the lapsed column's is the earlier run's (they have no later
        one). Missing revenue counts as 0. Without ``later_revenue`` there is no revenue table.
    match : SegmentMatch, optional
        Applied to the later labels first (:func:`match_members`, :func:`match_centroids`);
        None keeps the ids as they are (a published model's own), a later segment named by
        the earlier segment of its id.

    Returns
    -------
    Migration

    Examples
    --------
    >>> earlier = pd.Series([0, 0, 1, 1], index=["a", "b", "c", "d"])
    >>> later = pd.Series([7, 7, 7, 4], index=["a", "b", "c", "e"])
    >>> names = {0: "Insiders", 1: "Sleepers"}
    >>> m = transitions(earlier, later, earlier_names=names,
    ...                 match=match_members(earlier, later, earlier_names=names))
    >>> m.counts  # doctest: +NORMALIZE_WHITESPACE
    later          Insiders  segment 4 (new)  lapsed
    earlier
    Insiders              2                0       0
    Sleepers              1                0       1
    new customers         0                1       0
    >>> m.new_customers, m.lapsed_customers
    (['e'], ['d'])
    """
    earlier = _labels(earlier_labels, "the earlier")
    later = _labels(later_labels, "the later")
    e_names = _names(earlier_names, earlier.unique())
    l_names = _names(later_names, later.unique())
    if match is None:
        match = _identity(e_names, l_names)
    later = match.relabel(later)
    # columns in the earlier run's order, new ones last; the outliers named even when the
    # match was made without them (centroids: they have none)
    after = dict(sorted((t, match.names[t] if t in match.names else l_names[t])
                        for t in pd.unique(later.to_numpy()).tolist()))
    row_labels = _axis_labels(e_names, NEW_CUSTOMERS)
    column_labels = _axis_labels(after, LAPSED, new=set(match.new_segments))
    rows = [*row_labels.values(), NEW_CUSTOMERS]
    columns = [*column_labels.values(), LAPSED]

    joined = pd.concat([earlier.rename("earlier"), later.rename("later")], axis=1, join="outer")
    row = joined["earlier"].map(row_labels).fillna(NEW_CUSTOMERS)
    column = joined["later"].map(column_labels).fillna(LAPSED)
    counts = pd.crosstab(row, column).reindex(index=rows, columns=columns, fill_value=0)
    counts = counts.astype("int64").rename_axis(index="earlier", columns="later")

    revenue = None
    l_rev = _revenue(later_revenue, "the later")
    e_rev = _revenue(earlier_revenue, "the earlier")
    if l_rev is not None:
        lapsed = joined["later"].isna()
        spend = l_rev.reindex(joined.index)
        if e_rev is not None:
            spend = spend.where(~lapsed, e_rev.reindex(joined.index))
        spend = spend.fillna(0.0)
        revenue = spend.groupby([row, column]).sum().unstack(fill_value=0.0) \
            .reindex(index=rows, columns=columns, fill_value=0.0).astype("float64") \
            .rename_axis(index="earlier", columns="later")
    new = sorted(str(c) for c in joined.index[joined["earlier"].isna()])
    lapsed_ids = sorted(str(c) for c in joined.index[joined["later"].isna()])
    return Migration(counts=counts, revenue=revenue, new_customers=new,
                     lapsed_customers=lapsed_ids, match=match, earlier_names=row_labels,
                     later_names=column_labels)


def _revenue_of(solution: SavedSolution) -> pd.Series | None:
    column = solution.run.manifest.get("revenue")
    if not column:
        return None
    customers = solution.run.customers()
    if column not in customers.columns:
        raise ModelError(f"the customer table lacks the revenue column {column!r} its manifest "
                         f"names", file=str(solution.run.path), column=column)
    return customers[column]


@public
def migrate(earlier: SavedSolution, later: SavedSolution, *, match: bool = True,
            how: Literal["auto", "members", "centroids"] = "auto", min_jaccard: float = 0.0,
            max_distance: float | None = None) -> Migration:
    """How customers moved between two runs' segments.

    Parameters
    ----------
    earlier, later : SavedSolution
        ``open_run(path).solution(name)`` of the two runs.
    match : bool, default True
        Match the later segments to the earlier ones first (:func:`match_segments`); False
        when the ids already agree (both scored with one published model).
    how : {"auto", "members", "centroids"}, default "auto"
        The matching, as in :func:`match_segments`.
    min_jaccard, max_distance : float, optional
        How alike two segments must be to match (:func:`match_segments`).

    Returns
    -------
    Migration
        Counts, and revenue when the runs name a revenue column: the later run's revenue of
        each customer, the earlier run's for a lapsed one.

    Examples
    --------
    >>> old, new = segmint.open_run("runs/2026-11"), segmint.open_run("runs/2026-12")  # doctest: +SKIP
    >>> m = migrate(old.solution(), new.solution())                                   # doctest: +SKIP
    >>> print(m.summary()); m.write("runs/migration-2026-12")                         # doctest: +SKIP
    """
    _check_how(how)
    segment_match = match_segments(earlier, later, how=how, min_jaccard=min_jaccard,
                                   max_distance=max_distance) if match else None
    return transitions(earlier.labels(), later.labels(),
                       earlier_names=_profile_names(earlier), later_names=_profile_names(later),
                       earlier_revenue=_revenue_of(earlier), later_revenue=_revenue_of(later),
                       match=segment_match)
