"""model.skops files: every model a sweep writes loads back and predicts; crafted files (code
gadgets), damaged files and files changed since the run are refused with one ModelError line,
before skops builds anything from them."""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.cluster import Birch, KMeans
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import segmint
from segmint.cluster import ALGORITHMS
from segmint.errors import ModelError
from segmint.runs._models import ALLOWED_NODES, _allowed_nodes, load_model, save_model
from segmint.spec import SCALINGS

FORMAT1 = Path(__file__).resolve().parents[1] / "fixtures" / "run_format1"
# one setting per algorithm, two where the grid engine takes a path of its own
GRIDS = {"kmeans": {"n_clusters": [2, 3]}, "minibatch_kmeans": {"n_clusters": [3]},
         "dbscan": {"eps": [0.5, 0.8], "min_samples": [5]}, "hdbscan": {"min_cluster_size": [10]},
         "gaussian_mixture": {"n_components": [3]}, "agglomerative": {"n_clusters": [3]},
         "kprototypes": {"n_clusters": [3], "n_init": [2]}, "bqml_kmeans": {"n_clusters": [3]}}
UNSAVABLE = {"birch"}  # skops 0.16 refuses to save Birch (see test_birch_...)


def _clients(mixed: bool, n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1, 2], n // 3)
    frame = pd.DataFrame({
        "client_ref": [f"R-{i:04d}" for i in range(n)],
        "balance": np.r_[rng.normal(100, 10, n // 3), rng.normal(900, 40, n // 3),
                         rng.normal(3000, 90, n // 3)],
        "visits": np.r_[rng.normal(2, 0.3, n // 3), rng.normal(8, 0.5, n // 3),
                        rng.normal(20, 1, n // 3)]})
    if mixed:  # categorical (with a rare level), binary, and missing values in each kind
        frame["plan"] = np.where(group == 2, "gold", np.where(group == 1, "silver", "basic"))
        frame["region"] = np.where(np.arange(n) == 7, "far", np.where(np.arange(n) % 2, "north",
                                                                       "south"))
        frame["member"] = (group > 0).astype(float)
        frame.loc[[3, 60, 100], "balance"] = np.nan
        frame.loc[[5, 70], "plan"] = None
        frame.loc[8, "member"] = np.nan
    return frame


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """kind -> (run, its input table): every algorithm and scaling, each swept once a module."""
    made: dict[str, tuple[segmint.Run, pd.DataFrame]] = {}

    def sweep(kind: str) -> tuple[segmint.Run, pd.DataFrame]:
        if kind not in made:
            assert set(GRIDS) | UNSAVABLE == set(ALGORITHMS), "a new algorithm: add it to GRIDS"
            clients = _clients(mixed=kind == "mixed")
            spec = {"name": kind, "recipe": {"kind": "attributes"},
                    "sweep": {"scalings": list(SCALINGS),
                              "algorithms": [{"name": a, "grid": g} for a, g in GRIDS.items()]},
                    "select": {"stability_resamples": 2, "stability_top": 1}}
            made[kind] = segmint.run(clients, spec, output=tmp_path_factory.mktemp("runs")), clients
        return made[kind]
    return sweep


@pytest.fixture(scope="module", params=["numeric", "mixed"])
def sweep_run(request, sweeps) -> tuple[segmint.Run, pd.DataFrame]:
    return sweeps(request.param)


@pytest.fixture(scope="module")
def numeric_run(sweeps) -> tuple[segmint.Run, pd.DataFrame]:
    return sweeps("numeric")


@pytest.fixture()
def copied_run(numeric_run, tmp_path) -> Path:
    return Path(shutil.copytree(numeric_run[0].path, tmp_path / "run"))


@pytest.fixture()
def nothing_built(monkeypatch) -> list[str]:
    """Fails the test if skops builds any object: a refusal must come before construction."""
    from skops.io import _audit

    built: list[str] = []

    def construct(node: Any) -> Any:
        built.append(f"{node.module_name}.{node.class_name}")
        raise AssertionError(f"skops built {built[-1]} from a file segmint should refuse")

    monkeypatch.setattr(_audit.Node, "construct", construct)
    return built


# ------------------------------------------------------------------ schema nodes for gadgets


def _json(value: Any) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _seq(kind: str, *items: dict) -> dict:
    return {"__class__": kind, "__module__": "builtins", "__loader__": f"{kind.title()}Node",
            "content": list(items)}


def _dict(**values: dict) -> dict:
    key_type = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": values, "key_types": _seq("list", *[key_type] * len(values))}


def _call(target: str, *args: dict) -> dict:
    """A node skops loads by calling ``target(*args)`` (its ConstructorFromReduceNode)."""
    module, name = target.rsplit(".", 1)
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": _seq("tuple", *args)}


def _zip(schema: dict, members: dict[str, bytes] | None = None, protocol: int = 2) -> bytes:
    schema = {**schema, "protocol": protocol, "_skops_version": "0.16.0"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _members(data: bytes) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "schema.json"}
        return json.loads(archive.read("schema.json")), members


def _nodes(tree: Any):
    if isinstance(tree, dict):
        if "__loader__" in tree:
            yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _in_real_model(model: bytes, gadget: dict, where: str = "sklearn.cluster._kmeans.KMeans") -> bytes:
    """A real model's bytes with one value inside its ``where`` estimator replaced by
    ``gadget`` (built while the pipeline is built, as that estimator's attribute)."""
    schema, members = _members(model)
    owner = next(n for n in _nodes(schema) if f"{n['__module__']}.{n['__class__']}" == where)
    attrs = owner["content"]["content"]
    key = next(k for k, v in attrs.items() if v["__loader__"] == "JsonNode")
    attrs[key] = gadget
    return _zip(schema, members)


def _swap_function(model: bytes, old: str, new: str) -> bytes:
    schema, members = _members(model)
    for node in _nodes(schema):
        if node["__loader__"] == "FunctionNode" and f"{node['__module__']}.{node['__class__']}" == old:
            node["__module__"], node["__class__"] = new.rsplit(".", 1)
    return _zip(schema, members)


_WHOLE_MODELS: dict[Path, bytes] = {}


@pytest.fixture(autouse=True, scope="module")
def _whole_model_made(numeric_run) -> None:
    # made before a test's nothing_built forbids skops to build anything
    _kmeans_model(numeric_run[0])


def _kmeans_model(run: segmint.Run) -> bytes:
    """A whole model (preparation + k-means), as run format 2 saved it in one file: the run
    (format 3) saves the preparation and the cluster step apart, and loads them as this."""
    if run.path not in _WHOLE_MODELS:
        model = run.solution("kmeans_k2_standard").model
        assert list(model.named_steps) == ["prepare", "cluster"]
        _WHOLE_MODELS[run.path] = sio.dumps(model)
    return _WHOLE_MODELS[run.path]


def _gadgets(run: segmint.Run, marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, the type the refusal names). Each would write ``marker``."""
    code = f"open({str(marker)!r}, 'w').close()"
    runstring = _call("numpy.testing._private.utils.runstring", _json(code), _dict())
    real = _kmeans_model(run)
    return {
        # passes a "numpy." prefix test: the tester's report
        "numpy runstring (exec)": (_zip(runstring), "numpy.testing._private.utils.runstring"),
        "numpy runstring inside a real model": (_in_real_model(real, runstring),
                                                "numpy.testing._private.utils.runstring"),
        "builtins.exec": (_zip(_call("builtins.exec", _json(code))), "builtins.exec"),
        "os.system": (_zip(_call("os.system", _json(f"touch '{marker}'"))), "os.system"),
        "subprocess.Popen": (_zip(_call("subprocess.Popen", _seq("list", _json("touch"),
                                                                   _json(str(marker))))),
                             "subprocess.Popen"),
        "numpy.save writes a file": (_in_real_model(real, _call("numpy.save", _json(str(marker)),
                                                                _seq("list", _json(1))),
                                                    where="sklearn.preprocessing._data.StandardScaler"),
                                     "numpy.save"),
        "builtins.open": (_zip(_call("builtins.open", _json(str(marker)), _json("w"))),
                          "builtins.open"),
    }


def _wait_for(path: Path, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, text
    return text


# ------------------------------------------------------------------ (a) gadgets


@pytest.mark.parametrize("name", ["numpy runstring (exec)", "numpy runstring inside a real model",
                                  "builtins.exec", "os.system", "subprocess.Popen",
                                  "numpy.save writes a file", "builtins.open"])
def test_a_gadget_is_refused_before_any_code_runs(numeric_run, tmp_path, nothing_built, name):
    marker = tmp_path / "pwned.npy"
    data, named = _gadgets(numeric_run[0], marker)[name]
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    text = _one_line(caught.value)
    assert str(path) in text and "types segmint does not load" in text and named in text
    assert not _wait_for(marker, 0.5) and not nothing_built


@pytest.mark.parametrize("name", ["numpy runstring (exec)", "numpy runstring inside a real model",
                                  "builtins.exec", "os.system", "subprocess.Popen",
                                  "numpy.save writes a file", "builtins.open"])
def test_each_gadget_does_run_code_when_skops_trusts_what_it_lists(numeric_run, tmp_path, name):
    # the refusals above are not vacuous: trusting what skops lists (as segmint did) runs them
    marker = tmp_path / "pwned.npy"
    data, _ = _gadgets(numeric_run[0], marker)[name]
    try:
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except Exception:  # the gadget's side effect comes first; what it returns need not load
        pass
    assert _wait_for(marker)


@pytest.mark.parametrize("function", ["builtins.eval", "numpy.log1p", "os.system"])
def test_a_log_scaling_with_another_function_is_refused(numeric_run, tmp_path, nothing_built, function):
    # numpy.log1p is a ufunc skops trusts by default; segmint trusts only its two functions
    real = (numeric_run[0].path / "preparations" / "log.skops").read_bytes()
    path = tmp_path / "model.skops"
    path.write_bytes(_swap_function(real, "segmint.prepare.scaling.signed_log1p", function))
    with pytest.raises(ModelError, match=rf"does not load: \['{function}'\]"):
        load_model(path)
    assert not nothing_built


@pytest.mark.parametrize("schema, named", [
    # an estimator skops trusts by default, but no segmint model holds
    ({"__class__": "LinearRegression", "__module__": "sklearn.linear_model._base",
      "__loader__": "ObjectNode", "content": _dict()}, "sklearn.linear_model._base.LinearRegression"),
    # an allowed type through a loader that calls it
    (_call("sklearn.pipeline.Pipeline", _json([])), "sklearn.pipeline.Pipeline (as "
                                                    "ConstructorFromReduceNode)"),
    # a bound method of an allowed type
    ({"__class__": "ndarray", "__module__": "numpy", "__loader__": "MethodNode",
      "content": {"func": "tofile", "obj": _dict()}}, "numpy.ndarray.tofile"),
])
def test_types_and_loaders_beyond_the_allow_list_are_refused(tmp_path, nothing_built, schema, named):
    path = tmp_path / "model.skops"
    path.write_bytes(_zip(schema))
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert named in _one_line(caught.value) and not nothing_built


# ------------------------------------------------------------------ (b) not a model file


def _pickle_that_would_write(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")
    return pickle.dumps(Payload())


@pytest.mark.parametrize("damage, says", [
    ("pickle", "is not a skops model file (a pickle?)"),
    ("random", "is not a skops model file"),
    ("empty", "model file is empty"),
    ("truncated", "is not a skops model file (not a zip archive"),
    ("no schema", "the zip holds no schema.json"),
    ("schema not json", "model file is damaged"),
    ("member crc", "fails its checksum"),
    ("old protocol", "skops protocol 0"),
    ("deep nesting", "model file is damaged"),
    ("not a pipeline", "not a scikit-learn Pipeline"),
    ("missing", "model file not found"),
    ("folder", "is a folder"),
])
def test_a_file_that_is_not_a_segmint_model_is_one_model_error(numeric_run, tmp_path, nothing_built,
                                                               damage, says):
    marker = tmp_path / "pwned"
    real = _kmeans_model(numeric_run[0])
    schema, members = _members(real)
    path = tmp_path / "model.skops"
    if damage == "pickle":
        data = _pickle_that_would_write(marker)
    elif damage == "random":
        data = np.random.default_rng(1).bytes(4096)
    elif damage == "empty":
        data = b""
    elif damage == "truncated":
        data = real[: len(real) // 2]
    elif damage == "no schema":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, member in members.items():
                archive.writestr(name, member)
        data = buffer.getvalue()
    elif damage == "schema not json":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("schema.json", b"{not json")
        data = buffer.getvalue()
    elif damage == "member crc":  # one byte of an array changed inside the zip
        name = next(iter(members))
        offset = real.index(members[name]) + len(members[name]) - 1
        data = real[:offset] + bytes([real[offset] ^ 0xFF]) + real[offset + 1:]
    elif damage == "old protocol":
        data = _zip(schema, members, protocol=0)
    elif damage == "deep nesting":  # deeper than Python's recursion limit
        deep = "[" * 100_000 + "]" * 100_000
        data = _zip({**schema, "content": "@@"}, members).replace(b'"@@"', deep.encode())
    elif damage == "not a pipeline":
        data = _zip(next(n for n in _nodes(schema) if n["__class__"] == "KMeans"), members)
    if damage == "folder":
        path.mkdir()
    elif damage != "missing":
        path.write_bytes(data)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    text = _one_line(caught.value)
    assert says in text and str(path) in text
    assert not marker.exists() and not nothing_built


# ------------------------------------------------------------------ (c) checksums


def test_a_model_whose_bytes_changed_since_the_run_is_refused(copied_run, nothing_built):
    run = segmint.open_run(copied_run)
    solutions = copied_run / "solutions"
    # a valid model, but not the one the run saved for this solution
    shutil.copyfile(solutions / "kmeans_k3_standard" / "model.skops",
                    solutions / "kmeans_k2_standard" / "model.skops")
    with pytest.raises(ModelError) as caught:
        _ = run.solution("kmeans_k2_standard").model
    text = _one_line(caught.value)
    assert "changed since the run saved it" in text and "kmeans_k2_standard" in text
    assert not nothing_built


def test_load_model_compares_the_checksum_it_is_given(numeric_run):
    path = numeric_run[0].path / "solutions" / "kmeans_k2_standard" / "model.skops"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(load_model(path, sha256=digest.upper()), Pipeline)
    with pytest.raises(ModelError, match="changed since"):
        load_model(path, sha256="0" * 64)


def test_format1_models_have_no_checksum_and_still_load():
    for folder in sorted((FORMAT1 / "solutions").iterdir()):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert "model_sha256" not in metrics
        model = load_model(folder / "model.skops", sha256=metrics.get("model_sha256"))
        assert list(model.named_steps) == ["scale", "cluster"], folder.name


# ------------------------------------------------------------------ (d) every real model


def test_every_model_of_a_sweep_loads_and_predicts(sweep_run):
    run, clients = sweep_run
    names = run.solutions()
    # 9 numeric settings in GRIDS per scaling, and k-prototypes once (it scales inside)
    assert len(names) == len(SCALINGS) * 9 + 1
    for name in names:
        sol = run.solution(name)
        path = sol.folder / "model.skops"
        assert sol.metrics["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert isinstance(sol.model, Pipeline) and list(sol.model.named_steps) == ["prepare",
                                                                                   "cluster"]
        scored = run.predict(clients, solution=name)
        assert list(scored["customer"]) == list(clients["client_ref"]), name
        if sol.algorithm in ("kmeans", "minibatch_kmeans", "gaussian_mixture"):
            # the model's own predict: its training customers keep their segments
            labels = sol.labels()["segment"].to_numpy()
            assert (scored["segment"].to_numpy() == labels).all(), name


def _outlier_detectors(folder: Path) -> list[Path]:
    """A run's saved outlier detector, of each method (prepare.outliers), as the pipeline saves it."""
    from segmint.prepare.outliers import find_outliers
    from segmint.spec import OutlierSpec

    X = np.random.default_rng(0).normal(size=(200, 3))
    paths = []
    for method in ("ecod", "isolation_forest"):
        scale = StandardScaler().fit(X)
        found = find_outliers(scale.transform(X), OutlierSpec(method=method), seed=0)
        path = folder / f"{method}.skops"
        save_model(Pipeline([("prepare", scale), ("detect", found.detector)]), path)
        paths.append(path)
    return paths


def _text_embedding_model(folder: Path) -> Path:
    """A solution's model on the text representation (row text -> MiniLM vectors -> k-means),
    as the sweep saves it: fitted on vectors given directly, so no embedding runs here."""
    from segmint.prepare.embed import TextEmbedding

    clients = pd.DataFrame({"age": [30.0, 40.0], "job": ["admin.", "services"]})
    embedding = TextEmbedding(columns=["age", "job"]).fit(clients)
    vectors = np.random.default_rng(0).normal(size=(20, embedding.dim_))
    path = folder / "text.skops"
    save_model(Pipeline([("prepare", embedding),
                         ("cluster", KMeans(n_clusters=2, n_init=1, random_state=0).fit(vectors))]),
               path)
    return path


def _sql_model(folder: Path) -> list[Path]:
    """A model made with CREATE MODEL in segmint.sql: BigQuery ML's preprocessing + k-means
    (the preparation's file and the cluster step's)."""
    import segmint.sql

    with segmint.sql.connect(folder / "sql.duckdb") as con:
        con.execute("CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=2) AS "
                    "SELECT * FROM UNNEST([STRUCT(1.0 AS x, 'a' AS c, TRUE AS b), "
                    "(2.0, 'b', FALSE), (9.0, 'a', TRUE), (10.0, NULL, FALSE)])")
        path = con.model("ds.m").run.path
        return [next(path.glob("solutions/*/model.skops")), *path.glob("preparations/*.skops")]


def test_the_allow_list_is_what_real_models_hold_and_no_more(sweep_run, tmp_path):
    # every (loader, type) of every model written: the sweep's and the format-1 fixture's
    run, _ = sweep_run
    seen: dict[str, set[str]] = {}
    files = [*run.path.glob("solutions/*/model.skops"), *run.path.glob("preparations/*.skops"),
             *FORMAT1.glob("solutions/*/model.skops"),
             *_outlier_detectors(tmp_path), _text_embedding_model(tmp_path), *_sql_model(tmp_path)]
    for path in files:
        for node in _nodes(_members(path.read_bytes())[0]):
            seen.setdefault(node["__loader__"], set()).add(f"{node['__module__']}.{node['__class__']}")
    allowed = _allowed_nodes()  # ALLOWED_NODES and the registered algorithms' estimators
    for loader, kinds in seen.items():
        assert kinds <= allowed.get(loader, frozenset()), loader
    if run.path.name.startswith("mixed"):  # the mixed table uses every allowed entry
        assert {k: frozenset(v) for k, v in seen.items()} == allowed


def test_segmint_functions_are_the_only_functions_and_no_numpy_function_is_allowed():
    assert ALLOWED_NODES["FunctionNode"] == {"segmint.prepare.scaling.signed_log1p",
                                             "segmint.prepare.scaling.signed_expm1"}
    names = set().union(*ALLOWED_NODES.values())
    assert not {n for n in names if n.startswith("numpy.")} - {"numpy.ndarray", "numpy.float64",
                                                               "numpy.dtype"}
    assert not set(ALLOWED_NODES) & {"ConstructorFromReduceNode", "MethodNode", "PartialNode",
                                     "OperatorFuncNode", "ReduceNode"}


def test_save_model_writes_atomically_and_returns_the_sha256(tmp_path):
    X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    pipe = Pipeline([("scale", StandardScaler()),
                     ("cluster", KMeans(n_clusters=2, n_init=1, random_state=0))]).fit(X)
    path = tmp_path / "model.skops"
    path.write_bytes(b"an older model")
    digest = save_model(pipe, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["model.skops"]  # no temporary left
    assert (load_model(path, sha256=digest).predict(X) == pipe.predict(X)).all()


@pytest.mark.parametrize("cluster, says", [(Birch(n_clusters=2), "skops cannot save"),
                                           (LinearRegression(), "types segmint does not load")])
def test_a_model_segmint_could_not_load_back_is_not_written(tmp_path, cluster, says):
    X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    pipe = Pipeline([("scale", StandardScaler()), ("cluster", cluster)])
    pipe.fit(X, None if isinstance(cluster, Birch) else X[:, 0])
    with pytest.raises(ModelError, match=says):
        save_model(pipe, tmp_path / "model.skops")
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ (e) the CLI


@pytest.mark.parametrize("metrics_too", [False, True])
def test_cli_predict_with_a_gadget_model_exits_1_with_one_line(numeric_run, copied_run, tmp_path,
                                                               metrics_too):
    run, clients = numeric_run
    marker = tmp_path / "pwned"
    data, named = _gadgets(run, marker)["numpy runstring inside a real model"]
    folder = copied_run / "solutions" / "kmeans_k2_standard"
    (folder / "model.skops").write_bytes(data)
    if metrics_too:  # someone who can rewrite metrics.json too: the type check still refuses
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["model_sha256"] = hashlib.sha256(data).hexdigest()
        (folder / "metrics.json").write_text(json.dumps(metrics))
    clients.head(10).to_csv(tmp_path / "input.csv", index=False)
    result = subprocess.run([sys.executable, "-m", "segmint.cli", "predict", str(copied_run),
                             "kmeans_k2_standard", str(tmp_path / "input.csv")],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "400"})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (named if metrics_too else "changed since the run saved it") in result.stderr
    assert not _wait_for(marker, 0.5) and result.stdout == ""


def test_birch_solutions_are_saved_safely_and_score_by_nearest_centre(tmp_path):
    import numpy as np
    import pandas as pd

    import segmint

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"spend": np.r_[rng.normal(10, 1, 80), rng.normal(40, 2, 80)],
                          "visits": np.r_[rng.normal(2, 0.3, 80), rng.normal(9, 0.5, 80)]},
                         index=pd.Index([f"c{i}" for i in range(160)], name="customer"))
    spec = {"recipe": {"kind": "attributes"}, "select": {"stability_resamples": 2},
            "sweep": {"algorithms": [{"name": "birch", "grid": {"n_clusters": [2]}}]}}
    run = segmint.run(frame, spec, output=tmp_path)
    sol = run.solution("birch_k2")
    assert sol.model.named_steps["cluster"] == "passthrough"
    scored = sol.predict(frame.reset_index())
    labels = sol.labels()["segment"].to_numpy()
    # two well separated groups: the nearest centre gives every customer its BIRCH segment
    assert (scored["segment"].to_numpy() == labels).all()
    assert sorted(np.bincount(labels)) == [80, 80]
