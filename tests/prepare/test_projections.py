"""Projections for plots: blobs stay apart, PCA is scikit-learn's, samples are seeded, MCA
separates categorical groups, bad settings and bad input get clear errors; the figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from segmint.errors import InputError
from segmint.prepare.projections import Projection, project, project_categorical
from segmint.report._figures import OUTLIER_COLOUR, projection_figure


def _blobs(n_per_blob: int = 100, dims: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs (sd 1) whose centres are 8 apart along their own axis."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, dims))
    centres[0, 0], centres[1, 1], centres[2, 2] = 8.0, 8.0, 8.0
    X = np.vstack([c + rng.normal(0, 1, (n_per_blob, dims)) for c in centres])
    return X, np.repeat(np.arange(3), n_per_blob)


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_separated_blobs_stay_apart_in_two_dimensions(method):
    X, blob = _blobs()
    p = project(X, method, seed=0)
    assert p.coords.shape == (300, 2) and p.coords.dtype == np.float64
    assert p.rows.tolist() == list(range(300))
    # a 5-nearest-neighbour vote in the plot's two coordinates names each point's blob
    accuracy = cross_val_score(KNeighborsClassifier(5), p.coords, blob[p.rows], cv=5).mean()
    assert accuracy >= 0.95


def test_pca_explains_what_scikit_learn_pca_explains():
    X, _ = _blobs()
    p = project(X, "pca", n_components=3)
    reference = PCA(n_components=3).fit(X)
    np.testing.assert_allclose(p.explained, reference.explained_variance_ratio_, rtol=1e-10)
    assert 0 < sum(p.explained) <= 1
    # the same points up to each axis's sign
    np.testing.assert_allclose(np.abs(p.coords), np.abs(reference.transform(X)), atol=1e-8)
    assert p.axis_titles()[0] == f"PC1 ({reference.explained_variance_ratio_[0]:.1%})"
    assert p.note == (f"PCA of the 10 prepared columns: 3 components explain "
                      f"{reference.explained_variance_ratio_.sum():.1%} of the variance")


def test_pca_is_fitted_on_every_row_and_shows_a_sample():
    X, _ = _blobs()
    p = project(X, "pca", max_rows=50, seed=3)
    assert len(p.rows) == 50 and len(np.unique(p.rows)) == 50
    reference = PCA(n_components=2).fit(X)  # all 300 rows
    np.testing.assert_allclose(p.explained, reference.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(p.coords), np.abs(reference.transform(X[p.rows])), atol=1e-8)
    assert p.note.endswith("; 50 of the 300 customers shown")


def test_the_sample_is_seeded():
    X, _ = _blobs()
    first, again = project(X, "tsne", seed=1, max_rows=60), project(X, "tsne", seed=1, max_rows=60)
    other = project(X, "tsne", seed=2, max_rows=60)
    assert len(first.rows) == 60 and np.all(np.diff(first.rows) > 0)
    np.testing.assert_array_equal(first.rows, again.rows)
    np.testing.assert_array_equal(first.coords, again.coords)
    assert set(first.rows) != set(other.rows)
    assert first.note.startswith("t-SNE of the 10 prepared columns, a 60-customer sample of 300")
    assert first.explained is None


def test_three_components():
    X, _ = _blobs()
    p = project(X, "tsne", n_components=3, max_rows=80)
    assert p.coords.shape == (80, 3)
    assert p.axis_titles() == ["t-SNE 1", "t-SNE 2", "t-SNE 3"]


def _two_groups(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers of two groups: group 1 mostly on the gold plan and in stores, group 0 on basic
    plans and on the web; region is noise; a tenth of channels are missing."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1], n // 2)
    usual = rng.random(n) < 0.9
    frame = pd.DataFrame({
        "plan": np.where(usual == (group == 1), "gold", "basic"),
        "channel": pd.array(np.where(rng.random(n) < 0.85, np.where(group == 1, "store", "web"),
                                     "phone"), dtype="string"),
        "region": rng.choice(["N", "S", "E", "W"], n),
        "age_band": rng.choice([1, 2, 3], n).astype(float),
    })
    frame.loc[rng.random(n) < 0.1, "channel"] = pd.NA
    frame.loc[rng.random(n) < 0.05, "age_band"] = np.nan
    return frame, group


def test_mca_separates_groups_on_the_first_axis():
    frame, group = _two_groups()
    p = project_categorical(frame, ["plan", "channel", "region", "age_band"])
    axis = p.coords[:, 0]
    # one threshold on axis 1 (the midpoint of the groups' means) puts 90% or more in their group
    cut = (axis[group == 0].mean() + axis[group == 1].mean()) / 2
    side = axis > cut
    agreement = max((side == (group == 1)).mean(), (side == (group == 0)).mean())
    assert agreement >= 0.9
    assert p.method == "mca" and p.coords.shape == (200, 2)
    assert p.explained is not None and p.explained[0] > p.explained[1] > 0
    assert p.axis_titles()[0].startswith("Axis 1 (")
    assert "4 categorical columns" in p.note and "all 200 customers" in p.note


def test_mca_missing_values_are_a_level_and_samples_are_seeded():
    frame, _ = _two_groups()
    frame["channel"] = frame["channel"].astype(object)
    frame.loc[:20, "channel"] = None  # None, pandas' NA and NaN alike
    first = project_categorical(frame, ["channel", "age_band"], max_rows=120, seed=5)
    again = project_categorical(frame, ["channel", "age_band"], max_rows=120, seed=5)
    assert np.isfinite(first.coords).all() and first.coords.shape == (120, 2)
    np.testing.assert_array_equal(first.rows, again.rows)
    np.testing.assert_array_equal(first.coords, again.coords)
    # customers whose channel is missing sit together: one point per (channel, age band) pair
    missing = frame["channel"].iloc[first.rows].isna().to_numpy()
    band = frame["age_band"].iloc[first.rows].to_numpy()
    same = missing & (band == 2.0)
    assert same.sum() >= 2 and np.ptp(first.coords[same], axis=0).max() < 1e-9


@pytest.mark.parametrize("n_components", [1, 4, 2.0])
def test_only_two_or_three_components(n_components):
    X, _ = _blobs()
    with pytest.raises(ValueError, match="n_components must be 2 or 3"):
        project(X, "pca", n_components=n_components)
    with pytest.raises(ValueError, match="n_components must be 2 or 3"):
        project_categorical(_two_groups()[0], ["plan"], n_components=n_components)


def test_unknown_method():
    with pytest.raises(ValueError, match="'mds' is not one of"):
        project(np.eye(5), "mds")  # type: ignore[arg-type]


def test_non_finite_input_is_named():
    X, _ = _blobs()
    X[[4, 9], 7] = [np.nan, np.inf]
    with pytest.raises(InputError, match=r"column 'column 7'.*2 non-finite values.*rows 5, 10"):
        project(X, "umap")


def test_too_few_rows_or_columns():
    with pytest.raises(InputError, match="1 columns cannot give 2 dimensions"):
        project(np.arange(10.0).reshape(-1, 1), "pca")
    with pytest.raises(InputError, match="3 customers are too few to project to 2 dimensions"):
        project(np.eye(3), "tsne")
    with pytest.raises(InputError, match="every column .* is constant"):
        project(np.ones((10, 3)), "pca")
    with pytest.raises(InputError, match=r"1 MCA axes \(3 levels in 2 columns\)"):
        project_categorical(pd.DataFrame({"a": ["x", "y"] * 5, "b": ["k"] * 10}), ["a", "b"])
    with pytest.raises(InputError, match="column 'tier'"):
        project_categorical(pd.DataFrame({"a": ["x", "y"] * 5}), ["a", "tier"])


# ------------------------------------------------------------------ the figure

def _projection(n_components: int = 2) -> tuple[Projection, np.ndarray]:
    X, blob = _blobs()
    p = project(X, "pca", n_components=n_components, max_rows=200, seed=0)
    labels = blob.copy()
    labels[p.rows[[3, 150]]] = -1  # two outliers among the projected rows
    return p, labels


def test_figure_has_one_named_trace_per_segment():
    p, labels = _projection()
    figure = projection_figure(p, labels, names={0: "Loyal", 1: "Lapsed"}, title="Segments")
    traces = {trace.name: trace for trace in figure.data}
    shown = labels[p.rows]
    present = sorted(set(shown.tolist()))
    assert len(figure.data) == len(present)
    expected = {0: "0: Loyal", 1: "1: Lapsed", 2: "2", -1: "-1: outliers"}
    assert set(traces) == {expected[s] for s in present}
    for segment in present:  # each trace holds exactly its segment's points
        trace = traces[expected[segment]]
        np.testing.assert_allclose(np.asarray(trace.x, dtype=float), p.coords[shown == segment, 0],
                                   rtol=1e-6)
        assert trace.type == "scatter"
    assert figure.layout.xaxis.title.text == p.axis_titles()[0]
    assert figure.layout.yaxis.title.text.startswith("PC2 (")
    assert figure.layout.title.text == "Segments"
    assert sum(len(trace.x) for trace in figure.data) == len(p.rows) <= 200


def test_figure_outliers_are_grey_and_others_are_not():
    p, labels = _projection()
    figure = projection_figure(p, labels)
    colours = {trace.name: trace.marker.color for trace in figure.data}
    assert colours.pop("-1: outliers") == OUTLIER_COLOUR
    assert OUTLIER_COLOUR not in colours.values()
    assert len(set(colours.values())) == len(colours)  # each segment its own colour


def test_figure_in_three_dimensions():
    p, labels = _projection(n_components=3)
    figure = projection_figure(p, labels, names={2: "New"})
    assert {trace.type for trace in figure.data} == {"scatter3d"}
    assert "2: New" in {trace.name for trace in figure.data}
    assert figure.layout.scene.zaxis.title.text.startswith("PC3 (")


def test_figure_needs_labels_for_every_projected_row():
    p, labels = _projection()
    with pytest.raises(ValueError, match="labels"):
        projection_figure(p, labels[:100])


def test_figure_embeds_offline():
    import plotly.io as pio

    p, labels = _projection()
    html = pio.to_html(projection_figure(p, labels), full_html=False, include_plotlyjs=False)
    assert "<script src=" not in html and "scatter" in html
