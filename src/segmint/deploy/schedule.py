"""Scheduled re-runs of a published model, and their history.

Each re-run is kept in ``<models>/<name>/history/<run-id>/``: ``scores.parquet`` (customer,
segment, name, and revenue when the model's recipe has it) and ``run.json`` (when, which
version, score or re-fit, the input's fingerprint, segment sizes).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["latest_scores"]

HISTORY = "history"
SCORES = "scores.parquet"


def _history(root: Path, name: str) -> list[Path]:
    folder = Path(root) / name / HISTORY
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / SCORES).is_file())


def latest_scores(root: Path, name: str) -> pd.DataFrame | None:
    """customer, segment, name of the newest scheduled re-run of model ``name`` (None when
    there has been none)."""
    runs = _history(root, name)
    if not runs:
        return None
    return pd.read_parquet(runs[-1] / SCORES, columns=["customer", "segment", "name"])
