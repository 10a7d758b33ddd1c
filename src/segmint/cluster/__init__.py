"""Algorithms, the sweep engine, metrics, selection and stability."""
from segmint.cluster.metrics import solution_metrics
from segmint.cluster.registry import ALGORITHMS, expand_grid
from segmint.cluster.select import Recommendation, find_knee, leaderboard, recommend, stability
from segmint.cluster.sweep import Solution, Sweep, run_sweep

__all__ = ["ALGORITHMS", "Recommendation", "Solution", "Sweep", "expand_grid", "find_knee",
           "leaderboard", "recommend", "run_sweep", "solution_metrics", "stability"]
