"""The model catalog beside a database: every model is a segmint run folder.

``<database>.models/<dataset>/<model>/`` holds what ``segmint run`` writes (manifest, spec,
customers = the training rows, leaderboard = the trials, one solution folder per trial with its
skops model, profile, centroids and report) plus ``bqml.json``: what BigQuery ML keeps about a
model (options, column types, TRANSFORM, the training query, per-iteration losses, feature
statistics). So ``segmint.open_run`` profiles, reports and scores a model made in SQL.

A model made by ``segmint run`` joins the catalog with
``CREATE MODEL ds.m OPTIONS(model_type='segmint', model_path='runs/<run>' [, solution='...'])``
(BigQuery's form for imported models): the catalog keeps a link (``<model>.link.json``) to
the run folder, which is not copied.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segmint.errors import ModelError, SpecError
from segmint.io import write_text_atomic
from segmint.runs import _layout as L

BQML = "bqml.json"  # inside a model's run folder
LINK = ".link.json"  # <catalog>/<dataset>/<model>.link.json for a model made by `segmint run`
_STAGING = ".staging"
SILHOUETTE_SAMPLE = 5_000

# BigQuery type -> segmint's prepared type (the profile and scoring read these)
_SEGMINT_TYPE = {"STRING": "categorical", "BOOL": "binary"}


@dataclass
class CatalogModel:
    """A model as the SQL session uses it."""

    dataset: str
    name: str
    kind: str  # "kmeans" (made in SQL) or "segmint" (a solution of a segmint run)
    run: Any  # segmint.runs.Run
    solution: Any  # segmint.runs.SavedSolution (the optimal trial for a tuned model)
    bqml: Any = None  # segmint.sql.kmeans.KMeansModel, for kind "kmeans"
    info: dict[str, Any] = field(default_factory=dict)  # bqml.json

    @property
    def transform(self) -> list[str] | None:
        return self.info.get("transform")

    @property
    def full_name(self) -> str:
        return f"{self.dataset}.{self.name}"


def _check_name(part: str, what: str) -> str:
    if not part or part.startswith(".") or any(c in part for c in "/\\\0") or part in ("..",):
        raise SpecError(f"{what} {part!r} is not a usable name")
    return part


class ModelCatalog:
    """Models by ``dataset.name`` under one folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, dataset: str, name: str) -> Path:
        return self.root / _check_name(dataset, "dataset") / _check_name(name, "model name")

    def _link(self, dataset: str, name: str) -> Path:
        return self.root / _check_name(dataset, "dataset") / (_check_name(name, "model name") + LINK)

    def exists(self, dataset: str, name: str) -> bool:
        return (self.folder(dataset, name) / L.MANIFEST).is_file() or self._link(dataset, name).is_file()

    # ------------------------------------------------------------------ reading

    def load(self, dataset: str, name: str) -> CatalogModel:
        """The model ``dataset.name``, or a ModelError saying which models there are."""
        from segmint.runs import open_run

        link = self._link(dataset, name)
        if link.is_file():
            said = json.loads(link.read_text(encoding="utf-8"))
            run = open_run(said["run"])
            return CatalogModel(dataset, name, "segmint", run, run.solution(said.get("solution")),
                                info=said)
        folder = self.folder(dataset, name)
        if not (folder / L.MANIFEST).is_file():
            known = ", ".join(f"{d}.{m}" for d, m in self.names()[:10]) or "none yet"
            raise ModelError(f"Not found: Model {dataset}.{name} (models in this catalog: {known})",
                             file=str(self.root))
        run = open_run(folder)
        info = json.loads((folder / BQML).read_text(encoding="utf-8"))
        from segmint.sql.kmeans import from_state

        pipelines = {t["pipeline"]: run.solution(t["solution"]).model for t in info["solutions"]}
        model = from_state(pipelines, info["state"])
        return CatalogModel(dataset, name, "kmeans", run, run.solution(), bqml=model, info=info)

    def names(self) -> list[tuple[str, str]]:
        if not self.root.is_dir():
            return []
        found = []
        for ds in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for entry in sorted(ds.iterdir()):
                if entry.is_dir() and (entry / L.MANIFEST).is_file():
                    found.append((ds.name, entry.name))
                elif entry.name.endswith(LINK):
                    found.append((ds.name, entry.name[: -len(LINK)]))
        return found

    def listing(self) -> pd.DataFrame:
        """One row per model: dataset, model_name, model_type, creation_time, num_clusters, path."""
        rows = []
        for ds, name in self.names():
            link = self._link(ds, name)
            if link.is_file():
                said = json.loads(link.read_text(encoding="utf-8"))
                rows.append({"dataset": ds, "model_name": name, "model_type": "SEGMINT",
                             "creation_time": said.get("created"), "path": said["run"]})
                continue
            folder = self.folder(ds, name)
            manifest = json.loads((folder / L.MANIFEST).read_text(encoding="utf-8"))
            rows.append({"dataset": ds, "model_name": name, "model_type": "KMEANS",
                         "creation_time": manifest.get("created"), "path": str(folder)})
        return pd.DataFrame(rows, columns=["dataset", "model_name", "model_type", "creation_time",
                                           "path"])

    # ------------------------------------------------------------------ writing

    def drop(self, dataset: str, name: str, *, if_exists: bool = False) -> bool:
        link, folder = self._link(dataset, name), self.folder(dataset, name)
        if link.is_file():
            link.unlink()
            return True
        if (folder / L.MANIFEST).is_file():
            shutil.rmtree(folder)
            return True
        if if_exists:
            return False
        raise ModelError(f"Not found: Model {dataset}.{name}", file=str(self.root))

    def attach(self, dataset: str, name: str, run_path: str | Path, solution: str | None, *,
               replace: bool) -> None:
        """Make a solution of a ``segmint run`` folder the model ``dataset.name``."""
        from segmint.runs import open_run

        run = open_run(run_path)
        chosen = run.solution(solution)  # checks the name
        self._refuse_existing(dataset, name, replace)
        self.drop(dataset, name, if_exists=True)
        said = {"run": str(Path(run_path).resolve()), "solution": chosen.name,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        write_text_atomic(json.dumps(said, indent=2), self._link(dataset, name))

    def _refuse_existing(self, dataset: str, name: str, replace: bool) -> None:
        if not replace and self.exists(dataset, name):
            raise ModelError(f"Already Exists: Model {dataset}.{name} (CREATE OR REPLACE MODEL "
                             f"replaces it)", file=str(self.root))

    def save_kmeans(self, dataset: str, name: str, model: Any, training: pa.Table, *,
                    query: str, transform: list[str] | None, replace: bool) -> Path:
        """Write a trained BigQuery-ML k-means model as a run folder; it appears whole, or not
        at all (an existing model of that name stays until the new one is complete)."""
        from segmint.runs._write import jsonable
        from segmint.sql.kmeans import to_state

        self._refuse_existing(dataset, name, replace)
        final = self.folder(dataset, name)
        staging = self.root / _STAGING
        staging.mkdir(parents=True, exist_ok=True)
        pipelines, state = to_state(model)
        names = _solution_names(model, pipelines)
        run = _write_model_run(f"{dataset}.{name}", model,
                               {names[key]: pipe for key, pipe in pipelines.items()}, training,
                               optimal=names[_optimal_pipeline(model, pipelines)],
                               output=Path(tempfile.mkdtemp(dir=staging)))
        info = {"model_type": "KMEANS", "query": query, "transform": transform,
                "solutions": [{"solution": names[key], "pipeline": key} for key in pipelines],
                "state": jsonable(state)}
        (run.path / BQML).write_text(json.dumps(info, indent=2), encoding="utf-8")
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():
            old = final.with_name(f".old-{final.name}-{os.getpid()}")
            os.replace(final, old)
        os.replace(run.path, final)
        shutil.rmtree(run.path.parent, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        link = self._link(dataset, name)
        if link.is_file():  # a replaced link to a segmint run
            link.unlink()
        return final


def _solution_names(model: Any, pipelines: dict[str, Any]) -> dict[str, str]:
    """Pipeline key (``trial_<id>``) -> solution name: ``kmeans_k5`` for a model of one trial,
    ``trial_3_k5`` for the trials of a tuned model."""
    out = {}
    for key, pipe in pipelines.items():
        k = int(pipe.named_steps["cluster"].n_clusters)
        out[key] = f"kmeans_k{k}" if len(pipelines) == 1 else f"{key}_k{k}"
    return out


def _optimal_pipeline(model: Any, pipelines: dict[str, Any]) -> str:
    key = f"trial_{model.optimal_trial}"
    return key if key in pipelines else next(iter(pipelines))


def _segmint_types(column_types: dict[str, str]) -> dict[str, str]:
    return {c: _SEGMINT_TYPE.get(t, "numeric") for c, t in column_types.items()}


def training_frame(training: pa.Table, features: list[str], types: dict[str, str]) -> pd.DataFrame:
    """The training rows as a segmint customer table: ids 1..n (BigQuery's training rows have
    none), numeric and binary columns float64, categorical pandas strings."""
    raw = training.select(features).to_pandas()
    out = {}
    for column in features:
        if types[column] == "categorical":
            out[column] = raw[column].astype("string").to_numpy()
        else:
            values = raw[column].astype("object").where(raw[column].notna(), np.nan)
            out[column] = pd.to_numeric(values, errors="raise").astype("float64").to_numpy()
    index = pd.Index([str(i) for i in range(1, len(raw) + 1)], name="customer", dtype="string")
    frame = pd.DataFrame(out, index=index)
    return frame.astype({c: "string" for c in features if types[c] == "categorical"})


def _write_model_run(full_name: str, model: Any, pipelines: dict[str, Any], training: pa.Table,
                     *, optimal: str, output: Path) -> Any:
    """The run folder of a k-means model trained in SQL: one solution per trial."""
    from segmint.cluster.metrics import solution_metrics
    from segmint.cluster.select import Recommendation, leaderboard
    from segmint.cluster.sweep import Solution
    from segmint.prepare import model_input
    from segmint.prepare.representation import Representation
    from segmint.recipes._table import CustomerTable
    from segmint.runs._write import write_run
    from segmint.spec import RecipeSpec, RunSpec

    column_types = dict(model.feature_types)
    features = list(column_types)
    types = _segmint_types({c: column_types[c] for c in features})
    frame = training_frame(training, features, types)
    table = CustomerTable(frame=frame, types=types, features=features,
                          notes=[f"trained in SQL: CREATE MODEL {full_name} (BigQuery ML k-means)"],
                          source={"sql_model": full_name, "rows": len(frame)}, lines=len(frame),
                          schema={})
    data = model_input(frame, types, features)
    solutions, representations = [], {}
    for sol_name, pipe in pipelines.items():
        prepare, estimator = pipe.named_steps["prepare"], pipe.named_steps["cluster"]
        X = np.asarray(prepare.transform(data), dtype="float64")
        columns = [str(c) for c in prepare.get_feature_names_out()]
        # the training rows' own assignment, whose means the centres are; with an early stop
        # (BigQuery's min_rel_progress) ML.PREDICT may later move a few of them to a nearer centre
        labels = np.asarray(estimator.labels_, dtype=np.int64)
        # the leaderboard's measures; silhouette on a seeded 5,000-row sample (BigQuery ML
        # reports none, and on 20,000 rows it would cost more than training)
        metrics = solution_metrics(X, labels, silhouette_sample=SILHOUETTE_SAMPLE, seed=0)
        k = int(estimator.n_clusters)
        representation = f"bqml_{sol_name}"
        representations[representation] = Representation(representation, prepare, X, columns,
                                                         index=frame.index)
        solutions.append(Solution(
            name=sol_name, algorithm="bqml_kmeans", representation=representation,
            params={"n_clusters": k}, labels=labels, model=pipe, metrics=metrics,
            fit_seconds=float(getattr(estimator, "fit_seconds_", 0.0)),
            center_ids=np.arange(k), centers=np.asarray(estimator.cluster_centers_), columns=columns,
            description=f"BigQuery ML k-means, {k} segments ({full_name})"))
    board = leaderboard(solutions)
    board["eligible"] = True
    board["at_knee"] = False
    board["rank"] = board["davies_bouldin"].rank(method="first").astype("Int64")
    board["recommended"] = board["solution"] == optimal
    reasons = [f"{optimal}: the model's optimal trial, lowest Davies-Bouldin index as BigQuery ML "
               f"tunes num_clusters" if len(solutions) > 1 else
               f"{optimal}: the model CREATE MODEL {full_name} trained"]
    rec = Recommendation(solution=optimal, reasons=reasons, knee={},
                         stability=pd.DataFrame(columns=["solution", "stability_ari"]), board=board)
    spec = RunSpec(name=full_name.replace("/", "_")[:100], output=str(output),
                   recipe=RecipeSpec(kind="attributes", feature_columns=features,
                                     columns={c: types[c] for c in features}))
    return write_run(spec, table, solutions, rec, representations, timings={})
