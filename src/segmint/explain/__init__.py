"""Profiles, centroid tables and segment names."""
from segmint.explain.profile import NOISE_NAME, centroids_long, name_segments, profile

__all__ = ["NOISE_NAME", "centroids_long", "name_segments", "profile"]
