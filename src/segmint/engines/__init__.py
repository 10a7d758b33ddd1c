"""Back ends behind one interface: the local engine (DuckDB recipes, scikit-learn sweep) lives
in :mod:`segmint.recipes` and :mod:`segmint.cluster`; :mod:`segmint.engines.spark` computes the
same recipes as Spark SQL and k-means with MLlib (``engine: spark``; pyspark is the optional
``spark`` extra and needs Java 17).

Nothing here imports pyspark at import time: ``import segmint.engines.spark`` does.
"""
from __future__ import annotations

__all__: list[str] = []
