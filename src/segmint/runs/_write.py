"""Writing a run folder (format :data:`~segmint.runs._layout.FORMAT_VERSION`), whole or not at
all: everything is written into a temporary folder that is moved into place at the end."""
from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import math
import os
import platform
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from segmint._secrets import redact_obj
from segmint._threads import threads
from segmint.errors import SegmintError
from segmint.explain import centroids_long_many, profiles
from segmint.io import atomic_dir, write_parquet_atomic, write_text_atomic
from segmint.io._writers import write_parquet
from segmint.runs import _layout as L

if TYPE_CHECKING:
    from segmint.cluster import Recommendation, Solution
    from segmint.prepare import Representation
    from segmint.recipes import CustomerTable
    from segmint.runs._run import Run
    from segmint.spec import RunSpec

__all__ = ["write_run", "jsonable"]

log = logging.getLogger(__name__)


def jsonable(obj: Any) -> Any:
    """NumPy scalars to Python, NaN to None, tuples to lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (pd.Timestamp, _dt.date)):
        return obj.isoformat()
    return obj


def _versions() -> dict[str, str]:
    import duckdb
    import sklearn

    from segmint import __version__
    return {"segmint": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
            "duckdb": duckdb.__version__}


_CLAIM = ".{name}.claim"  # a hidden folder holding the pid of the run that writes <name>


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _claim_owner(claim: Path) -> int | None:
    try:
        return int((claim / "pid").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def _clean_leftovers(root: Path) -> list[str]:
    """Remove what runs that died while writing left in ``root`` (a killed process cannot
    clean up): hidden ``.<run>.tmp-*`` folders and ``.<run>.claim`` folders of runs whose
    process is gone. A live run's are kept. Returns what was removed."""
    removed = []
    claims = {c.name[1:-len(".claim")]: c for c in root.glob(".*.claim") if c.is_dir()}
    live = set()
    for name, claim in claims.items():
        pid = _claim_owner(claim)
        if pid is not None and _alive(pid):
            live.add(name)
        elif pid is not None or time.time() - claim.stat().st_mtime > 60:
            shutil.rmtree(claim, ignore_errors=True)  # no pid yet: a claim being made, wait
            removed.append(claim.name)
    for tmp in root.glob(".*.tmp-*"):
        owner = tmp.name[1:].rsplit(".tmp-", 1)[0]
        if owner not in live and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp.name)
    return removed


def _claim_run_folder(spec: RunSpec, created: _dt.datetime) -> tuple[Path, Path]:
    """A run folder name no other run uses, claimed atomically (``mkdir`` of a hidden claim
    folder), so two runs of one spec started together get distinct ids."""
    root = Path(spec.output)
    if root.exists() and not root.is_dir():
        raise SegmintError("the output folder is a file", file=str(root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SegmintError(f"the output folder cannot be made ({exc.strerror})",
                           file=str(root)) from None
    for removed in _clean_leftovers(root):
        log.info("removed %s, left by a run that did not finish", removed)
    run_id = f"{spec.name}-{created:%Y%m%d-%H%M%S}"
    for n in range(1, 10_000):
        final = root / (run_id if n == 1 else f"{run_id}-{n}")
        claim = root / _CLAIM.format(name=final.name)
        if final.exists():
            continue
        try:
            claim.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise SegmintError(f"cannot write in the output folder ({exc.strerror})",
                               file=str(root)) from None
        (claim / "pid").write_text(str(os.getpid()), encoding="ascii")
        if final.exists():  # made between the check and the claim by an older segmint
            shutil.rmtree(claim, ignore_errors=True)
            continue
        return final, claim
    raise SegmintError("no free run folder name", file=str(root))


def _profile_table(table: CustomerTable) -> tuple[pd.DataFrame, dict[str, str]]:
    """The columns a profile shows: the features, and the revenue column when it is not one."""
    columns = list(table.features)
    types = {c: table.types[c] for c in columns}
    if table.revenue is not None and table.revenue not in columns:
        columns.append(table.revenue)
        types[table.revenue] = "numeric"
    return table.frame[columns], types


def _parts_to_save(sol: Solution) -> tuple[Any, Any] | None:
    """(preparation, cluster step) of a solution's model as format 3 saves them, or None when
    it keeps no model: a rule-based solution, or one on a tree embedding (UMAP has no safe file
    format)."""
    from segmint.cluster.registry import ALGORITHMS

    model = sol.model
    if model is None or not sol.scorable:
        return None
    cluster = model.named_steps["cluster"]
    algo = ALGORITHMS.get(sol.algorithm)
    if algo is not None and not algo.savable:
        # the safe format cannot hold this estimator: keep the preparation; new customers go
        # to the nearest centre (centers.parquet), as the registry's assign says
        cluster = "passthrough"
    return model.named_steps["prepare"], cluster


def _with_core_samples(cluster: Any, rep: Representation | None) -> Any:
    """The cluster step as saved: a DBSCAN from the grid engine keeps its core samples as
    indices into its space's matrix through the run (``cluster.registry``), and its saved
    model gets their coordinates (``components_``, as scikit-learn's fitted DBSCAN holds
    them) on a copy, so the solution in memory stays small."""
    from sklearn.cluster import DBSCAN

    if isinstance(cluster, DBSCAN) and not hasattr(cluster, "components_"):
        if rep is None:
            raise SegmintError(f"the DBSCAN solution's space is missing; its core samples "
                               f"cannot be saved ({cluster!r})")
        cluster = copy.copy(cluster)
        cluster.components_ = np.asarray(rep.X)[cluster.core_sample_indices_]
    return cluster


def _save_preparations(solutions: list[Solution], run: Path) -> dict[str, tuple[str, str]]:
    """Save each distinct fitted preparation once (solutions of one representation share it);
    return solution name -> (preparation name, its sha256)."""
    from sklearn.pipeline import Pipeline

    from segmint.runs._models import save_model

    saved: dict[int, tuple[str, str]] = {}
    taken: set[str] = set()
    out = {}
    for sol in solutions:
        parts = _parts_to_save(sol)
        if parts is None:
            continue
        prepare = parts[0]
        if id(prepare) not in saved:
            base = name = re.sub(r"[^A-Za-z0-9_.-]", "_", sol.representation).strip(".") \
                or "prepare"
            suffix = 1
            while name in taken:  # two preparations of one space name: <space>-2, ...
                suffix += 1
                name = f"{base}-{suffix}"
            taken.add(name)
            path = L.preparation_path(run, name)
            path.parent.mkdir(exist_ok=True)
            # in place: the run folder is made whole as a unit (atomic_dir)
            saved[id(prepare)] = (name, save_model(Pipeline([("prepare", prepare)]), path,
                                                   atomic=False))
        out[sol.name] = saved[id(prepare)]
    return out


def _save_solution(sol: Solution, table: CustomerTable, folder: Path, prof: pd.DataFrame,
                   centroids: pd.DataFrame, preparation: tuple[str, str] | None,
                   rep: Representation | None = None) -> None:
    """Write one solution's folder (its labels are a column of the run's labels.parquet)."""
    from sklearn.pipeline import Pipeline

    from segmint.runs._models import save_model

    folder.mkdir(parents=True, exist_ok=True)
    # the checksum goes into metrics.json; loading refuses a model whose bytes changed since
    parts = _parts_to_save(sol)
    model_sha256 = save_model(Pipeline([("cluster", _with_core_samples(parts[1], rep))]),
                              folder / L.MODEL, atomic=False) if parts is not None else None
    if sol.rules is not None:
        (folder / L.RULES).write_text(json.dumps(jsonable(sol.rules), indent=2), encoding="utf-8")
    # write_parquet, not to_parquet: it drops attrs, which pandas stores in the metadata
    write_parquet(prof, folder / L.PROFILE, index=False)
    write_parquet(centroids, folder / L.CENTROIDS, index=False)
    centers = pd.DataFrame(sol.centers, columns=sol.columns)
    centers.insert(0, "segment", np.asarray(sol.center_ids).astype(int))
    write_parquet(centers, folder / L.CENTERS, index=False)
    meta = {"name": sol.name, "algorithm": sol.algorithm, "representation": sol.representation,
            "params": sol.params, "description": sol.description, "features": table.features,
            "prepared_columns": sol.columns, "fit_seconds": sol.fit_seconds,
            "model_sha256": model_sha256, "scorable": sol.scorable,
            "preparation": preparation[0] if preparation else None,
            "preparation_sha256": preparation[1] if preparation else None,
            **sol.metrics}
    (folder / L.METRICS).write_text(json.dumps(jsonable(meta), indent=2), encoding="utf-8")


def _profiles(solutions: list[Solution], table: CustomerTable
              ) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Every solution's profile (with its segment names) and centroid table, computed together."""
    from segmint.explain._grouped import group

    shown, types = _profile_table(table)
    labelings = group([sol.labels for sol in solutions])  # grouped once, for both
    profs = profiles(shown, labelings, types=types, revenue=table.revenue)
    for sol, prof in zip(solutions, profs, strict=True):
        if sol.segment_names:
            prof["name"] = [sol.segment_names.get(int(s), n)
                            for s, n in zip(prof["segment"], prof["name"], strict=True)]
    centroids = centroids_long_many(table.frame[table.features], labelings, types=table.types)
    return profs, centroids


def _all_labels(solutions: list[Solution], table: CustomerTable) -> pd.DataFrame:
    """customer + one int64 column of segments per solution (format 3's labels.parquet)."""
    columns = {"customer": table.frame.index.astype("string")}
    columns.update({sol.name: np.asarray(sol.labels, dtype=np.int64) for sol in solutions})
    return pd.DataFrame(columns)


def _save_projections(projections: Any, folder: Path) -> list[dict[str, Any]]:
    """The report's projections as ``projections.parquet`` (each point's segment and place);
    returns what the manifest says of each (method, heading, note, explained share)."""
    said: list[dict[str, Any]] = []
    parts = []
    for i, shown in enumerate(projections):
        projection = shown["projection"]
        coords = projection.coords.astype(np.float32)
        columns: dict[str, Any] = {
            "projection": np.full(len(coords), i, dtype=np.int16),
            "segment": np.asarray(shown["labels"], dtype=np.int64)[projection.rows],
        }
        for axis, name in enumerate("xyz"):
            columns[name] = coords[:, axis] if axis < coords.shape[1] else \
                np.full(len(coords), np.nan, dtype=np.float32)
        parts.append(pd.DataFrame(columns))
        said.append({"method": projection.method, "heading": shown["heading"],
                     "note": projection.note, "explained": projection.explained,
                     "n_components": projection.n_components})
    if parts:
        write_parquet(pd.concat(parts, ignore_index=True), folder / L.PROJECTIONS, index=False)
    return said


def write_run(spec: RunSpec, table: CustomerTable, solutions: list[Solution], rec: Recommendation,
              representations: dict[str, Representation], *, timings: dict[str, float],
              progress: Callable[[str, int, int, str], None] | None = None,
              outlier_model: Any = None,
              insight: dict[str, Any] | Callable[[], dict[str, Any] | None] | None = None) -> Run:
    """Write the run folder and return the :class:`~segmint.runs.Run` that opens it.

    ``insight`` (projections and the surrogate's explanation) may be a callable that returns
    it: the run calls it once every solution is written, so the explanation can be computed
    beside the writing.
    ``outlier_model`` is the fitted outlier detector (preparation + detector) that scoring
    applies before the segments, saved beside the solutions."""
    from segmint.runs._run import Run

    created = _dt.datetime.now(_dt.UTC)
    final, claim = _claim_run_folder(spec, created)
    try:
        _write(final, spec, table, solutions, rec, representations, created=created,
               timings=timings, progress=progress, outlier_model=outlier_model, insight=insight)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile
        raise SegmintError(f"cannot write the run folder ({exc.strerror or exc}); nothing was "
                           f"left behind", file=str(final)) from None
    finally:
        shutil.rmtree(claim, ignore_errors=True)
    return Run(final)


def _write(final: Path, spec: RunSpec, table: CustomerTable, solutions: list[Solution],
           rec: Recommendation, representations: dict[str, Representation], *,
           created: _dt.datetime, timings: dict[str, float],
           progress: Callable[[str, int, int, str], None] | None, outlier_model: Any = None,
           insight: dict[str, Any] | Callable[[], dict[str, Any] | None] | None = None) -> None:
    from segmint.report import build_report
    from segmint.runs._models import save_model

    run_id = final.name
    board = rec.board
    t0 = time.perf_counter()
    with atomic_dir(final) as tmp:
        tmp = Path(tmp)
        # redacted: a URL's password is masked; a ${NAME} reference is kept as written
        write_text_atomic(yaml.safe_dump(redact_obj(spec.model_dump(mode="json")), sort_keys=False),
                          tmp / L.SPEC)
        write_parquet_atomic(table.frame.reset_index(), tmp / L.CUSTOMERS)
        chosen = next((s for s in solutions if s.name == rec.solution), None)
        if chosen is not None:
            rep = representations[chosen.representation]
            # the customers that were clustered (flagged outliers are not)
            index = rep.index if rep.index is not None else table.frame.index
            prepared = pd.DataFrame(rep.X, columns=rep.columns, index=index)
            write_parquet_atomic(prepared.reset_index(), tmp / L.PREPARED)
        board.to_csv(tmp / L.LEADERBOARD, index=False)
        rec.stability.to_csv(tmp / L.STABILITY, index=False)
        rec.segment_stability.to_csv(tmp / L.SEGMENT_STABILITY, index=False)
        if table.info is not None:
            table.info.to_csv(tmp / L.FEATURE_INFO, index=False)
        write_parquet(_all_labels(solutions, table), tmp / L.ALL_LABELS, index=False)
        preparations = _save_preparations(solutions, tmp)
        profs, centroids = _profiles(solutions, table)
        # one folder per solution, on threads: Parquet and zip writing release the GIL
        with ThreadPoolExecutor(max_workers=threads()) as pool:
            saving = [pool.submit(_save_solution, sol, table, L.solution_dir(tmp, sol.name),
                                  profs[i], centroids[i], preparations.get(sol.name),
                                  representations.get(sol.representation))
                      for i, sol in enumerate(solutions)]
            for i, sol in enumerate(solutions):
                saving[i].result()  # the first failure, in the solutions' order
                if progress:
                    progress("save", i + 1, len(solutions), sol.name)
        if callable(insight):  # explained beside the writing (pipeline.run): wait for it
            insight = insight()
        explanation = (insight or {}).get("explanation")
        projections = _save_projections((insight or {}).get("projections", ()), tmp)
        if chosen is not None and explanation is not None:  # the surrogate's tables
            for key, frame in explanation.to_frames().items():
                write_parquet(frame, L.solution_dir(tmp, chosen.name) / f"explain_{key}.parquet",
                              index=False)
        outliers = table.outliers
        if outlier_model is not None and outliers is not None:
            outliers = {**outliers, "model_sha256": save_model(outlier_model,
                                                               tmp / L.OUTLIERS_MODEL,
                                                               atomic=False)}
        timings = {**timings, "write": time.perf_counter() - t0}
        manifest = {
            "format_version": L.FORMAT_VERSION,
            "run_id": run_id,
            "name": spec.name,
            "created": created.isoformat(timespec="seconds"),
            "versions": _versions(),
            "input": table.source,
            "lines": table.lines,
            "customers": len(table),
            "outliers": outliers,
            "recipe": spec.recipe.kind,
            "features": table.features,
            "types": table.types,
            "revenue": table.revenue,
            "notes": table.notes,
            "schema": table.schema,
            "prepared_columns": {name: rep.columns for name, rep in representations.items()},
            "solutions": len(solutions),
            "recommended": rec.solution,
            "reasons": rec.reasons,
            "knee": rec.knee,
            "chosen_knee": rec.chosen_knee,
            "projections": projections,
            "prepared_representation": chosen.representation if chosen else None,
            "timings_seconds": timings,
        }
        manifest = redact_obj(jsonable(manifest))  # the source's record may hold a URL's password
        write_text_atomic(json.dumps(manifest, indent=2), tmp / L.MANIFEST)
        # the report, from the files just written: the page segmint report RUN writes again
        write_text_atomic(build_report(tmp), tmp / L.REPORT)
