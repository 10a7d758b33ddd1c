"""What the package declares agrees with what it runs with."""

import importlib.metadata
import tomllib
from pathlib import Path

import sklearn
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import segmint
from segmint.cluster import _sklearn_compat

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements() -> dict[str, Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def test_installed_scikit_learn_is_in_the_tested_range():
    req = _requirements()["scikit-learn"]
    assert req.specifier, "scikit-learn needs a version range: the grid engine uses its internals"
    assert any(s.operator == "<" for s in req.specifier), "no upper bound on scikit-learn"
    assert req.specifier.contains(sklearn.__version__), (sklearn.__version__, str(req.specifier))


def test_every_borrowed_scikit_learn_name_resolves():
    # the module imported; each name it exports is a real object, not a stand-in
    assert _sklearn_compat.__all__
    for name in _sklearn_compat.__all__:
        value = getattr(_sklearn_compat, name)
        assert value is not None, name
        if name != "ALLOW_NONFINITE":
            assert callable(value), name
            assert value.__module__.startswith("sklearn."), (name, value.__module__)


def test_constraints_pin_versions_inside_the_declared_ranges():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    assert "segmint" not in pins
    for name, req in _requirements().items():
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), (name, pins[name], str(req.specifier))


def test_version_is_written_once():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert importlib.metadata.version("segmint") == segmint.__version__


def test_package_is_marked_typed():
    assert (ROOT / "src" / "segmint" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["segmint"]
