"""Plots and the self-contained HTML report of a run.

The report is one HTML file that opens offline: plotly.js is inlined once, nothing is
fetched from a CDN or any other address.
"""
from __future__ import annotations

from segmint.report._html import render_report

__all__ = ["render_report"]
