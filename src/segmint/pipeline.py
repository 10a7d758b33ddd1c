"""One spec -> one run: the stages in flow order.

source --read--> raw table --recipe--> customer table --prepare + sweep--> solutions
--select--> recommendation --profile, report--> run folder

:func:`segmint.recipes.build_customers` is the one entry point to the recipes: fitting calls
it, and scoring (a saved run) calls it again with the fitted schema, so new customers go
through the same reading, recipe and preparation as the ones the model was fitted on.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from segmint.errors import SpecError, public
from segmint.recipes._build import Source, build_customers
from segmint.spec import RunSpec, SourceSpec, load_spec

if TYPE_CHECKING:
    from segmint.recipes import CustomerTable
    from segmint.runs import Run

__all__ = ["run", "build_customers", "describe_columns", "demo_spec", "Progress"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, what)

#: the suffix of solutions and spaces that cluster every customer, outliers included
#: (sweep.compare_outliers)
ALL_CUSTOMERS = "_all"

def demo_spec(output: str | Path = "runs") -> RunSpec:
    """The bundled demo: Insiders features and Intel's grid on UCI Online Retail."""
    data = resources.files("segmint") / "data"
    spec = load_spec(yaml.safe_load((data / "demo.yaml").read_text(encoding="utf-8")))
    spec.source = SourceSpec(path=str(Path(str(data / "online_retail.parquet"))))
    spec.output = str(output)
    return spec


@public
def run(source_or_spec: Source | RunSpec | str | Path | dict, spec: RunSpec | str | Path | dict | None = None,
        *, output: str | Path | None = None, progress: Progress | None = None,
        threads: int | None = None) -> Run:
    """Run a spec end to end and write its run folder; return the :class:`~segmint.runs.Run`.

    ``segmint.run(spec)`` reads the spec's source; ``segmint.run(data, spec)`` runs the spec
    on ``data``: a path, or a table in memory (pandas DataFrame, Arrow table, DuckDB relation).
    A DataFrame whose index holds the customer ids (``df.set_index("client_ref")``) keeps them.

    Parameters
    ----------
    source_or_spec : the spec (RunSpec, YAML path or dict), or the data when ``spec`` is given
    spec : RunSpec, YAML path or dict, optional
    output : folder that receives ``<run-id>/``; default the spec's ``output``
    progress : optional ``progress(stage, done, total, what)`` callback
    threads : threads the run's parallel steps use (the k-means and DBSCAN grids, the shared
        silhouette pass, BLAS and OpenMP pools); default ``SEGMINT_THREADS`` or else the cores
        this process may use (:func:`segmint._threads.threads`)

    Examples
    --------
    >>> run = segmint.run("spec.yaml")                       # doctest: +SKIP
    >>> run = segmint.run(clients_df, {"recipe": {"kind": "attributes"}})  # doctest: +SKIP
    >>> run.leaderboard().head()                              # doctest: +SKIP
    """
    from segmint._threads import using_threads

    with using_threads(threads):
        return _run(source_or_spec, spec, output=output, progress=progress)


def _run(source_or_spec: Any, spec: Any, *, output: str | Path | None,
         progress: Progress | None) -> Run:
    from segmint._threads import threads
    from segmint.cluster import leaderboard, recommend
    from segmint.cluster.rules import rule_solutions
    from segmint.cluster.sweep import Sweep
    from segmint.prepare import model_input, prepare
    from segmint.runs._write import write_run

    source, spec = _source_and_spec(source_or_spec, spec)
    if output is not None:
        spec = spec.model_copy(update={"output": str(output)})
    if spec.engine.kind == "spark":  # issue 16: the Spark engine is being built
        raise SpecError("engine: spark is not available yet in this version of segmint; run with "
                        "the local engine (engine: local, DuckDB and scikit-learn)")

    def stage(name: str):
        return None if progress is None else (lambda d, t, w: progress(name, d, t, w))

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # one connection per run for the recipes, on the run's threads
    with duckdb.connect(config={"threads": threads()}) as con:
        table = build_customers(spec, source, con=con)
    timings["load_and_recipe"] = time.perf_counter() - t0
    log.info("customer table: %d customers x %d features", len(table), len(table.features))

    t0 = time.perf_counter()
    table, clustered, flags, outlier_model = _set_outliers_apart(table, spec)
    timings["outliers"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # with sweep.compare_outliers, every setting runs twice: with the outliers set apart and
    # with every customer clustered (solutions and spaces suffixed "_all")
    variants: list[tuple[CustomerTable, np.ndarray | None, str]] = [(clustered, flags, "")]
    if spec.sweep.compare_outliers:
        if flags is None:
            raise SpecError("sweep.compare_outliers needs outliers set apart and flagged: set "
                            "prepare.outliers (a method, mode: flag)")
        variants.append((table, None, ALL_CUSTOMERS))
    solutions, representations, common_of = [], {}, {}
    for part, part_flags, suffix in variants:
        sweep = Sweep(spec.sweep, seed=spec.seed, progress=stage("sweep" + suffix),
                      prepare_spec=spec.prepare)
        found = sweep.run(part)
        assert sweep.common is not None
        for solution in found:
            if part_flags is not None:  # flagged outliers: a segment of their own (-1)
                labels = np.full(len(part_flags), -1, dtype=np.int64)
                labels[~part_flags] = solution.labels
                solution.clustered = ~part_flags
                solution.labels = labels
            if suffix:
                solution.name += suffix
                solution.representation += suffix
                solution.description += " (every customer clustered, outliers included)"
            common_of[solution.name] = sweep.common
        representations.update({name + suffix: rep for name, rep in sweep.representations.items()})
        solutions += found
        if not suffix:
            first = sweep.common
    # rule-based segments (RFM) score every customer, outliers included: their quintiles are
    # the whole customer base's
    rules = rule_solutions(table, first if flags is None else
                           prepare(table, spec.sweep.common.scaling, spec.prepare), spec)
    timings["sweep"] = time.perf_counter() - t0

    # selection: stability refits on resamples of each solution's clustered customers and
    # compares with its labels of the same rows
    t0 = time.perf_counter()
    solutions += rules
    board = leaderboard(solutions)
    data = model_input(table.frame, table.types, table.features)
    rec = recommend(solutions, board, data, spec.select, seed=spec.seed, progress=stage("stability"))
    timings["select"] = time.perf_counter() - t0

    if table.info is not None:
        table.info = _with_became(table.info, first, table.features)
    chosen = next((s for s in solutions if s.name == rec.solution), None)

    def explain(n_jobs: int | None = None) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        found = _insight(spec, table, chosen, common_of[chosen.name], progress=stage("explain"),
                         n_jobs=n_jobs) if chosen is not None else None
        timings["explain"] = time.perf_counter() - t0
        return found

    with contextlib.ExitStack() as stack:
        # with two threads or more, the recommended solution is explained (LightGBM,
        # projections: native code) while the solutions are written, LightGBM on the threads
        # the writing leaves; the report waits for both
        insight: Any = explain() if threads() == 1 else \
            stack.enter_context(ThreadPoolExecutor(max_workers=1)).submit(
                explain, threads() - 1).result
        return write_run(spec, table, solutions, rec, representations, timings=timings,
                         progress=progress, outlier_model=outlier_model, insight=insight)


def _insight(spec: RunSpec, table: CustomerTable, chosen: Any, common: Any, *,
             progress: Callable[[int, int, str], None] | None = None,
             n_jobs: int | None = None) -> dict[str, Any]:
    """What the report shows of the recommended solution beyond its profile: projections of
    its customers coloured by segment (``profile.projections``) and a surrogate model's
    explanation (``profile.explain``)."""
    from segmint.explain.surrogate import explain_segments
    from segmint.prepare.projections import METHODS, project, project_categorical

    out: dict[str, Any] = {"projections": [], "explanation": None}
    wanted = list(spec.profile.projections)
    steps = len(wanted) + int(spec.profile.explain)
    features = table.frame[table.features]
    clustered = chosen.clustered_labels()  # the common space holds the clustered customers
    categorical = [c for c in table.features if table.types[c] == "categorical"]
    for i, method in enumerate(wanted):
        if progress:
            progress(i, steps, f"projection {method}")
        if method == "mca":
            if not categorical:
                continue
            shown = project_categorical(features, categorical, seed=spec.seed,
                                        max_rows=spec.profile.projection_rows)
            labels = chosen.labels
            what = f"MCA of the categorical columns ({', '.join(categorical)})"
        else:
            method_name = "pca" if method == "pca3" else method
            shown = project(common.X, method_name, n_components=3 if method == "pca3" else 2,
                            seed=spec.seed, max_rows=spec.profile.projection_rows)
            labels = clustered
            what = f"{METHODS[method_name]} of the {common.name} space " \
                   f"({len(common.columns)} prepared columns)"
        # the report draws it, with the segment names of the profile it shows
        out["projections"].append({"method": method, "heading": what, "projection": shown,
                                   "labels": labels})
    if spec.profile.explain and len({int(x) for x in chosen.labels if x >= 0}) >= 2:
        if progress:
            progress(len(wanted), steps, "surrogate model")
        out["explanation"] = explain_segments(features, chosen.labels, types=table.types,
                                              seed=spec.seed, n_jobs=n_jobs)
    return out


def _set_outliers_apart(table: CustomerTable, spec: RunSpec
                        ) -> tuple[CustomerTable, CustomerTable, np.ndarray | None, Any]:
    """(the run's table, the table that is clustered, the outlier flags to label -1 or None,
    the fitted detector as one pipeline (its space's preparation + detector) or None)."""
    from sklearn.pipeline import Pipeline

    from segmint.prepare import prepare
    from segmint.prepare.outliers import find_outliers

    rule = spec.prepare.outliers.resolved(spec.recipe.kind)
    if rule.method == "none":
        return table, table, None, None
    scaling = rule.scaling or spec.sweep.common.scaling
    space = prepare(table, scaling, spec.prepare)
    found = find_outliers(space.X, rule, seed=spec.seed)
    assert found is not None
    said = "by default for transaction data, " if spec.prepare.outliers.method == "auto" else ""
    table.notes.append(said + found.describe(rule.mode) + f"; scored in the {scaling} space")
    table.outliers = {"method": rule.method, "contamination": rule.contamination,
                      "mode": rule.mode, "count": found.count, "scaling": scaling,
                      "auto": spec.prepare.outliers.method == "auto",
                      "threshold": found.threshold}
    detector = Pipeline([("prepare", space.transformer), ("detect", found.detector)])
    clustered = table.subset(~found.flags)
    if rule.mode == "drop":
        return clustered, clustered, None, detector
    return table, clustered, found.flags, detector


def describe_columns(source_or_spec: Source | RunSpec | str | Path | dict,
                     spec: RunSpec | str | Path | dict | None = None) -> pd.DataFrame:
    """The feature report of a source, without running anything else: how each column is
    read (type and why, nulls, statistics) and what it becomes in the clustered matrix.

    ``describe_columns("clients.csv")`` reads a file as a customer table with the default
    recipe; ``describe_columns(spec)`` or ``describe_columns(data, spec)`` uses a spec's
    source and recipe. Use it to check the inferred types before writing a spec.
    """
    from segmint.prepare import prepare

    if spec is None and isinstance(source_or_spec, (str, Path)) \
            and Path(source_or_spec).suffix.lower() not in (".yaml", ".yml"):
        spec = RunSpec(recipe={"kind": "attributes"})  # type: ignore[arg-type]
    source, spec = _source_and_spec(source_or_spec, spec)
    table = build_customers(spec, source)
    if table.info is None:
        raise SpecError("this recipe keeps no feature report")
    return _with_became(table.info, prepare(table, spec.sweep.common.scaling, spec.prepare),
                        table.features)


def _source_and_spec(source_or_spec: Any, spec: Any) -> tuple[Any, RunSpec]:
    """``f(spec)`` or ``f(data, spec)``: the data (None: the spec's source) and the spec."""
    source, spec = (None, source_or_spec) if spec is None else (source_or_spec, spec)
    return source, spec if isinstance(spec, RunSpec) else load_spec(spec)


def _with_became(info: pd.DataFrame, rep: Any, features: list[str]) -> pd.DataFrame:
    from segmint.prepare import what_columns_became

    became = what_columns_became(rep.transformer, features)
    info = info.copy()
    info["became"] = [
        "the customer id" if t == "id" else _became(str(c), b, became)
        for c, t, b in zip(info["column"], info["type"], info["became"], strict=True)]
    return info


def _became(column: str, said: Any, became: dict[str, str]) -> str:
    """What a source column became: its prepared columns, through the feature it turned into
    (a date ``Dt`` becomes the feature ``Dt_days``); else what the recipe said, else nothing."""
    parts = [v for f, v in became.items() if f in (column, f"{column}_days")]
    if parts:
        return "; ".join(parts)
    return said if isinstance(said, str) and said else "not clustered"
