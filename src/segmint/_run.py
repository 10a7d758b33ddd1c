"""A run: what one spec produced, written to one folder, and the object a user asks things of."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import platform
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from segmint.cluster import leaderboard as _leaderboard
from segmint.cluster import recommend, run_sweep
from segmint.cluster.sweep import Solution
from segmint.errors import InputError, ModelError
from segmint.explain import centroids_long, profile
from segmint.explain.profile import NOISE_NAME
from segmint.io import atomic_dir, read_frame, read_source, write_parquet_atomic, write_text_atomic
from segmint.recipes import customer_table, required_roles
from segmint.spec import RunSpec, SourceSpec, load_spec

__all__ = ["Run", "SavedSolution", "run", "open_run", "demo_spec"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, what)


def _versions() -> dict[str, str]:
    import duckdb
    import sklearn

    from segmint import __version__
    return {"segmint": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
            "duckdb": duckdb.__version__}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def demo_spec(output: str | Path = "runs") -> RunSpec:
    """The bundled demo: Insiders features and Intel's grid on UCI Online Retail."""
    data = resources.files("segmint") / "data"
    spec = load_spec(yaml.safe_load((data / "demo.yaml").read_text(encoding="utf-8")))
    spec.source.path = str(Path(str(data / "online_retail.parquet")))
    spec.output = str(output)
    return spec


def build_customers(spec: RunSpec, source: SourceSpec | None = None) -> pd.DataFrame:
    """Read the spec's source (or ``source``) and compute the customer table."""
    source = source or spec.source
    recipe = spec.recipe
    if recipe.kind == "table":
        raw = read_source(source)
        id_col = recipe.id_column or raw.columns[0]
        if id_col not in raw.columns:
            raise InputError(f"id column {id_col!r} not found", file=source.path, column=id_col)
        cols = recipe.feature_columns or [c for c in raw.columns
                                           if c != id_col and pd.api.types.is_numeric_dtype(raw[c])]
        table = raw.set_index(raw[id_col].astype("string").rename("customer"))[cols].astype("float64")
        return table
    required, optional = required_roles(recipe.features, recipe.cleaning)
    tx = read_source(source, required=required, optional=optional)
    table = customer_table(tx, recipe.features, recipe.cleaning)
    table.attrs["source"] = tx.attrs.get("source", {})
    table.attrs["lines"] = len(tx)
    return table


def run(spec: RunSpec | str | Path | dict, *, output: str | Path | None = None,
        progress: Progress | None = None) -> "Run":
    """Run a spec end to end and write its run folder; return the :class:`Run`.

    Parameters
    ----------
    spec : RunSpec, path to a YAML file, or dict
    output : folder that receives ``<run-id>/``; default the spec's ``output``
    progress : optional ``progress(stage, done, total, what)`` callback

    Examples
    --------
    >>> run = segmint.run("spec.yaml")            # doctest: +SKIP
    >>> run.leaderboard().head()                   # doctest: +SKIP
    >>> run.solution("kmeans_k5").profile()        # doctest: +SKIP
    """
    if not isinstance(spec, RunSpec):
        spec = load_spec(spec)
    if output is not None:
        spec = spec.model_copy(update={"output": str(output)})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    customers = build_customers(spec)
    timings["load_and_recipe"] = time.perf_counter() - t0

    def stage(name):
        return None if progress is None else (lambda d, t, w: progress(name, d, t, w))

    t0 = time.perf_counter()
    solutions = run_sweep(customers, spec.sweep, seed=spec.seed, progress=stage("sweep"))
    timings["sweep"] = time.perf_counter() - t0
    board = _leaderboard(solutions)
    t0 = time.perf_counter()
    X_raw = customers.to_numpy(dtype="float64")
    rec = recommend(solutions, board, X_raw, spec.select, seed=spec.seed, progress=stage("stability"))
    timings["select"] = time.perf_counter() - t0
    board = rec.board

    created = _dt.datetime.now(_dt.timezone.utc)
    root = Path(spec.output)
    root.mkdir(parents=True, exist_ok=True)
    run_id = f"{spec.name}-{created:%Y%m%d-%H%M%S}"
    final, n = root / run_id, 1
    while final.exists():
        n += 1
        final = root / f"{run_id}-{n}"
    run_id = final.name

    t0 = time.perf_counter()
    revenue = spec.profile.revenue
    with atomic_dir(final) as tmp:
        tmp = Path(tmp)
        write_text_atomic(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
                          tmp / "spec.yaml")
        write_parquet_atomic(customers.reset_index(), tmp / "customers.parquet")
        chosen = next((s for s in solutions if s.name == rec.solution), None)
        if chosen is not None:
            prepared = pd.DataFrame(chosen.model.named_steps["scale"].transform(X_raw),
                                    columns=customers.columns, index=customers.index)
            write_parquet_atomic(prepared.reset_index(), tmp / "prepared.parquet")
        board.to_csv(tmp / "leaderboard.csv", index=False)
        rec.stability.to_csv(tmp / "stability.csv", index=False)
        for i, sol in enumerate(solutions):
            _save_solution(sol, customers, tmp / "solutions" / sol.name, revenue)
            if progress:
                progress("save", i + 1, len(solutions), sol.name)
        timings["write"] = time.perf_counter() - t0
        manifest = {
            "run_id": run_id,
            "name": spec.name,
            "created": created.isoformat(timespec="seconds"),
            "versions": _versions(),
            "input": customers.attrs.get("source", {}),
            "lines": customers.attrs.get("lines"),
            "customers": len(customers),
            "features": list(customers.columns),
            "solutions": len(solutions),
            "recommended": rec.solution,
            "reasons": rec.reasons,
            "knee": rec.knee,
            "prepared_scaling": chosen.scaling if chosen else None,
            "timings_seconds": timings,
        }
        write_text_atomic(json.dumps(_jsonable(manifest), indent=2), tmp / "manifest.json")
        from segmint.report import render_report
        prof = None if chosen is None else pd.read_parquet(tmp / "solutions" / chosen.name / "profile.parquet")
        knee_k = rec.chosen_knee
        # the reasons have their own box in the report; the header shows the rest of the manifest
        header = {k: v for k, v in manifest.items() if k != "reasons"}
        html = render_report(title=f"segmint run {run_id}", manifest={**header, "knee": {"k": knee_k}},
                             leaderboard=board, profile=prof, recommended=rec.solution,
                             reasons=rec.reasons, stability=rec.stability)
        write_text_atomic(html, tmp / "report.html")
    return Run(final)


def _save_solution(sol: Solution, customers: pd.DataFrame, folder: Path, revenue: str | None) -> None:
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    sio.dump(sol.model, folder / "model.skops")
    pd.DataFrame({"customer": customers.index, "segment": sol.labels}).to_parquet(
        folder / "labels.parquet", index=False)
    profile(customers, sol.labels, revenue=revenue).to_parquet(folder / "profile.parquet", index=False)
    centroids_long(customers, sol.labels).to_parquet(folder / "centroids.parquet", index=False)
    centers = pd.DataFrame(sol.centers, columns=list(customers.columns))
    centers.insert(0, "segment", sol.center_ids.astype(int))
    centers.to_parquet(folder / "centers.parquet", index=False)
    meta = {"name": sol.name, "algorithm": sol.algorithm, "scaling": sol.scaling,
            "params": sol.params, "features": list(customers.columns),
            "fit_seconds": sol.fit_seconds, **sol.metrics}
    (folder / "metrics.json").write_text(json.dumps(_jsonable(meta), indent=2), encoding="utf-8")


def _load_model(path: Path):
    import skops.io as sio

    if not path.is_file():
        raise ModelError("model file not found", file=str(path))
    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "segmint.", "scipy."))]
    if foreign:
        raise ModelError(f"model holds types segmint does not load: {foreign}", file=str(path))
    return sio.load(path, trusted=untrusted)


class SavedSolution:
    """One solution of a run, as saved in ``solutions/<name>/``."""

    def __init__(self, folder: Path, run: "Run") -> None:
        self.folder = folder
        self.run = run
        self.metrics: dict[str, Any] = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        self.name: str = self.metrics["name"]
        self._model = None

    def __repr__(self) -> str:
        return f"SavedSolution({self.name!r}, n_clusters={self.metrics['n_clusters']})"

    @property
    def model(self):
        """The fitted scikit-learn pipeline (scaler + clusterer), loaded safely with skops."""
        if self._model is None:
            self._model = _load_model(self.folder / "model.skops")
        return self._model

    def labels(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "labels.parquet")

    def profile(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "profile.parquet")

    def centroids(self) -> pd.DataFrame:
        """ML.CENTROIDS-like long table: segment, feature, value (feature units)."""
        return pd.read_parquet(self.folder / "centroids.parquet")

    def predict(self, data: pd.DataFrame | str | Path) -> pd.DataFrame:
        """Assign customers to this solution's segments, with distances to every centroid.

        ``data`` is either a customer table (the run's feature columns, with a ``customer``
        column or index) or raw transactions / a file of them, which go through the run's
        reading and recipe first. Returns customer, segment, name, distance (to its own
        centroid) and nearest_centroids_distance (every centroid, nearest first), as
        BigQuery ML's ML.PREDICT does.
        """
        features = self.metrics["features"]
        table = self.run._customer_rows(data, features)
        X = table.to_numpy(dtype="float64")
        pipe = self.model
        Z = pipe.named_steps["scale"].transform(X)
        centers = pd.read_parquet(self.folder / "centers.parquet")
        ids = centers["segment"].to_numpy()
        C = centers[features].to_numpy(dtype="float64")
        dist = np.sqrt(((Z[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)) if len(C) else \
            np.empty((len(Z), 0))
        est = pipe.named_steps["cluster"]
        algo = self.metrics["algorithm"]
        if algo == "dbscan":
            segment = _dbscan_assign(est, Z)
        elif hasattr(est, "predict"):
            segment = est.predict(Z)
        else:  # agglomerative, hdbscan: nearest centroid
            segment = ids[dist.argmin(axis=1)] if len(C) else np.full(len(Z), -1)
        segment = np.asarray(segment, dtype=np.int64)
        prof = self.profile()
        names = dict(zip(prof["segment"], prof["name"], strict=True))
        order = np.argsort(dist, axis=1, kind="stable")
        own = np.full(len(Z), np.nan)
        for j, s in enumerate(ids):
            own[segment == s] = dist[segment == s, j]
        nearest = [[{"centroid_id": int(ids[j]), "distance": float(dist[i, j])} for j in order[i]]
                   for i in range(len(Z))]
        return pd.DataFrame({"customer": table.index.astype("string"), "segment": segment,
                             "name": [names.get(int(s), NOISE_NAME) for s in segment],
                             "distance": own, "nearest_centroids_distance": nearest})


def _dbscan_assign(est, Z: np.ndarray) -> np.ndarray:
    """New points join the cluster of their nearest core sample within eps, else noise."""
    core = est.components_
    if len(core) == 0:
        return np.full(len(Z), -1)
    from sklearn.neighbors import NearestNeighbors

    core_labels = est.labels_[est.core_sample_indices_]
    d, j = NearestNeighbors(n_neighbors=1).fit(core).kneighbors(Z)
    return np.where(d[:, 0] <= est.eps, core_labels[j[:, 0]], -1)


class Run:
    """What a spec produced: the run folder, and answers about it.

    Examples
    --------
    >>> run = segmint.open_run("runs/online-retail-insiders-20261123-120000")  # doctest: +SKIP
    >>> run.solution().profile()  # the recommended solution's profile         # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise ModelError("not a segmint run folder (no manifest.json)", file=str(self.path))
        self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        self.spec = load_spec(yaml.safe_load((self.path / "spec.yaml").read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, recommended={self.recommended!r})"

    @property
    def recommended(self) -> str | None:
        return self.manifest.get("recommended")

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def leaderboard(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "leaderboard.csv")

    def stability(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "stability.csv")

    def customers(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "customers.parquet").set_index("customer")

    def solutions(self) -> list[str]:
        return sorted(p.name for p in (self.path / "solutions").iterdir() if p.is_dir())

    def solution(self, name: str | None = None) -> SavedSolution:
        """A saved solution by name; the recommended one by default."""
        name = name or self.recommended
        if name is None:
            raise ModelError("this run recommended no solution; name one", file=str(self.path))
        folder = self.path / "solutions" / name
        if not folder.is_dir():
            raise ModelError(f"no solution {name!r}; this run has {len(self.solutions())}, e.g. "
                             f"{self.solutions()[:5]}", file=str(self.path))
        return SavedSolution(folder, self)

    def predict(self, data: pd.DataFrame | str | Path, solution: str | None = None) -> pd.DataFrame:
        """Score customers with a solution (the recommended one by default)."""
        return self.solution(solution).predict(data)

    def _customer_rows(self, data: pd.DataFrame | str | Path, features: list[str]) -> pd.DataFrame:
        if isinstance(data, (str, Path)):
            source = self.spec.source.model_copy(update={"path": str(data), "url": None,
                                                         "duckdb": None, "format": "auto"})
            table = build_customers(self.spec, source)
        else:
            table = data
            if "customer" in table.columns and set(features) <= set(table.columns):
                table = table.set_index("customer")
            elif not set(features) <= set(table.columns):
                # raw transactions in memory: same role mapping, types and recipe as the run
                required, optional = required_roles(self.spec.recipe.features, self.spec.recipe.cleaning)
                tx = read_frame(table, self.spec.source, required=required, optional=optional)
                table = customer_table(tx, self.spec.recipe.features, self.spec.recipe.cleaning)
        # a weekday or month never seen in new data is a zero count, not a missing feature
        missing = [f for f in features if f not in table.columns]
        if missing and self.spec.recipe.features.startswith("intel"):
            table = table.reindex(columns=features, fill_value=0.0)
        elif missing:
            raise InputError(f"customer table lacks features {missing}", column=missing[0])
        return table[features]


def open_run(path: str | Path) -> Run:
    """Open a run folder written earlier."""
    return Run(path)
