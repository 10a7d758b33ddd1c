"""The run folder's layout: every file name, and the format version a run was written in.

Format 1 (segmint 0.1, before customer tables): the model is ``scale`` + ``cluster`` on the
feature matrix as a NumPy array; the leaderboard has ``scaling`` and ``k=v`` params; no
``format_version`` in the manifest. Format 2: the model is ``prepare`` (a ColumnTransformer
over the customer table's named columns) + ``cluster``; the manifest records the recipe's
schema, the column types and the revenue column; ``feature_info.csv`` is the feature report.
Format 3: every solution's labels are columns of one ``labels.parquet`` beside the manifest
(``customer`` and one column per solution); a preparation shared by solutions is saved once,
in ``preparations/<name>.skops`` (a Pipeline of the one step ``prepare``), and a solution's
``model.skops`` holds its ``cluster`` step alone; ``metrics.json`` names the preparation and
both checksums. Loading joins the two into the same ``prepare`` + ``cluster`` Pipeline as
format 2. All three open with :class:`segmint.runs.Run`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FORMAT_VERSION", "SPEC", "MANIFEST", "CUSTOMERS", "PREPARED", "LEADERBOARD",
           "STABILITY", "SEGMENT_STABILITY", "PROJECTIONS", "MIGRATION", "FEATURE_INFO", "REPORT",
           "SOLUTIONS", "MODEL", "LABELS", "PROFILE",
           "CENTROIDS", "CENTERS", "METRICS", "RULES", "OUTLIERS_MODEL", "ALL_LABELS", "PREPARATIONS",
           "format_version", "solution_dir", "preparation_path"]

FORMAT_VERSION = 3

SPEC = "spec.yaml"
MANIFEST = "manifest.json"
CUSTOMERS = "customers.parquet"
PREPARED = "prepared.parquet"
# the recommended solution's customers projected (the report's scatter plots): projection
# (its index in the manifest's "projections"), segment, x, y, z (NaN in 2-D)
PROJECTIONS = "projections.parquet"
# a scheduled re-fit's migration since the previous run (deploy.migration.Migration.write):
# counts.parquet (earlier segment x later segment), summary.json, ...
MIGRATION = "migration"
LEADERBOARD = "leaderboard.csv"
STABILITY = "stability.csv"
SEGMENT_STABILITY = "segment_stability.csv"  # per segment of the stability candidates (format 3)
FEATURE_INFO = "feature_info.csv"
REPORT = "report.html"
SOLUTIONS = "solutions"
ALL_LABELS = "labels.parquet"  # format 3: customer + one column of segments per solution
PREPARATIONS = "preparations"  # format 3: <name>.skops, a fitted preparation solutions share
OUTLIERS_MODEL = "outliers.skops"  # the fitted outlier detector (prepare.outliers), for scoring

# inside solutions/<name>/
MODEL = "model.skops"
LABELS = "labels.parquet"  # formats 1 and 2 (format 3: the run's ALL_LABELS)
PROFILE = "profile.parquet"
CENTROIDS = "centroids.parquet"
CENTERS = "centers.parquet"
METRICS = "metrics.json"
RULES = "rules.json"  # a rule-based solution's rules (no model)


def format_version(manifest: dict[str, Any]) -> int:
    """The format a run folder was written in (1 when the manifest does not say)."""
    return int(manifest.get("format_version", 1))


def solution_dir(run: Path, name: str) -> Path:
    return run / SOLUTIONS / name


def preparation_path(run: Path, name: str) -> Path:
    return run / PREPARATIONS / f"{name}.skops"
