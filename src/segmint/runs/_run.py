"""The objects a user holds: a :class:`Run` (one run folder) and its :class:`SavedSolution` s."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segmint.errors import ModelError, public
from segmint.runs import _layout as L
from segmint.runs._score import Scorer
from segmint.spec import load_spec

__all__ = ["Run", "SavedSolution", "open_run"]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a run folder, or a ModelError saying why not."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{what} file is missing", file=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what} file is unreadable or corrupt ({exc})", file=str(path)) from None
    if not isinstance(value, dict):
        raise ModelError(f"{what} file does not hold a JSON object", file=str(path))
    return value


def _plain_name(name: Any) -> bool:
    """A file or folder name inside the run, from a file the run read: no path, no ".."."""
    return isinstance(name, str) and name not in ("", ".", "..") \
        and not any(c in name for c in "/\\\0")


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise ModelError(f"{what} is missing", file=str(path)) from None
    except Exception as exc:  # pyarrow and pandas raise many kinds for a damaged file
        raise ModelError(f"{what} is unreadable or corrupt ({type(exc).__name__})",
                         file=str(path)) from None


class SavedSolution:
    """One solution of a run, as saved in ``solutions/<name>/``."""

    def __init__(self, folder: Path, run: Run) -> None:
        self.folder = folder
        self.run = run
        self.metrics: dict[str, Any] = _read_json(folder / L.METRICS, "the solution's metrics")
        if not isinstance(self.metrics.get("name"), str) or "features" not in self.metrics:
            raise ModelError("metrics.json lacks the solution's name or features",
                             file=str(folder / L.METRICS))
        self.name: str = self.metrics["name"]
        self._model: Any = None

    def __repr__(self) -> str:
        return f"SavedSolution({self.name!r}, n_clusters={self.metrics['n_clusters']})"

    @property
    def algorithm(self) -> str:
        return str(self.metrics["algorithm"])

    @property
    def rule_based(self) -> bool:
        """A solution made by rules (RFM segments), not fitted: it has rules, no model."""
        return (self.folder / L.RULES).is_file()

    @property
    def model(self) -> Any:
        """The fitted scikit-learn pipeline (preparation + clusterer), loaded with skops after
        its checksum and every type in it are checked (:mod:`segmint.runs._models`)."""
        from segmint.runs._models import load_model

        if self._model is None:
            model = load_model(self.folder / L.MODEL, sha256=self.metrics.get("model_sha256"))
            preparation = self.metrics.get("preparation")
            if self.run.format_version >= 3 and preparation is not None:
                # format 3: the cluster step alone; the preparation is shared by solutions
                from sklearn.pipeline import Pipeline

                if list(model.named_steps) != ["cluster"]:
                    raise ModelError("the solution's model is not a cluster step alone, as run "
                                     "format 3 saves it", file=str(self.folder / L.MODEL))
                prepare = self.run._preparation(preparation, self.metrics.get("preparation_sha256"))
                model = Pipeline([("prepare", prepare), ("cluster", model.named_steps["cluster"])])
            self._model = model
        return self._model

    def labels(self) -> pd.DataFrame:
        """customer and segment: the solution's label of every customer of the run."""
        if self.run.format_version < 3:
            return _read_table(self.folder / L.LABELS, "the solution's labels")
        path = self.run.path / L.ALL_LABELS
        try:
            table = pd.read_parquet(path, columns=["customer", self.name])
        except FileNotFoundError:
            raise ModelError("the run's labels are missing", file=str(path)) from None
        except Exception as exc:  # a damaged file, or no column for this solution
            raise ModelError(f"the run's labels of {self.name!r} are unreadable or missing "
                             f"({type(exc).__name__})", file=str(path)) from None
        return table.rename(columns={self.name: "segment"})

    def profile(self) -> pd.DataFrame:
        return _read_table(self.folder / L.PROFILE, "the solution's profile")

    def centroids(self) -> pd.DataFrame:
        """ML.CENTROIDS-like long table: segment, feature, (category,) value in feature units."""
        return _read_table(self.folder / L.CENTROIDS, "the solution's centroids")

    @public
    def predict(self, data: Any) -> pd.DataFrame:
        """Assign customers to this solution's segments, with distances to every centroid.

        ``data`` is a customer table (the run's feature columns, ids in a ``customer`` column
        or the index) or raw input of the run's kind (transactions, or a customer table as
        exported) as a file or a table in memory, which goes through the run's reading and
        recipe first. Returns customer, segment, name, distance (to its own centroid) and
        nearest_centroids_distance (every centroid, nearest first), as BigQuery ML's
        ML.PREDICT does.
        """
        return self.scorer().score(data)

    def scorer(self) -> Scorer:
        """What scoring with this solution needs, loaded and checked (:mod:`segmint.runs._score`):
        the same path :mod:`segmint.deploy` publishes and serves."""
        rules = json.loads((self.folder / L.RULES).read_text(encoding="utf-8")) \
            if self.rule_based else None
        scorable = self.metrics.get("scorable") is not False
        model = None if rules is not None or not scorable else self.model
        centers = None
        if model is not None and (self.folder / L.CENTERS).is_file():
            centers = _read_table(self.folder / L.CENTERS, "the solution's centres")
        elif model is not None and self.run.format_version >= 2:
            from segmint.cluster.registry import ALGORITHMS

            algo = ALGORITHMS.get(self.algorithm)
            if algo is None or algo.distances is None:
                raise ModelError("the solution's centres are missing",
                                 file=str(self.folder / L.CENTERS))
        prof = self.profile() if rules is None else None
        names = {} if prof is None else \
            {int(s): str(n) for s, n in zip(prof["segment"], prof["name"], strict=True)}
        return Scorer(spec=self.run.spec, recipe=self.run.manifest.get("recipe", "transactions"),
                      schema=self.run.manifest.get("schema") or None,
                      features=list(self.metrics["features"]), types=self.run.types,
                      algorithm=self.algorithm, names=names, model=model,
                      prepared_columns=list(self.metrics.get("prepared_columns") or []),
                      centers=centers, rules=rules, outliers=self.run.outlier_detector(),
                      format_version=self.run.format_version, scorable=scorable,
                      where=str(self.folder))


class Run:
    """What a spec produced: the run folder, and answers about it.

    Opens run folders of every format segmint has written (see :mod:`segmint.runs._layout`).

    Examples
    --------
    >>> run = segmint.open_run("runs/online-retail-insiders-20261123-120000")  # doctest: +SKIP
    >>> run.solution().profile()  # the recommended solution's profile         # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, Path)):
            raise ModelError(f"a run is opened from its folder's path; got {type(path).__name__}")
        self.path = Path(path)
        self._outlier_model: Any = None
        self._preparations: dict[str, Any] = {}
        manifest = self.path / L.MANIFEST
        if not manifest.is_file():
            raise ModelError("not a segmint run folder (no manifest.json)", file=str(self.path))
        self.manifest: dict[str, Any] = _read_json(manifest, "the run's manifest")
        try:
            version = L.format_version(self.manifest)
        except (TypeError, ValueError):
            raise ModelError("the manifest's format_version is not a number",
                             file=str(manifest)) from None
        if not isinstance(self.manifest.get("features"), list):
            raise ModelError("the manifest lacks the run's features", file=str(manifest))
        if version > L.FORMAT_VERSION:
            raise ModelError(f"written in run-folder format {version}; this segmint reads up to "
                             f"{L.FORMAT_VERSION} (upgrade segmint)", file=str(self.path))
        try:
            raw_spec = yaml.safe_load((self.path / L.SPEC).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError("the run's spec.yaml is missing", file=str(self.path)) from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ModelError(f"the run's spec.yaml is unreadable ({type(exc).__name__})",
                             file=str(self.path / L.SPEC)) from None
        if not isinstance(raw_spec, dict):
            raise ModelError("the run's spec.yaml is not a mapping", file=str(self.path / L.SPEC))
        self.spec = load_spec(raw_spec)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, recommended={self.recommended!r})"

    @property
    def format_version(self) -> int:
        return L.format_version(self.manifest)

    @property
    def recommended(self) -> str | None:
        return self.manifest.get("recommended")

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def types(self) -> dict[str, str]:
        """Feature -> numeric / binary / categorical (format 1: all numeric)."""
        return dict(self.manifest.get("types") or {f: "numeric" for f in self.features})

    @property
    def report_path(self) -> Path:
        return self.path / L.REPORT

    @public
    def leaderboard(self) -> pd.DataFrame:
        from segmint.cluster.leaderboard import read_leaderboard

        try:
            return read_leaderboard(self.path / L.LEADERBOARD)
        except FileNotFoundError:
            raise ModelError("the leaderboard is missing", file=str(self.path)) from None
        except Exception as exc:  # a damaged CSV: pandas raises several kinds
            raise ModelError(f"the leaderboard is unreadable ({type(exc).__name__})",
                             file=str(self.path / L.LEADERBOARD)) from None

    def stability(self) -> pd.DataFrame:
        return _read_table(self.path / L.STABILITY, "the stability table")

    def segment_stability(self) -> pd.DataFrame:
        """Per segment of the stability candidates: mean and lowest Jaccard of its best match
        over the resamples (clusterboot) and a verdict; empty for runs written before it."""
        from segmint.cluster.select import SEGMENT_STABILITY_COLUMNS

        path = self.path / L.SEGMENT_STABILITY
        if not path.is_file():
            return pd.DataFrame(columns=list(SEGMENT_STABILITY_COLUMNS))
        return _read_table(path, "the per-segment stability table")

    def feature_info(self) -> pd.DataFrame | None:
        """The feature report of a customer-table run (None when the run has none)."""
        path = self.path / L.FEATURE_INFO
        return pd.read_csv(path) if path.is_file() else None

    @public
    def customers(self) -> pd.DataFrame:
        frame = _read_table(self.path / L.CUSTOMERS, "the customer table")
        if "customer" not in frame.columns:
            raise ModelError("the customer table has no customer column",
                             file=str(self.path / L.CUSTOMERS))
        return frame.set_index("customer")

    def solutions(self) -> list[str]:
        folder = self.path / L.SOLUTIONS
        if not folder.is_dir():
            raise ModelError("the run has no solutions folder", file=str(self.path))
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    @public
    def solution(self, name: str | None = None) -> SavedSolution:
        """A saved solution by name; the recommended one by default."""
        name = name or self.recommended
        if name is None:
            raise ModelError("this run recommended no solution; name one", file=str(self.path))
        if not _plain_name(name):
            raise ModelError(f"{name!r} is not a solution name (a solution is a folder under "
                             f"solutions/; see run.solutions())", file=str(self.path))
        folder = L.solution_dir(self.path, name)
        if not folder.is_dir():
            raise ModelError(f"no solution {name!r}; this run has {len(self.solutions())}, e.g. "
                             f"{self.solutions()[:5]}", file=str(self.path))
        return SavedSolution(folder, self)

    def predict(self, data: Any, solution: str | None = None) -> pd.DataFrame:
        """Score customers with a solution (the recommended one by default)."""
        return self.solution(solution).predict(data)

    def _preparation(self, name: Any, sha256: Any) -> Any:
        """The fitted preparation ``preparations/<name>.skops`` (format 3), loaded once."""
        from segmint.runs._models import load_model

        if not _plain_name(name) or name.startswith("."):
            raise ModelError(f"{name!r} is not a preparation name", file=str(self.path))
        if name not in self._preparations:
            pipe = load_model(L.preparation_path(self.path, name), sha256=sha256)
            if list(pipe.named_steps) != ["prepare"]:
                raise ModelError("is not a saved preparation (a Pipeline of the one step "
                                 "'prepare')", file=str(L.preparation_path(self.path, name)))
            self._preparations[name] = pipe.named_steps["prepare"]
        return self._preparations[name]

    def outlier_detector(self) -> tuple[Any, float] | None:
        """The run's fitted outlier detector (its space's ``prepare`` + ``detect``) and the
        score threshold it used in fitting; None when the run set no customers apart."""
        from segmint.runs._models import load_model

        said = self.manifest.get("outliers") or {}
        if "model_sha256" not in said:
            return None
        if self._outlier_model is None:
            self._outlier_model = load_model(self.path / L.OUTLIERS_MODEL,
                                             sha256=said["model_sha256"])
        return self._outlier_model, float(said["threshold"])

    def outlier_flags(self, frame: pd.DataFrame, features: list[str]) -> np.ndarray | None:
        """Which customers of ``frame`` (customer-table rows) the run's saved outlier detector
        sets apart, by the threshold it used in fitting; None when the run set none apart."""
        detector = self.outlier_detector()
        if detector is None:
            return None
        return Scorer(spec=self.spec, recipe=self.manifest.get("recipe", "transactions"),
                      schema=None, features=features, types=self.types, algorithm="",
                      names={}, outliers=detector).outlier_flags(frame)


@public
def open_run(path: str | Path) -> Run:
    """Open a run folder written earlier."""
    return Run(path)
