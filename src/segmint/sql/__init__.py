"""BigQuery ML's k-means statements over DuckDB: the SQL face of segmint.

``segmint.sql.connect(path)`` opens a DuckDB database file (datasets are its schemas) with a
model catalog beside it (``<path>.models/``); :meth:`Connection.execute` runs BigQuery SQL as
written, including ``CREATE MODEL ... OPTIONS(model_type='kmeans', ...)`` and the ML table
functions (ML.EVALUATE, ML.CENTROIDS, ML.PREDICT, ML.DETECT_ANOMALIES, ML.TRAINING_INFO,
ML.FEATURE_INFO, ML.TRIAL_INFO) anywhere a table may stand. A model is a segmint run folder,
so ``segmint.open_run`` profiles, reports and scores it like any run.

Examples
--------
>>> import segmint.sql
>>> con = segmint.sql.connect()   # in memory; models in a temporary catalog
>>> con.execute("SELECT 1 AS one").one.tolist()
[1]
>>> con.close()
"""
from __future__ import annotations

from segmint.sql._session import Connection, Result, connect

__all__ = ["Connection", "Result", "connect"]
