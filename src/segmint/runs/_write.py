"""Writing a run folder (format :data:`~segmint.runs._layout.FORMAT_VERSION`), whole or not at
all: everything is written into a temporary folder that is moved into place at the end."""
from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from segmint._secrets import redact_obj
from segmint.explain import centroids_long, profile
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


def _run_folder(spec: RunSpec, created: _dt.datetime) -> Path:
    root = Path(spec.output)
    root.mkdir(parents=True, exist_ok=True)
    run_id = f"{spec.name}-{created:%Y%m%d-%H%M%S}"
    final, n = root / run_id, 1
    while final.exists():
        n += 1
        final = root / f"{run_id}-{n}"
    return final


def _profile_table(table: CustomerTable) -> tuple[pd.DataFrame, dict[str, str]]:
    """The columns a profile shows: the features, and the revenue column when it is not one."""
    columns = list(table.features)
    types = {c: table.types[c] for c in columns}
    if table.revenue is not None and table.revenue not in columns:
        columns.append(table.revenue)
        types[table.revenue] = "numeric"
    return table.frame[columns], types


def _save_solution(sol: Solution, table: CustomerTable, folder: Path) -> None:
    import skops.io as sio

    folder.mkdir(parents=True, exist_ok=True)
    if sol.model is not None:
        sio.dump(sol.model, folder / L.MODEL)
    if sol.rules is not None:
        (folder / L.RULES).write_text(json.dumps(jsonable(sol.rules), indent=2), encoding="utf-8")
    # write_parquet, not to_parquet: it drops attrs, which pandas stores in the metadata
    write_parquet(pd.DataFrame({"customer": table.frame.index.astype("string"), "segment": sol.labels}),
                  folder / L.LABELS, index=False)
    shown, types = _profile_table(table)
    prof = profile(shown, sol.labels, types=types, revenue=table.revenue)
    if sol.segment_names:
        prof["name"] = [sol.segment_names.get(int(s), n) for s, n in zip(prof["segment"], prof["name"],
                                                                         strict=True)]
    write_parquet(prof, folder / L.PROFILE, index=False)
    write_parquet(centroids_long(table.frame[table.features], sol.labels, types=table.types),
                  folder / L.CENTROIDS, index=False)
    centers = pd.DataFrame(sol.centers, columns=sol.columns)
    centers.insert(0, "segment", np.asarray(sol.center_ids).astype(int))
    write_parquet(centers, folder / L.CENTERS, index=False)
    meta = {"name": sol.name, "algorithm": sol.algorithm, "representation": sol.representation,
            "params": sol.params, "description": sol.description, "features": table.features,
            "prepared_columns": sol.columns, "fit_seconds": sol.fit_seconds, **sol.metrics}
    (folder / L.METRICS).write_text(json.dumps(jsonable(meta), indent=2), encoding="utf-8")


def write_run(spec: RunSpec, table: CustomerTable, solutions: list[Solution], rec: Recommendation,
              representations: dict[str, Representation], *, timings: dict[str, float],
              progress: Callable[[str, int, int, str], None] | None = None) -> Run:
    """Write the run folder and return the :class:`~segmint.runs.Run` that opens it."""
    from segmint.report import render_report
    from segmint.runs._run import Run

    created = _dt.datetime.now(_dt.UTC)
    final = _run_folder(spec, created)
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
            prepared = pd.DataFrame(rep.X, columns=rep.columns, index=table.frame.index)
            write_parquet_atomic(prepared.reset_index(), tmp / L.PREPARED)
        board.to_csv(tmp / L.LEADERBOARD, index=False)
        rec.stability.to_csv(tmp / L.STABILITY, index=False)
        if table.info is not None:
            table.info.to_csv(tmp / L.FEATURE_INFO, index=False)
        for i, sol in enumerate(solutions):
            _save_solution(sol, table, L.solution_dir(tmp, sol.name))
            if progress:
                progress("save", i + 1, len(solutions), sol.name)
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
            "prepared_representation": chosen.representation if chosen else None,
            "timings_seconds": timings,
        }
        manifest = redact_obj(jsonable(manifest))  # the source's record may hold a URL's password
        write_text_atomic(json.dumps(manifest, indent=2), tmp / L.MANIFEST)
        prof = None if chosen is None else pd.read_parquet(L.solution_dir(tmp, chosen.name) / L.PROFILE)
        # the reasons have their own box in the report; the header shows the rest of the manifest
        header = {k: v for k, v in manifest.items()
                  if k not in {"reasons", "schema", "prepared_columns", "types", "notes"}}
        html = render_report(title=f"segmint run {run_id}",
                             manifest={**header, "knee": {"k": rec.chosen_knee}},
                             leaderboard=board, profile=prof, recommended=rec.solution,
                             reasons=rec.reasons, stability=rec.stability,
                             feature_info=table.info, notes=table.notes)
        write_text_atomic(html, tmp / L.REPORT)
    return Run(final)
