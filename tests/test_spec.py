"""The spec is validated in one place: every rule a parameter has is checked before any work."""
from __future__ import annotations

import pytest

import segmint
from segmint.cluster import ALGORITHMS

BASE = {"source": {"path": "x.csv"}}


@pytest.mark.parametrize("override, where, says", [
    ({"sweep": {"algorithms": [{"name": "kmeans", "grid": {"foo": [1]}}]}},
     "sweep.algorithms.0", "kmeans has no parameter 'foo'"),
    ({"sweep": {"algorithms": [{"name": "dbscan", "grid": {"eps": []}}]}},
     "sweep.algorithms.0", "'eps' has no values"),
    ({"sweep": {"algorithms": [{"name": "kmeans", "grid": [2, 3]}]}},
     "sweep.algorithms.0.grid", "maps parameter names"),
    ({"sweep": {"algorithms": []}}, "sweep.algorithms", "at least 1"),
    ({"sweep": {"scalings": []}}, "sweep.scalings", "at least 1"),
    ({"sweep": {"silhouette_sample": 0}}, "sweep.silhouette_sample", "greater than or equal to 100"),
    ({"select": {"stability_fraction": 1.5}}, "select.stability_fraction", "less than 1"),
    ({"select": {"stability_fraction": 0}}, "select.stability_fraction", "greater than 0"),
    ({"select": {"stability_resamples": -1}}, "select.stability_resamples", "greater than or equal to 1"),
    ({"select": {"min_cluster_share": 1.2}}, "select.min_cluster_share", "less than 1"),
    ({"name": "x" * 300}, "name", "at most 100 characters"),
    ({"name": "../up"}, "name", "plain folder name"),
    ({"seed": -1}, "seed", "greater than or equal to 0"),
    ({"recipe": {"missing": "ignore"}}, "recipe.missing", "'impute', 'drop' or 'error'"),
    ({"prepare": {"rare_share": 1}}, "prepare.rare_share", "less than 1"),
    ({"sweep": {"algorithms": [{"name": "kmeans", "grid": {"tol": [-1]}}]}},
     "sweep.algorithms.0", "'tol' parameter of KMeans must be a float in the range [0.0, inf)"),
    ({"sweep": {"algorithms": [{"name": "dbscan", "grid": {"eps": [0.5, -2]}}]}},
     "sweep.algorithms.0", "'eps' parameter of DBSCAN"),
    ({"sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [0]}}]}},
     "sweep.algorithms.0", "'n_clusters' parameter of KMeans"),
])
def test_every_parameter_rule_is_a_one_line_spec_error(override, where, says):
    with pytest.raises(segmint.SpecError) as caught:
        segmint.load_spec({**BASE, **override})
    message = str(caught.value)
    assert message.startswith(f"{where}: ") and says in message and "\n" not in message


def test_parameters_of_every_registered_algorithm_come_from_its_estimator():
    for name, algo in ALGORITHMS.items():
        spec = {**BASE, "sweep": {"algorithms": [{"name": name, "grid": {
            p: [algo.build().get_params()[p]] for p in algo.param_names()[:2]}}]}}
        assert segmint.load_spec(spec).sweep.algorithms[0].name == name


def test_a_spec_file_that_is_not_text_or_not_a_mapping(tmp_path):
    binary = tmp_path / "spec.yaml"
    binary.write_bytes(b"\xff\xfe\x00name: x")
    with pytest.raises(segmint.SpecError, match="not UTF-8"):
        segmint.load_spec(binary)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(segmint.SpecError, match="a spec is a YAML mapping"):
        segmint.load_spec(listed)
    with pytest.raises(segmint.SpecError, match="not found"):
        segmint.load_spec(tmp_path)


def test_engine_section_short_and_long_forms_and_bad_sizes() -> None:
    from segmint.spec import load_spec

    assert load_spec({"engine": "spark"}).engine.kind == "spark"
    assert load_spec({}).engine.kind == "local"
    long = load_spec({"engine": {"kind": "local", "memory_limit": "4GB",
                                 "temp_directory": "/tmp/spill"}}).engine
    assert (long.memory_limit, long.temp_directory) == ("4GB", "/tmp/spill")
    with pytest.raises(segmint.SpecError, match="memory_limit 'lots' is not a size"):
        load_spec({"engine": {"memory_limit": "lots"}})
    with pytest.raises(segmint.SpecError, match="engine.kind"):
        load_spec({"engine": "hadoop"})


def test_the_spark_engine_is_refused_until_it_exists(tmp_path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(segmint.SpecError, match="engine: spark is not available yet"):
        segmint.run(frame, {"engine": "spark", "recipe": {"kind": "attributes", "id_column": "id"}},
                    output=tmp_path)
    assert list(tmp_path.iterdir()) == []
