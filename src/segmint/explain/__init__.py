"""Profiles, centroid tables and segment names."""
from segmint.explain.profile import centroids_long, name_segments, profile

__all__ = ["centroids_long", "name_segments", "profile"]
