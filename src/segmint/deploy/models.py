"""Published models: a chosen solution of a run, versioned, in a folder of its own that
scoring, scheduled re-runs and the service load without the run folder.

Layout (one folder per version, written whole or not at all, never changed after)::

    <models>/<name>/v<N>/
      model.json          what the model is (below), and the sha256 of every other file
      model.skops         the fitted preparation + clusterer (one scikit-learn Pipeline)
      outliers.skops      the run's outlier detector, when it set customers apart
      centers.parquet     the centres in the prepared columns (centroid models)
      rules.json          a rule-based solution's rules (RFM), instead of a model
      profile.parquet     the segments' profile: names, sizes, shares, means, lifts
      assignments.parquet customer, segment, name: the run's customers at publishing
      spec.yaml           the run's spec (passwords masked): the recipe new data goes through

``model.json`` holds the name, version, created-at, the solution (algorithm, parameters,
description), the recipe and its fitted schema, the feature schema (each feature's type and
what scoring does with a missing value or an unseen category), the input's fingerprint, the
metrics, the segments (id, name, size, share) and the outlier rule. Model files load through
:func:`segmint.runs._models.load_model`: checksum first, then an allow-list of types, so
nothing in a model file runs. Every other file's checksum is checked when the model is
opened, so a changed byte anywhere is refused with the file named.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from segmint.errors import ModelError, SpecError
from segmint.runs import _layout as L

__all__ = ["ModelStore", "PublishedModel", "MODEL_FORMAT", "models_root"]

log = logging.getLogger(__name__)

#: the published-model folder's format; a newer one is refused with "upgrade segmint"
MODEL_FORMAT = 1

INFO = "model.json"
MODEL = "model.skops"
OUTLIERS = "outliers.skops"
CENTERS = "centers.parquet"
RULES = "rules.json"
PROFILE = "profile.parquet"
ASSIGNMENTS = "assignments.parquet"
SPEC = "spec.yaml"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")


def models_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of published models: ``root``, else ``SEGMINT_MODELS``, else ``models``."""
    return Path(root if root is not None else os.environ.get("SEGMINT_MODELS") or "models")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SpecError(f"{name!r} is not a model name: letters, digits, '_', '.', '-', starting "
                        f"with a letter or digit, at most 128 characters")
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PublishedModel:
    """One published version of a model, opened from its folder.

    Opening reads ``model.json`` and checks every file's checksum; the fitted model loads on
    first use (:attr:`scorer`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        info_path = self.path / INFO
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError("not a published model (no model.json)", file=str(self.path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model.json is unreadable or damaged ({type(exc).__name__})",
                             file=str(info_path)) from None
        if not isinstance(info, dict) or not isinstance(info.get("files"), dict) \
                or not isinstance(info.get("features"), list):
            raise ModelError("model.json lacks the model's files or features", file=str(info_path))
        if int(info.get("format", 0)) > MODEL_FORMAT:
            raise ModelError(f"published in model format {info.get('format')}; this segmint reads "
                             f"up to {MODEL_FORMAT} (upgrade segmint)", file=str(self.path))
        self.info: dict[str, Any] = info
        self._check_files()
        self._scorer: Any = None

    def __repr__(self) -> str:
        return f"PublishedModel({self.name!r}, version={self.version}, " \
               f"solution={self.info.get('solution', {}).get('name')!r})"

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def version(self) -> int:
        return int(self.info["version"])

    @property
    def features(self) -> list[str]:
        return [str(f["name"]) for f in self.info["features"]]

    @property
    def types(self) -> dict[str, str]:
        return {str(f["name"]): str(f["type"]) for f in self.info["features"]}

    def _check_files(self) -> None:
        """Every file model.json lists is there, is a plain name, and has its checksum."""
        for name, expected in self.info["files"].items():
            if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
                raise ModelError(f"model.json lists {name!r}, which is not a file of the model",
                                 file=str(self.path / INFO))
            path = self.path / name
            if not path.is_file():
                raise ModelError("a file of the published model is missing", file=str(path))
            if name == MODEL or name == OUTLIERS:
                continue  # load_model checks these on the bytes it loads
            actual = _sha256(path)
            if actual != str(expected):
                raise ModelError(f"file changed since the model was published (sha256 "
                                 f"{actual[:16]}..., recorded {str(expected)[:16]}...); "
                                 f"publish the solution again", file=str(path))

    @property
    def scorer(self) -> Any:
        """The :class:`segmint.runs._score.Scorer` of this model, loaded once."""
        if self._scorer is None:
            self._scorer = self._load_scorer()
        return self._scorer

    def _load_scorer(self) -> Any:
        from segmint.runs._models import load_model
        from segmint.runs._score import Scorer
        from segmint.spec import load_spec

        info, files = self.info, self.info["files"]
        try:
            spec = load_spec(yaml.safe_load((self.path / SPEC).read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            raise ModelError(f"the model's spec is unreadable ({type(exc).__name__})",
                             file=str(self.path / SPEC)) from None
        model = load_model(self.path / MODEL, sha256=files[MODEL]) if MODEL in files else None
        outliers = None
        if OUTLIERS in files:
            detector = load_model(self.path / OUTLIERS, sha256=files[OUTLIERS])
            outliers = (detector, float(info["outliers"]["threshold"]))
        rules = json.loads((self.path / RULES).read_text(encoding="utf-8")) \
            if RULES in files else None
        centers = pd.read_parquet(self.path / CENTERS) if CENTERS in files else None
        solution = info["solution"]
        return Scorer(spec=spec, recipe=str(info["recipe"]), schema=info.get("schema") or None,
                      features=self.features, types=self.types, algorithm=str(solution["algorithm"]),
                      names={int(s["segment"]): str(s["name"]) for s in info["segments"]},
                      model=model, prepared_columns=list(info.get("prepared_columns") or []),
                      centers=centers, rules=rules, outliers=outliers,
                      format_version=int(info.get("run_format", L.FORMAT_VERSION)),
                      where=str(self.path),
                      relabel={int(k): int(v) for k, v in (info.get("relabel") or {}).items()})

    def score(self, data: Any) -> pd.DataFrame:
        """customer, segment, name, distance and nearest_centroids_distance (every centroid,
        nearest first; ML.PREDICT's shape) for each customer in ``data``: customer rows (the
        model's features, ids in ``customer``, an id-named column or the index), or raw input
        of the model's kind (a file or a table), read through the model's recipe.

        A value that is not a number where the model wants one raises an
        :class:`~segmint.errors.InputError` naming the row (1-based) and the column; missing
        values and unseen categories follow each feature's ``fill`` rule in ``model.json``.
        """
        return self.scorer.score(data)

    def profile(self) -> pd.DataFrame:
        """The segments' profile as the run wrote it (segment, name, size, share, ...)."""
        return pd.read_parquet(self.path / PROFILE)

    def segments(self) -> list[dict[str, Any]]:
        """segment, name, size and share of each segment at publishing."""
        return [dict(s) for s in self.info["segments"]]

    def assignments(self) -> pd.DataFrame:
        """customer, segment, name: each known customer's latest segment (the newest scheduled
        re-run's scores of this model when there is one, else the run it was published from)."""
        from segmint.deploy.schedule import latest_scores

        latest = latest_scores(self.path.parent.parent, self.name)
        if latest is not None:
            return latest
        return pd.read_parquet(self.path / ASSIGNMENTS)


class ModelStore:
    """A folder of published models: ``<root>/<name>/v<N>/`` (see the module's docstring).

    Examples
    --------
    >>> store = ModelStore("models")                                     # doctest: +SKIP
    >>> model = store.publish(segmint.open_run("runs/<run-id>"))          # doctest: +SKIP
    >>> store.list()                                                      # doctest: +SKIP
    >>> store.get(model.name).score(new_customers)                        # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = models_root(root)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    def versions(self, name: str) -> list[int]:
        """The published versions of ``name``, oldest first."""
        folder = self.root / _check_name(name)
        if not folder.is_dir():
            return []
        found = (_VERSION.fullmatch(p.name) for p in folder.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.fullmatch(p.name) and self.versions(p.name))

    def get(self, name: str, version: int | None = None) -> PublishedModel:
        """A published model: ``version``, or the newest; a ModelError names what is absent."""
        versions = self.versions(name)
        if not versions:
            known = self.names()
            raise ModelError(f"no published model {name!r}; " +
                             (f"published: {known}" if known else "none published yet "
                              "(segmint models publish RUN)"), file=str(self.root))
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise ModelError(f"model {name!r} has no version {version}; it has {versions}",
                             file=str(self.root / name))
        return PublishedModel(self.root / name / f"v{version}")

    def list(self) -> pd.DataFrame:
        """One row per published version: name, version, solution, algorithm, n_segments,
        customers, created_at, run, and error (why a damaged one cannot be opened)."""
        rows = []
        for name in self.names():
            for version in self.versions(name):
                path = self.root / name / f"v{version}"
                try:
                    info = PublishedModel(path).info
                    rows.append({"name": name, "version": version,
                                 "solution": info["solution"]["name"],
                                 "algorithm": info["solution"]["algorithm"],
                                 "n_segments": len(info["segments"]),
                                 "customers": int(info.get("customers", 0)),
                                 "created_at": info.get("created_at"),
                                 "run": info.get("run", {}).get("id"), "error": None})
                except ModelError as exc:
                    rows.append({"name": name, "version": version, "error": str(exc)})
        columns = ["name", "version", "solution", "algorithm", "n_segments", "customers",
                   "created_at", "run", "error"]
        return pd.DataFrame(rows, columns=columns)

    def publish(self, run: Any, solution: str | None = None, name: str | None = None, *,
                relabel: dict[int, int] | None = None, names: dict[int, str] | None = None,
                ) -> PublishedModel:
        """Publish a solution of a run (the recommended one by default) as the next version
        of ``name`` (default: the run's spec name).

        Parameters
        ----------
        run : a :class:`segmint.runs.Run`, or a run folder's path
        solution : a solution of the run; the recommended one when None
        name : the model's name; the spec's ``name`` when None
        relabel : the solution's segment ids -> the ids the model scores as (a re-fit whose
            segments were matched to the published ones keeps their ids); None keeps them
        names : segment id (after ``relabel``) -> name, over the profile's names (a matched
            segment keeps its published name: "Insiders" stays "Insiders")

        Returns
        -------
        PublishedModel
            The new version, opened from its folder.
        """
        from segmint.io import atomic_dir
        from segmint.runs import Run

        if not isinstance(run, Run):
            run = Run(run)
        chosen = run.solution(solution)
        name = _check_name(name or run.manifest.get("name") or run.spec.name)
        version = (self.versions(name) or [0])[-1] + 1
        final = self.root / name / f"v{version}"
        with atomic_dir(final) as tmp:
            _write_version(Path(tmp), run, chosen, name, version, relabel=relabel or {},
                           names=names or {})
        log.info("published %s v%d (solution %s of run %s)", name, version, chosen.name,
                 run.manifest.get("run_id"))
        return PublishedModel(final)


def _write_version(folder: Path, run: Any, chosen: Any, name: str, version: int, *,
                   relabel: dict[int, int], names: dict[int, str]) -> None:
    """Write one version's files into ``folder`` (made whole by the caller)."""
    import segmint
    from segmint._secrets import redact_obj
    from segmint.explain import NOISE_NAME
    from segmint.runs._models import save_model
    from segmint.runs._score import fill_rules

    scorer = chosen.scorer()  # loads and checks the run's model files
    files: dict[str, str] = {}
    if scorer.model is not None:
        files[MODEL] = save_model(scorer.model, folder / MODEL, atomic=False)
    elif scorer.rules is None:
        raise ModelError(f"solution {chosen.name!r} cannot score new customers (it was clustered "
                         f"on a tree embedding, whose layout cannot be saved safely); publish "
                         f"a solution of another representation", file=str(chosen.folder))
    if scorer.outliers is not None:
        files[OUTLIERS] = save_model(scorer.outliers[0], folder / OUTLIERS, atomic=False)
    if scorer.centers is not None:
        scorer.centers.to_parquet(folder / CENTERS, index=False)
    if scorer.rules is not None:
        (folder / RULES).write_text(json.dumps(scorer.rules, indent=1), encoding="utf-8")
    def ids(values: Any) -> Any:
        return values.map(lambda s: relabel.get(int(s), int(s))).astype("int64")

    profile = chosen.profile()
    profile["segment"] = ids(profile["segment"])
    names = {**{int(s): str(n) for s, n in zip(profile["segment"], profile["name"], strict=True)},
             **{int(s): str(n) for s, n in names.items()}}
    profile["name"] = profile["segment"].map(lambda s: names.get(int(s), NOISE_NAME))
    profile.to_parquet(folder / PROFILE, index=False)
    labels = chosen.labels()
    labels["segment"] = ids(labels["segment"])
    assignments = pd.DataFrame({"customer": labels["customer"].astype("string"),
                                "segment": labels["segment"].astype("int64")})
    assignments["name"] = assignments["segment"].map(lambda s: names.get(int(s), NOISE_NAME))
    assignments.to_parquet(folder / ASSIGNMENTS, index=False)
    spec = redact_obj(run.spec.model_dump(mode="json"))
    (folder / SPEC).write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    for file in (CENTERS, RULES, PROFILE, ASSIGNMENTS, SPEC):
        if (folder / file).is_file():
            files[file] = _sha256(folder / file)

    metrics = chosen.metrics
    rules = fill_rules(scorer.model, scorer.features, scorer.types) if scorer.model is not None \
        else {f: "missing: an error" for f in scorer.features}
    manifest = run.manifest
    said = manifest.get("outliers") or {}
    total = len(labels)
    sizes = labels["segment"].value_counts()
    info = {
        "format": MODEL_FORMAT, "name": name, "version": version, "created_at": _now(),
        "segmint_version": segmint.__version__, "run_format": run.format_version,
        "run": {"id": manifest.get("run_id"), "path": str(run.path.resolve()),
                "created": manifest.get("created")},
        "solution": {"name": chosen.name, "algorithm": metrics.get("algorithm"),
                     "representation": metrics.get("representation"),
                     "params": metrics.get("params"), "description": metrics.get("description")},
        "recipe": manifest.get("recipe", "transactions"), "schema": manifest.get("schema"),
        "features": [{"name": f, "type": scorer.types.get(f, "numeric"), "fill": rules[f]}
                     for f in scorer.features],
        "prepared_columns": scorer.prepared_columns,
        "input": manifest.get("input"), "revenue": manifest.get("revenue"),
        "customers": total,
        "metrics": {k: metrics[k] for k in (
            "n_clusters", "noise_share", "min_cluster_share", "silhouette", "davies_bouldin",
            "calinski_harabasz", "mean_squared_distance", "inertia") if k in metrics},
        "segments": [{"segment": int(s), "name": names.get(int(s), NOISE_NAME),
                      "size": int(sizes.get(s, 0)), "share": float(sizes.get(s, 0)) / max(total, 1)}
                     for s in sorted(set(names) | set(int(x) for x in sizes.index))],
        "outliers": None if not said else {k: said.get(k) for k in (
            "method", "contamination", "mode", "scaling", "threshold")},
        "relabel": {str(k): int(v) for k, v in relabel.items()},
        "spec": spec,
        "files": files,
    }
    (folder / INFO).write_text(json.dumps(redact_obj(info), indent=1, default=str),
                               encoding="utf-8")
