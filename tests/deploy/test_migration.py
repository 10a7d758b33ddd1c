"""Segment migration between runs (segmint.deploy.migration): matching, transition matrix, writing."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from segmint.deploy.migration import (
    LAPSED,
    NEW_CUSTOMERS,
    centroid_scale,
    match_centroids,
    match_members,
    match_segments,
    migrate,
    transitions,
)
from segmint.errors import InputError, SegmintError
from segmint.explain import NOISE_NAME

BUNDLED = Path(__file__).resolve().parents[2] / "src" / "segmint" / "data" / "online_retail.parquet"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail.parquet"


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"c{i:03d}" for i in range(start, start + n)]


def _centroids(values: dict[int, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([(s, f, None, v) for s, row in values.items() for f, v in row.items()],
                        columns=["segment", "feature", "category", "value"])


# ---------------------------------------------------------------- matching by members


def test_permuted_labels_are_matched_back_exactly():
    rng = np.random.default_rng(0)
    earlier = pd.Series(rng.integers(0, 4, 200), index=_ids(200))
    permutation = {0: 2, 1: 3, 2: 0, 3: 1}  # a re-fit numbered the same segments differently
    later = earlier.map(permutation)
    names = {0: "Insiders", 1: "Sleepers", 2: "Bargain hunters", 3: "Newcomers"}
    match = match_members(earlier, later, earlier_names=names,
                          later_names={s: f"later {s}" for s in range(4)})
    assert match.mapping == {2: 0, 3: 1, 0: 2, 1: 3}
    assert match.pairs["score"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert not match.pairs["new"].any()
    assert match.names == names
    migration = transitions(earlier, later, earlier_names=names, match=match)
    assert list(migration.counts.columns) == [*names.values(), LAPSED]
    core = migration.counts.loc[list(names.values()), list(names.values())]
    assert (core.to_numpy() == np.diag(earlier.value_counts().sort_index())).all()


def test_jaccard_is_over_shared_customers_and_picks_the_best_one_to_one():
    # earlier 0 = {a,b,c}, 1 = {d,e}; later 9 = {a,b,d}, 8 = {c,e}, plus f only later
    earlier = pd.Series([0, 0, 0, 1, 1], index=list("abcde"))
    later = pd.Series([9, 9, 8, 9, 8, 8], index=list("abcdef"))
    match = match_members(earlier, later)
    # over a..e only: J(0,9) = 2/4, J(1,8) = 1/3 (f, new, left out: with it 1/4),
    # J(0,8) = 1/4, J(1,9) = 1/4; the best total: 9 -> 0 and 8 -> 1
    assert match.mapping == {8: 1, 9: 0}
    assert match.pairs.set_index("later_segment")["score"].to_dict() == \
        pytest.approx({8: 1 / 3, 9: 0.5})
    # asked for more alike segments, the weaker pair is no match: 8 is a new segment
    assert match_members(earlier, later, min_jaccard=0.4).mapping == {8: 2, 9: 0}


def test_more_later_segments_get_new_ids_and_keep_their_names():
    earlier = pd.Series([0] * 5 + [1] * 5, index=_ids(10))
    later = pd.Series([4] * 5 + [2] * 3 + [7] * 2 + [5] * 3, index=_ids(13))  # 5: only new ones
    match = match_members(earlier, later, earlier_names={0: "Insiders", 1: "Sleepers"},
                          later_names={2: "Sleepy", 4: "Top", 5: "Fresh", 7: "Split off"})
    assert match.mapping[4] == 0 and match.mapping[2] == 1
    # 7 shares customers with 1 but 2 took it; 5 shares none: both new, numbered above 1
    assert match.mapping[5] == 2 and match.mapping[7] == 3
    assert match.new_segments == [2, 3]
    assert match.names == {0: "Insiders", 1: "Sleepers", 2: "Fresh", 3: "Split off"}
    migration = transitions(earlier, later, match=match)
    assert list(migration.counts.columns) == ["Insiders", "Sleepers", "Fresh (new)",
                                              "Split off (new)", LAPSED]
    assert migration.counts.loc[NEW_CUSTOMERS, "Fresh (new)"] == 3


def test_fewer_later_segments_leave_an_earlier_segment_without_a_column():
    earlier = pd.Series([0, 0, 1, 1, 2, 2], index=list("abcdef"))
    later = pd.Series([3, 3, 3, 3, 6, 6], index=list("abcdef"))
    match = match_members(earlier, later)
    assert match.mapping == {3: 0, 6: 2}
    migration = transitions(earlier, later, match=match)
    assert list(migration.counts.columns) == ["segment 0", "segment 2", LAPSED]
    assert migration.counts.sum(axis=1).tolist() == [2, 2, 2, 0]
    assert migration.stayed().to_dict() == {"segment 0": 1.0, "segment 1": 0.0, "segment 2": 1.0}


def test_outlier_segment_maps_to_itself_only():
    # the later outliers hold earlier segment 1's customers; they still map to -1, not to 1
    earlier = pd.Series([-1, 0, 0, 1, 1, 1], index=list("abcdef"))
    later = pd.Series([-1, 5, 5, -1, -1, 6], index=list("abcdef"))
    match = match_members(earlier, later)
    assert match.mapping == {-1: -1, 5: 0, 6: 1}
    assert match.names[-1] == NOISE_NAME
    noise = match.pairs.set_index("later_segment").loc[-1]
    assert noise["score"] == pytest.approx(1 / 3)  # {a} of {a} | {a, d, e}
    migration = transitions(earlier, later, match=match)
    assert migration.counts.loc["segment 1", NOISE_NAME] == 2


def test_a_pair_below_min_jaccard_does_not_crowd_out_one_above():
    # earlier 0 = {a,b,c}, 1 = {d}; later 5 = {a,b,d}, 6 = {c}: J(0,5) = 2/4, J(0,6) = 1/3,
    # J(1,5) = 1/3, J(1,6) = 0. The best total (2/3) pairs 5 with 1 and 6 with 0; with
    # min_jaccard .4 only 5 -> 0 may match, and it must (not be lost with the other two)
    earlier = pd.Series([0, 0, 0, 1], index=list("abcd"))
    later = pd.Series([5, 5, 6, 5], index=list("abcd"))
    assert match_members(earlier, later).mapping == {5: 1, 6: 0}
    strict = match_members(earlier, later, min_jaccard=0.4)
    assert strict.mapping == {5: 0, 6: 2} and strict.new_segments == [2]
    assert strict.pairs.set_index("later_segment")["score"][5] == 0.5


def test_no_shared_customer_is_a_clear_error():
    with pytest.raises(InputError, match="share no customer"):
        match_members(pd.Series([0, 1], index=["a", "b"]), pd.Series([0, 1], index=["c", "d"]))


def test_duplicated_customer_is_a_clear_error():
    with pytest.raises(InputError, match="customer 'a' twice"):
        transitions(pd.Series([0, 1], index=["a", "a"]), pd.Series([0], index=["a"]))


# ---------------------------------------------------------------- matching by centroids


def test_centroids_matched_by_standardised_distance():
    earlier = _centroids({0: {"spend": 100.0, "days": 10.0}, 1: {"spend": 5000.0, "days": 12.0},
                          2: {"spend": 120.0, "days": 300.0}})
    later = _centroids({0: {"spend": 4800.0, "days": 15.0}, 1: {"spend": 130.0, "days": 280.0},
                        2: {"spend": 90.0, "days": 20.0}})
    customers = pd.DataFrame({"spend": [0.0, 1000.0, 2000.0], "days": [0.0, 100.0, 200.0]})
    scale = centroid_scale(customers, earlier)
    assert scale.to_dict() == {"days": 100.0, "spend": 1000.0}
    match = match_centroids(earlier, later, scale=scale)
    assert match.mapping == {0: 1, 1: 2, 2: 0}
    by_later = match.pairs.set_index("later_segment")["score"]
    assert by_later[0] == pytest.approx(np.hypot(200 / 1000, 3 / 100))
    # pairs farther apart than max_distance are no match: those later segments are new
    near = match_centroids(earlier, later, scale=scale, max_distance=0.15)
    assert near.mapping == {0: 3, 1: 4, 2: 0} and near.new_segments == [3, 4]


def test_centroids_with_categories_and_a_new_segment():
    earlier = pd.DataFrame([(0, "age", None, 30.0), (0, "job", "admin", 1.0),
                            (1, "age", None, 60.0), (1, "job", "retired", 1.0)],
                           columns=["segment", "feature", "category", "value"])
    later = pd.DataFrame([(0, "age", None, 61.0), (0, "job", "retired", 0.9),
                          (0, "job", "admin", 0.1), (1, "age", None, 31.0),
                          (1, "job", "admin", 1.0), (2, "age", None, 45.0),
                          (2, "job", "student", 1.0)],
                         columns=["segment", "feature", "category", "value"])
    customers = pd.DataFrame({"age": [30.0, 60.0], "job": ["admin", "retired"]})
    scale = centroid_scale(customers, later)  # a category the customers lack: scale 1
    assert scale["job=student"] == 1.0
    assert scale["job=admin"] == pytest.approx(pd.Series([1.0, 0.0]).std())
    match = match_centroids(earlier, later, scale=scale, later_names={2: "Students"})
    assert match.mapping == {0: 1, 1: 0, 2: 2}
    assert match.names[2] == "Students" and match.new_segments == [2]


def test_centroid_match_leaves_the_outliers_as_they_are():
    # the outliers have no centroid, so the match knows nothing of them; they stay -1
    earlier = pd.Series([-1, 0, 1], index=["a", "b", "c"])
    later = pd.Series([-1, 3, 2], index=["a", "b", "c"])
    match = match_centroids(_centroids({0: {"spend": 1.0}, 1: {"spend": 9.0}}),
                            _centroids({2: {"spend": 8.0}, 3: {"spend": 2.0}}))
    assert match.mapping == {2: 1, 3: 0}
    m = transitions(earlier, later, match=match)
    assert list(m.counts.columns) == [NOISE_NAME, "segment 0", "segment 1", LAPSED]
    assert np.diag(m.counts.to_numpy()[:3, :3]).tolist() == [1, 1, 1]


def test_centroids_over_different_features_is_a_clear_error():
    earlier = _centroids({0: {"spend": 1.0, "days": 2.0}})
    later = _centroids({0: {"spend": 1.0, "visits": 2.0}})
    with pytest.raises(InputError, match=r"different features \(only earlier: \['days'\], only "
                                         r"later: \['visits'\]\)"):
        match_centroids(earlier, later)


# ---------------------------------------------------------------- transition matrix


@pytest.fixture
def two_months() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    earlier_ids, later_ids = _ids(300), _ids(320, start=40)  # 40 lapsed, 60 new, 260 in both
    earlier = pd.Series(rng.integers(-1, 3, len(earlier_ids)), index=earlier_ids)
    later = earlier.reindex(later_ids).fillna(pd.Series(rng.integers(0, 3, 320), index=later_ids))
    moved = rng.random(len(later)) < 0.2
    later[moved] = rng.integers(0, 3, int(moved.sum()))
    later = (later.astype("int64") + 10).where(later >= 0, -1)  # a re-fit's ids: 10, 11, 12
    return {"earlier": earlier, "later": later,
            "earlier_revenue": pd.Series(rng.gamma(2, 100, 300), index=earlier_ids),
            "later_revenue": pd.Series(rng.gamma(2, 120, 320), index=later_ids),
            "earlier_names": {-1: NOISE_NAME, 0: "Insiders", 1: "Sleepers", 2: "Bargain hunters"}}


def test_row_and_column_sums_are_the_segment_sizes(two_months):
    d = two_months
    match = match_members(d["earlier"], d["later"], earlier_names=d["earlier_names"])
    assert match.mapping == {-1: -1, 10: 0, 11: 1, 12: 2}
    m = transitions(d["earlier"], d["later"], earlier_names=d["earlier_names"], match=match)
    sizes = d["earlier"].value_counts().rename(d["earlier_names"])
    assert m.counts.sum(axis=1).drop(NEW_CUSTOMERS).to_dict() == sizes.to_dict()
    later_sizes = match.relabel(d["later"]).value_counts().rename(match.names)
    assert m.counts.sum(axis=0).drop(LAPSED).to_dict() == later_sizes.to_dict()
    assert m.counts.loc[NEW_CUSTOMERS].sum() == 60 and m.counts[LAPSED].sum() == 40
    assert m.counts.loc[NEW_CUSTOMERS, LAPSED] == 0
    assert m.new_customers == _ids(60, start=300) and m.lapsed_customers == _ids(40)


def test_revenue_matches_an_independent_pandas_computation(two_months):
    d = two_months
    match = match_members(d["earlier"], d["later"], earlier_names=d["earlier_names"])
    m = transitions(d["earlier"], d["later"], earlier_names=d["earlier_names"], match=match,
                    earlier_revenue=d["earlier_revenue"], later_revenue=d["later_revenue"])
    both = pd.DataFrame({"earlier": d["earlier"], "later": d["later"]})  # outer join on ids
    lapsed = both["later"].isna()
    spend = d["later_revenue"].reindex(both.index).where(~lapsed, d["earlier_revenue"])
    row = both["earlier"].map(d["earlier_names"]).fillna(NEW_CUSTOMERS)
    column = both["later"].map(lambda s: match.names.get(match.mapping.get(s))).fillna(LAPSED)
    expected = spend.groupby([row, column]).sum()
    for (r, c), value in expected.items():
        assert m.revenue.loc[r, c] == pytest.approx(value)
    assert m.revenue.to_numpy().sum() == pytest.approx(
        d["later_revenue"].sum() + d["earlier_revenue"][m.lapsed_customers].sum())
    assert m.revenue[LAPSED].sum() == pytest.approx(d["earlier_revenue"][m.lapsed_customers].sum())


def test_without_matching_ids_are_kept_and_named_by_the_earlier_run():
    earlier = pd.Series([0, 0, 1], index=["a", "b", "c"])
    later = pd.Series([1, 0, 1], index=["a", "b", "c"])
    m = transitions(earlier, later, earlier_names={0: "Insiders", 1: "Sleepers"},
                    later_names={0: "top", 1: "rest"})
    assert m.match.how == "identity"
    assert m.counts.loc[["Insiders", "Sleepers"], ["Insiders", "Sleepers"]].to_numpy().tolist() \
        == [[1, 1], [0, 1]]
    assert m.revenue is None


def test_a_name_that_clashes_with_new_or_lapsed_is_made_unique():
    earlier = pd.Series([0, 1], index=["a", "b"])
    m = transitions(earlier, pd.Series([0, 1], index=["a", "b"]),
                    earlier_names={0: "lapsed", 1: "Insiders"})
    assert list(m.counts.columns) == ["lapsed [segment 0]", "Insiders", LAPSED]


def test_write_is_atomic_and_reads_back(tmp_path, two_months):
    d = two_months
    m = transitions(d["earlier"], d["later"], earlier_names=d["earlier_names"],
                    match=match_members(d["earlier"], d["later"], earlier_names=d["earlier_names"]),
                    earlier_revenue=d["earlier_revenue"], later_revenue=d["later_revenue"])
    out = m.write(tmp_path / "migration")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["migration"]  # no temporary left
    pd.testing.assert_frame_equal(pd.read_parquet(out / "counts.parquet"), m.counts,
                                  check_names=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "revenue.parquet"), m.revenue,
                                  check_names=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["new_customers"] == 60 and summary["lapsed_customers"] == 40
    assert summary["match"] == "members" and summary["summary"] == m.summary()
    assert pd.read_csv(out / "lapsed_customers.csv")["customer"].tolist() == m.lapsed_customers
    with pytest.raises(SegmintError, match="already exists"):
        m.write(out)
    assert m.write(out, overwrite=True) == out


# ---------------------------------------------------------------- match_segments on solutions


@dataclass
class _Run:
    table: pd.DataFrame

    def customers(self) -> pd.DataFrame:
        return self.table


@dataclass
class _Solution:
    """What match_segments reads of a SavedSolution, made by hand."""

    segments: pd.Series
    centres: dict[int, dict[str, float]]
    table: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    folder: Path = Path(".")

    def __post_init__(self) -> None:
        self.metrics = {"features": list(self.table.columns)}
        self.run = _Run(self.table)

    def labels(self) -> pd.DataFrame:
        return pd.DataFrame({"customer": self.segments.index, "segment": self.segments.to_numpy()})

    def profile(self) -> pd.DataFrame:
        ids = sorted(set(self.segments))
        return pd.DataFrame({"segment": ids, "name": [f"name {s}" for s in ids]})

    def centroids(self) -> pd.DataFrame:
        return _centroids(self.centres)


def _solution(ids: list[str], segments: list[int], centres: dict[int, dict[str, float]]):
    table = pd.DataFrame({"spend": np.linspace(0, 1000, len(ids))}, index=ids)
    return _Solution(pd.Series(segments, index=ids), centres, table)


def test_auto_matches_by_members_when_customers_are_shared_else_by_centroids():
    # members say 5 -> 0 and 6 -> 1; the centroids (drifted) say the opposite
    earlier = _solution(list("abcd"), [0, 0, 1, 1], {0: {"spend": 100.0}, 1: {"spend": 200.0}})
    later = _solution(list("abcd"), [5, 5, 6, 6], {5: {"spend": 210.0}, 6: {"spend": 90.0}})
    assert match_segments(earlier, later).how == "members"
    assert match_segments(earlier, later).mapping == {5: 0, 6: 1}
    assert match_segments(earlier, later, how="centroids").mapping == {5: 1, 6: 0}
    strangers = _solution(list("wxyz"), [5, 5, 6, 6], {5: {"spend": 210.0}, 6: {"spend": 90.0}})
    auto = match_segments(earlier, strangers)
    assert auto.how == "centroids" and auto.mapping == {5: 1, 6: 0}
    assert auto.names == {0: "name 0", 1: "name 1"}
    with pytest.raises(InputError, match="share no customer"):
        match_segments(earlier, strangers, how="members")
    with pytest.raises(InputError, match="how must be one of"):
        match_segments(earlier, later, how="names")  # type: ignore[arg-type]


# ---------------------------------------------------------------- Online Retail, a month apart


@pytest.fixture(scope="module")
def online_retail_runs(tmp_path_factory):
    import segmint

    path = BUNDLED if BUNDLED.is_file() else SHARED
    if not path.is_file():
        pytest.skip(f"Online Retail is absent: neither {BUNDLED} nor {SHARED} exists")
    lines = pd.read_parquet(path)
    spec = {"seed": 0,
            "recipe": {"kind": "transactions", "features": "insiders",
                       "cleaning": {"drop_non_product_codes": True, "min_unit_price": 0.04}},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [4]}}]},
            "select": {"stability_top": 1, "stability_resamples": 1},
            "profile": {"projections": [], "explain": False}}
    out = tmp_path_factory.mktemp("online_retail_runs")
    earlier = segmint.run(lines[lines["InvoiceDate"] < "2011-11-09"],
                          {**spec, "name": "earlier"}, output=out)
    later = segmint.run(lines, {**spec, "name": "later"}, output=out)
    return earlier.solution(), later.solution()


def test_online_retail_a_month_apart(online_retail_runs, tmp_path):
    earlier, later = online_retail_runs
    m = migrate(earlier, later)
    assert m.match.how == "members"  # the later run holds every earlier customer
    e_profile, l_profile = earlier.profile(), later.profile()
    e_names = dict(zip(e_profile["segment"], e_profile["name"], strict=True))

    # row sums (lapsed included) are the earlier sizes, by its profile and by its labels
    rows = m.counts.sum(axis=1).drop(NEW_CUSTOMERS)
    assert rows.to_dict() == dict(zip(e_profile["name"], e_profile["size"], strict=True))
    by_labels = earlier.labels()["segment"].value_counts().rename(e_names)
    assert rows.to_dict() == by_labels.to_dict()
    # column sums (new included) are the later sizes
    columns = m.counts.sum(axis=0).drop(LAPSED)
    later_sizes = dict(zip(l_profile["segment"].map(m.match.mapping).map(m.later_names),
                           l_profile["size"], strict=True))
    assert columns.to_dict() == later_sizes
    assert m.counts.to_numpy().sum() == len(earlier.labels()) + len(m.new_customers)
    assert len(m.new_customers) == len(set(later.labels()["customer"])
                                       - set(earlier.labels()["customer"]))

    # names stay with their segments: the Insiders (highest mean revenue) match the later
    # segment of highest mean revenue, which now carries the earlier name
    core_e = e_profile[e_profile["segment"] >= 0]
    core_l = l_profile[l_profile["segment"] >= 0]
    insiders = int(core_e.loc[core_e["mean_gross_revenue"].idxmax(), "segment"])
    assert bool(e_profile.set_index("segment").loc[insiders, "insiders"])
    top_later = int(core_l.loc[core_l["mean_gross_revenue"].idxmax(), "segment"])
    assert m.match.mapping[top_later] == insiders
    assert m.match.names[insiders] == e_names[insiders]
    pair = m.match.pairs.set_index("later_segment").loc[top_later]
    assert pair["name"] == e_names[insiders] and pair["score"] > 0.5
    # every matched later segment carries its earlier segment's name, and a column of its own
    for row in m.match.pairs.itertuples():
        assert row.name == (row.later_name if row.new else e_names[row.earlier_segment])
    assert m.match.mapping.get(-1, -1) == -1  # the outliers, when the runs set some apart
    # the revenue of those still in both is the later run's
    assert m.revenue is not None
    later_revenue = later.run.customers()["gross_revenue"]
    assert m.revenue.drop(columns=LAPSED).to_numpy().sum() == pytest.approx(later_revenue.sum())

    out = m.write(tmp_path / "migration")
    assert json.loads((out / "summary.json").read_text())["earlier_customers"] == \
        len(earlier.labels())
