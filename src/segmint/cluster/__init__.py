"""Algorithms, the sweep engine, metrics, selection and stability."""
from segmint.cluster.leaderboard import LEADERBOARD_COLUMNS, read_leaderboard
from segmint.cluster.metrics import solution_metrics
from segmint.cluster.registry import ALGORITHMS, Algorithm, expand_grid, register_algorithm
from segmint.cluster.select import (
    Recommendation,
    compare_ways,
    find_knee,
    leaderboard,
    recommend,
    stability,
)
from segmint.cluster.sweep import Solution, Sweep, run_sweep

__all__ = ["ALGORITHMS", "Algorithm", "LEADERBOARD_COLUMNS", "Recommendation", "Solution", "Sweep",
           "compare_ways", "expand_grid", "find_knee", "leaderboard", "read_leaderboard", "recommend",
           "register_algorithm", "run_sweep", "solution_metrics", "stability"]
