"""segmint: raw customer data to customer segments people can act on.

The public surface is listed in ``__all__``; submodules load on first use, so ``import segmint``
stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "segmint.pipeline", "demo_spec": "segmint.pipeline",
    "build_customers": "segmint.recipes",
    "open_run": "segmint.runs", "Run": "segmint.runs", "SavedSolution": "segmint.runs",
    "RunSpec": "segmint.spec", "load_spec": "segmint.spec",
    "SegmintError": "segmint.errors", "InputError": "segmint.errors",
    "SpecError": "segmint.errors", "ModelError": "segmint.errors",
    "RedactingFilter": "segmint._secrets",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segmint' has no attribute {name!r}")
