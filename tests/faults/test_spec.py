"""Specs that are wrong: unknown parameters, empty or out-of-range settings, names that are no
folder name, YAML that is not a mapping or not YAML, a spec that is not a file; grid values
the estimator cannot take."""
from __future__ import annotations

import pytest
import yaml

import segmint

from .conftest import TINY_SELECT, TINY_SWEEP, assert_api_error, assert_user_error

KMEANS = {"name": "kmeans", "grid": {"n_clusters": [2]}}


def _spec_text(case, **override) -> str:
    """A valid tiny spec on the good run's data, with ``override`` applied at the top level
    (``sweep`` / ``select`` dicts are merged into the tiny ones)."""
    spec = {"name": "fault", "source": {"path": str(case.good.data)},
            "sweep": {**TINY_SWEEP, **override.pop("sweep", {})},
            "select": {**TINY_SELECT, **override.pop("select", {})},
            "output": str(case.root), **override}
    return yaml.safe_dump(spec, sort_keys=False)


# (id, how to make the spec file's text or None for a special file, what the message says)
SPEC_FAULTS = [
    ("unknown-grid-parameter", {"sweep": {"algorithms": [{"name": "kmeans",
                                                          "grid": {"foo": [1]}}]}}, "foo"),
    ("empty-algorithms", {"sweep": {"algorithms": []}}, "algorithms"),
    ("empty-scalings", {"sweep": {"scalings": []}}, "scalings"),
    ("stability-fraction-1.5", {"select": {"stability_fraction": 1.5}}, "stability_fraction"),
    ("stability-fraction-0", {"select": {"stability_fraction": 0}}, "stability_fraction"),
    ("stability-resamples-negative", {"select": {"stability_resamples": -1}}, "stability_resamples"),
    ("silhouette-sample-0", {"sweep": {"silhouette_sample": 0}}, "silhouette_sample"),
    ("name-300-chars", {"name": "n" * 300}, "name"),
    ("name-with-slash", {"name": "../escape/x"}, "name"),
    ("unknown-algorithm", {"sweep": {"algorithms": [{"name": "kmeens"}]}}, "kmeens"),
    ("unknown-scaling", {"sweep": {"scalings": ["zscore"]}}, "zscore"),  # the value it got
    ("yaml-list", "- name: fault\n- sweep: {}\n", "mapping"),
    ("yaml-syntax-error", "name: fault\nsweep: {algorithms: [\n  - {name: kmeans\n", "yaml"),
    ("not-utf8", b"name: caf\xe9\n", "utf-8"),
    ("empty-file", "", "mapping"),
    ("missing-file", None, "not found"),
    ("directory", None, ""),
]


def _make(case, how) -> str:
    name = "spec.yaml"
    if how is None:
        return name
    content = _spec_text(case, **how) if isinstance(how, dict) else how
    case.write(name, content)
    return name


def _prepare(case, fault_id, how) -> str:
    name = _make(case, how)
    if fault_id == "directory":
        (case.folder / name).mkdir()
    return name


CLI_SPEC_FAULTS = [f for f in SPEC_FAULTS if f[0] in {
    "unknown-grid-parameter", "stability-fraction-1.5", "name-with-slash", "yaml-list",
    "yaml-syntax-error", "missing-file", "directory"}]


GAPS: dict = {}


def _params(faults):
    return [pytest.param(*f, id=f[0], marks=[GAPS[f[0]]] if f[0] in GAPS else []) for f in faults]


@pytest.mark.parametrize("fault_id, how, says", _params(CLI_SPEC_FAULTS))
def test_bad_spec_cli(case, fault_id, how, says):
    name = _prepare(case, fault_id, how)
    res = case.run("run", name)
    assert_user_error(res, file=name, contains=(says,) if says else ())
    case.check()


@pytest.mark.parametrize("fault_id, how, says", _params(SPEC_FAULTS))
def test_bad_spec_api(case, fault_id, how, says):
    name = _prepare(case, fault_id, how)
    case.snapshot()
    assert_api_error(segmint.load_spec, name, kind=segmint.SpecError, file=name,
                     contains=(says,) if says else ())
    assert_api_error(segmint.run, name, kind=segmint.SpecError, file=name)
    case.check()


@pytest.mark.parametrize("raw, says", [
    ({"name": "fault", "sweep": {"algorithms": "kmeans"}}, "algorithms"),
    ({"name": "fault", "select": {"stability_fraction": "most"}}, "stability_fraction"),
    ({"name": "fault", "sweep": {"algorithms": [{"name": "kmeans", "grid": [2, 3]}]}}, "grid"),
    ({"name": "fault", "source": {"path": "a.csv", "duckdb": "b.duckdb", "table": "t"}}, "source"),
    ({"name": "fault", "source": {"path": "a.csv", "header": False}}, "names"),
    ({"name": "fault", "recipe": {"kind": "graph"}}, "kind"),
    ({"name": "fault", "seed": -1}, "seed"),
], ids=["algorithms-not-list", "fraction-text", "grid-a-list", "two-source-kinds",
        "header-false-no-names", "unknown-recipe-kind", "negative-seed"])
def test_bad_spec_dict_api(case, raw, says):
    case.snapshot()
    assert_api_error(segmint.load_spec, raw, kind=segmint.SpecError, contains=(says,))
    case.check()


# Values the spec's types accept but the estimator refuses: a user error, not a crash.
@pytest.mark.parametrize("via, grid, says", [
    ("cli", {"n_clusters": [0]}, "n_clusters"),
    ("api", {"n_clusters": ["two"]}, "n_clusters"),
    ("api", {"n_clusters": [1000]}, "n_clusters"),
    ("api", {"tol": [-1.0]}, "tol"),
], ids=["k-zero", "k-text", "k-above-customers", "negative-tol"])
def test_grid_value_the_estimator_refuses(case, via, grid, says):
    case.write("spec.yaml", _spec_text(case, sweep={"algorithms": [{"name": "kmeans",
                                                                    "grid": grid}]}))
    case.fails("spec.yaml", via, kind=segmint.SegmintError, contains=(says,))
    case.check()
