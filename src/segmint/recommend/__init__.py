"""Recommendations beside the segments: interactions (ratings or purchases) -> split -> model
(factorization machines, ALS, EASE, baselines) -> factors -> top-N per customer and per segment
-> evaluation.

Submodules load on first use: ``segmint.recommend.interactions``, ``.splits``, ``.models``,
``.topn``, ``.metrics``.
"""
from __future__ import annotations
