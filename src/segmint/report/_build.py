"""The report of a run folder, from the files in it.

The run writer calls :func:`build_report` on the folder it has just written, and
``segmint report RUN`` calls it again on a finished run (after an upgrade, or to write the
page elsewhere): one path from the folder's files to the page.

What is plotted is bounded whatever the number of customers, so that the page stays light
and opens quickly: a projection draws at most ``max_points`` customers and the silhouette
plot at most ``silhouette_rows``, each a seeded sample, and the page says so.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmint.errors import ModelError
from segmint.runs import _layout as L

__all__ = ["build_report", "write_report", "write_pngs", "MAX_POINTS", "SILHOUETTE_ROWS"]

logger = logging.getLogger(__name__)

#: customers drawn per projection at most (a seeded sample beyond)
MAX_POINTS = 5_000
#: kaleido batches a PNG export is tried in, for the figures a batch left out
_PNG_ATTEMPTS = 3
#: customers whose silhouette is computed and drawn at most (a seeded sample beyond)
SILHOUETTE_ROWS = 3_000
# manifest keys the header leaves out: shown elsewhere on the page, or too long to read
_NOT_IN_HEADER = frozenset({"reasons", "schema", "prepared_columns", "types", "notes",
                            "projections", "chosen_knee"})


def build_report(run: str | Path, *, max_points: int = MAX_POINTS,
                 silhouette_rows: int = SILHOUETTE_ROWS, seed: int = 0) -> str:
    """The HTML report of a run folder, from its files.

    Parameters
    ----------
    run : path
        A run folder (any format :class:`segmint.runs.Run` opens), or a recommend run's
        (``segmint recommend``: the models beside the baselines, items per segment).
    max_points : int
        Customers drawn per projection at most; a seeded sample beyond, said on the page.
    silhouette_rows : int
        Customers in the silhouette plot at most; a seeded sample (the same share of each
        segment) beyond, said on the page.
    seed : int
        Seeds both samples: the same folder gives the same page.

    Returns
    -------
    str
        The self-contained HTML document (:func:`segmint.report.render_report`).

    Raises
    ------
    ModelError
        The folder has no manifest, or a file the page needs is unreadable.
    """
    from segmint.cluster.leaderboard import read_leaderboard
    from segmint.cluster.select import chosen_knee
    from segmint.report._html import render_report

    folder = Path(run)
    manifest = _manifest(folder)
    if manifest.get("kind") == "recommend":  # segmint recommend's folder
        from segmint.report._recommend import build_recommend_report

        return build_recommend_report(folder)
    board = _table(folder / L.LEADERBOARD, "the leaderboard", read=read_leaderboard)
    if board is None:
        raise ModelError("the leaderboard is missing", file=str(folder / L.LEADERBOARD))
    recommended = manifest.get("recommended")
    knee = manifest.get("chosen_knee")
    if knee is None and isinstance(manifest.get("knee"), dict):  # runs before chosen_knee
        knee = chosen_knee(board, manifest["knee"])
    profile = None
    if recommended is not None:
        profile = _table(L.solution_dir(folder, recommended) / L.PROFILE, "the solution's profile")
    header = {k: v for k, v in manifest.items() if k not in _NOT_IN_HEADER}
    # the recommended solution's labels, read once for the silhouette plot and the outliers
    labels = None if recommended is None else _labels(folder, manifest, recommended)
    return render_report(
        title=f"segmint run {manifest.get('run_id', folder.name)}",
        manifest={**header, "knee": {"k": knee}},
        leaderboard=board, profile=profile, recommended=recommended,
        reasons=list(manifest.get("reasons") or []),
        stability=_table(folder / L.STABILITY, "the stability table"),
        segment_stability=_table(folder / L.SEGMENT_STABILITY, "the per-segment stability table"),
        feature_info=_table(folder / L.FEATURE_INFO, "the feature report"),
        notes=list(manifest.get("notes") or []),
        projections=_projections(folder, manifest, max_points, seed),
        explanation=_explanation(folder, recommended),
        silhouette=_silhouette(folder, manifest, labels, silhouette_rows, seed),
        outliers=_outliers(folder, manifest, labels),
        migration=_migration(folder),
    )


def write_report(run: str | Path, out: str | Path | None = None, **options: Any) -> Path:
    """Write :func:`build_report`'s page to ``out`` (default the run's ``report.html``),
    atomically: a reader never sees half a page. Returns the path written."""
    from segmint.io._writers import write_text_atomic

    path = Path(out) if out is not None else Path(run) / L.REPORT
    write_text_atomic(build_report(run, **options), path)
    return path


def write_pngs(run: str | Path, folder: str | Path, *, scale: float = 2.0,
               **options: Any) -> list[Path]:
    """Every figure of the run's report as a PNG file in ``folder``, named after the figure
    (``profile-heatmap.png``, ``silhouette-plot.png``, ``elbow-msd.png``, ...).

    kaleido draws them in a headless Chromium (Debian's ``chromium``); it is optional
    (``pip install 'segmint[png]'``). Without it, each figure's camera button in the page
    saves the same PNG from the browser.

    Returns
    -------
    list of Path
        The files written, one per figure of the page.

    Raises
    ------
    SegmintError
        kaleido is not installed, or it could not start a browser.
    """
    from segmint.errors import SegmintError
    from segmint.report._html import _COLLECTED

    try:
        import kaleido
    except ImportError:
        raise SegmintError("PNG export needs kaleido: pip install 'segmint[png]' (it draws in "
                           "Debian's chromium: apt-get install chromium); each figure's camera "
                           "button in report.html saves a PNG without it") from None
    figures: dict[str, Any] = {}
    token = _COLLECTED.set(figures)
    try:
        build_report(run, **options)
    finally:
        _COLLECTED.reset(token)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{div_id}.png" for div_id in figures]
    if not figures:
        return []
    pending = list(zip(figures.values(), paths, strict=True))
    for _ in range(_PNG_ATTEMPTS):
        try:
            kaleido.write_fig_from_object_sync(
                [{"fig": figure, "path": str(path), "opts": {"scale": scale, "format": "png"}}
                 for figure, path in pending])
        except Exception as exc:  # no browser, a browser that would not start
            raise SegmintError(f"kaleido could not draw the figures ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); it needs "
                               f"Debian's chromium (apt-get install chromium)",
                               file=str(out)) from None
        # kaleido reports a figure it failed to draw only in its log (seen on a loaded machine:
        # the first figure of a batch, while the browser was still starting): draw those again
        pending = [(figure, path) for figure, path in pending if not path.is_file()]
        if not pending:
            return paths
    raise SegmintError(f"kaleido wrote {len(paths) - len(pending)} of {len(paths)} figures in "
                       f"{_PNG_ATTEMPTS} attempts; not {', '.join(p.name for _, p in pending)}",
                       file=str(out))


# ---------------------------------------------------------------- reading the folder


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / L.MANIFEST
    if not path.is_file():
        raise ModelError("not a segmint run folder (no manifest.json)", file=str(folder))
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"the run's manifest is unreadable ({exc})", file=str(path)) from None
    if not isinstance(value, dict):
        raise ModelError("the run's manifest is not a JSON object", file=str(path))
    return value


def _table(path: Path, what: str, read: Any = None) -> pd.DataFrame | None:
    """A table of the folder; None when the run has none (older formats, optional parts)."""
    if not path.is_file():
        return None
    try:
        if read is not None:
            return read(path)
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pyarrow and pandas raise many kinds for a damaged file
        raise ModelError(f"{what} is unreadable ({type(exc).__name__}: {exc})",
                         file=str(path)) from None


def _sample(n: int, at_most: int, seed: int) -> np.ndarray:
    """Ascending positions of a seeded sample of ``at_most`` of ``n`` (all when fewer)."""
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=at_most, replace=False))


def _projections(folder: Path, manifest: dict[str, Any], max_points: int,
                 seed: int) -> list[dict[str, Any]]:
    """The projections the run saved (``projections.parquet``), each with its points'
    segments, at most ``max_points`` points each."""
    from segmint.prepare.projections import Projection

    said = manifest.get("projections") or []
    table = _table(folder / L.PROJECTIONS, "the projections")
    if table is None or not said:
        return []
    out = []
    for i, meta in enumerate(said):
        points = table[table["projection"] == i]
        if points.empty:
            continue
        n_components = int(meta.get("n_components", 2))
        total = len(points)
        keep = _sample(total, max_points, seed + i)
        points = points.iloc[keep]
        axes = ["x", "y", "z"][:n_components]
        note = str(meta.get("note", "")).strip()
        if len(keep) < total:
            note = (note.rstrip(".") + ". " if note else "") + \
                f"Drawn: a seeded sample of {len(keep):,} of its {total:,} points."
        projection = Projection(str(meta.get("method", "pca")),
                                points[axes].to_numpy(dtype=np.float64),
                                np.arange(len(points)), meta.get("explained"), note.strip())
        out.append({"method": projection.method, "heading": str(meta.get("heading", "")),
                    "projection": projection,
                    "labels": points["segment"].to_numpy(dtype=np.int64)})
    return out


def _explanation(folder: Path, recommended: str | None) -> Any:
    """The surrogate's explanation the run saved beside its recommended solution, or None."""
    from segmint.explain.surrogate import SurrogateExplanation

    if recommended is None:
        return None
    where = L.solution_dir(folder, recommended)
    frames = {}
    for key in ("summary", "recall", "importance", "by_segment"):
        frame = _table(where / f"explain_{key}.parquet", "the surrogate's explanation")
        if frame is None:
            return None
        frames[key] = frame
    return SurrogateExplanation.from_frames(frames)


def _labels(folder: Path, manifest: dict[str, Any], solution: str) -> pd.Series | None:
    """customer (text) -> segment of one solution, or None when the folder has no labels."""
    if L.format_version(manifest) >= 3:
        path = folder / L.ALL_LABELS
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path, columns=["customer", solution])
        except Exception as exc:
            raise ModelError(f"the run's labels of {solution!r} are unreadable "
                             f"({type(exc).__name__})", file=str(path)) from None
        frame = frame.rename(columns={solution: "segment"})
    else:
        found = _table(L.solution_dir(folder, solution) / L.LABELS, "the solution's labels")
        if found is None:
            return None
        frame = found
    return pd.Series(frame["segment"].to_numpy(dtype=np.int64),
                     index=frame["customer"].astype("string"))


def _silhouette(folder: Path, manifest: dict[str, Any], labels: pd.Series | None, rows: int,
                seed: int) -> dict[str, Any] | None:
    """Each sampled customer's silhouette in the space the recommended solution was fit in
    (``prepared.parquet``, the clustered customers; outliers and noise are left out);
    ``labels``: the recommended solution's (:func:`_labels`)."""
    from sklearn.metrics import silhouette_samples

    if labels is None:
        return None
    prepared = _table(folder / L.PREPARED, "the prepared matrix")
    if prepared is None or "customer" not in prepared.columns:
        return None
    ids = prepared["customer"].astype("string")
    segment = labels.reindex(ids.to_numpy())
    if segment.isna().any():
        missing = ids[segment.isna().to_numpy()].iloc[0]
        raise ModelError(f"the prepared matrix has customer {missing!r}, which the labels of "
                         f"{manifest.get('recommended')!r} do not", file=str(folder / L.PREPARED))
    segment_values = segment.to_numpy(dtype=np.int64)
    clustered = segment_values >= 0
    X = prepared.drop(columns="customer").to_numpy(dtype=np.float64)[clustered]
    segment_values = segment_values[clustered]
    if len(np.unique(segment_values)) < 2 or not np.isfinite(X).all():
        return None
    total = len(segment_values)
    keep = _stratified(segment_values, rows, seed)
    values = silhouette_samples(X[keep], segment_values[keep])
    return {"values": values, "labels": segment_values[keep], "customers": total,
            "representation": manifest.get("prepared_representation")}


def _outliers(folder: Path, manifest: dict[str, Any], labels: pd.Series | None) -> pd.DataFrame | None:
    """The customers the run set apart (segment -1 of the recommended solution's ``labels``,
    when an outlier rule flagged some), most unusual first: the largest distance from the
    median customer on any numeric feature, in interquartile ranges."""
    rule = manifest.get("outliers")
    if not isinstance(rule, dict) or not rule.get("count"):
        return None
    customers = _table(folder / L.CUSTOMERS, "the customer table")
    if labels is None or customers is None or "customer" not in customers.columns:
        return None
    features = [f for f in manifest.get("features", []) if f in customers.columns]
    customers = customers.assign(customer=customers["customer"].astype("string"))
    flagged = customers[customers["customer"].map(labels).eq(-1).fillna(False).to_numpy(bool)]
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(customers[f])
               and not pd.api.types.is_bool_dtype(customers[f])]
    if flagged.empty or not numeric:
        return None
    values = customers[numeric].astype(float)
    median = values.median()
    iqr = (values.quantile(0.75) - values.quantile(0.25)).replace(0.0, np.nan)
    iqr = iqr.fillna(values.std()).replace(0.0, np.nan).fillna(1.0)
    far = ((flagged[numeric].astype(float) - median) / iqr).abs()
    out = flagged[["customer", *features]].copy()
    out.insert(1, "unusual_on", far.idxmax(axis=1, skipna=True).astype("string"))
    out.insert(2, "how_far", far.max(axis=1, skipna=True).round(1))
    return out.sort_values(["how_far", "customer"], ascending=[False, True],
                           na_position="last").reset_index(drop=True)


def _migration(folder: Path) -> dict[str, Any] | None:
    """A scheduled re-fit's migration since the previous run: ``counts`` (earlier segment x
    later segment, new customers a row, lapsed ones a column) and ``summary`` (its words)."""
    counts = _table(folder / L.MIGRATION / "counts.parquet", "the migration's counts")
    if counts is None:
        return None
    summary_path = folder / L.MIGRATION / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() \
        else {}
    return {"counts": counts, "summary": str(summary.get("summary", ""))}


def _stratified(labels: np.ndarray, at_most: int, seed: int) -> np.ndarray:
    """Ascending positions of a seeded sample of ``at_most`` rows with each segment's share
    kept (every segment keeps 2 rows at least, when it has them)."""
    n = len(labels)
    if n <= at_most:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for segment in np.unique(labels):
        where = np.flatnonzero(labels == segment)
        take = min(len(where), max(2, round(at_most * len(where) / n)))
        keep.append(rng.choice(where, size=take, replace=False))
    return np.sort(np.concatenate(keep))
