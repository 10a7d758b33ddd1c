"""Plots and the self-contained HTML report of a run.

The report is one HTML file that opens offline: plotly.js is inlined once, nothing is
fetched from a CDN or any other address. :func:`build_report` renders it from a run folder's
files (the run writer and ``segmint report`` both call it); :func:`render_report` from tables.
"""
from __future__ import annotations

from segmint.report._build import build_report, write_pngs, write_report
from segmint.report._html import render_report

__all__ = ["build_report", "render_report", "write_pngs", "write_report"]
