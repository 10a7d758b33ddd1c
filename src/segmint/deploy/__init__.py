"""From a run to production: published models, scoring, export, scheduled re-runs with
segment migration, and the HTTP service (DESIGN.md's ``deploy/``).

Submodules load on first use: the service's FastAPI stays out of a process that only scores.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ModelStore": "segmint.deploy.models", "PublishedModel": "segmint.deploy.models",
    "score_file": "segmint.deploy.score", "ScoreResult": "segmint.deploy.score",
    "export": "segmint.deploy.export", "ExportResult": "segmint.deploy.export",
    "rerun": "segmint.deploy.schedule", "Rerun": "segmint.deploy.schedule",
    "history": "segmint.deploy.schedule",
    "migrate": "segmint.deploy.migration", "match_segments": "segmint.deploy.migration",
    "transitions": "segmint.deploy.migration", "Migration": "segmint.deploy.migration",
    "create_app": "segmint.deploy.service", "serve": "segmint.deploy.service",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segmint.deploy' has no attribute {name!r}")
