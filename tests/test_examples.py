"""The example specs in examples/ stay valid."""
from pathlib import Path

import pytest

from segmint import load_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_spec_validates(path):
    spec = load_spec(path)
    assert spec.source.path and Path(spec.source.path).is_absolute()


def test_intel_kit_example_runs(tmp_path):
    import segmint

    spec = load_spec(EXAMPLES[[p.name for p in EXAMPLES].index("intel_kit.yaml")])
    spec.sweep.algorithms[0].grid = {"n_clusters": [2, 3], "tol": [0.001]}
    spec.sweep.algorithms[1].grid = {"min_samples": [10], "eps": [0.7]}
    run = segmint.run(spec, output=tmp_path)
    assert run.manifest["customers"] == 4256 and len(run.manifest["features"]) == 21
