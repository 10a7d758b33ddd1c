"""Recommendations beside the segments: interactions (ratings or purchases) -> split -> model
(factorization machines, ALS, EASE, baselines) -> factors -> top-N per customer and per segment
-> evaluation.

``segmint.recommend.recommend(spec)`` runs a spec's ``recommend:`` section end to end and
returns a :class:`RecommendRun` (DataFrames: ``recommendations()``, ``metrics()``,
``segment_top_items()``). The parts load on first use: ``.interactions``, ``.splits``,
``.models``, ``.topn``, ``.metrics``, ``.pipeline``.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["recommend", "RecommendRun", "read_interactions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("segmint.recommend.pipeline"), name)
    raise AttributeError(f"module 'segmint.recommend' has no attribute {name!r}")
