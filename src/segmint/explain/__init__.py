"""Profiles, centroid tables and segment names."""
from segmint.explain.profile import (
    GOOD_DIRECTION,
    NOISE_NAME,
    centroids_long,
    good_direction,
    name_segments,
    profile,
)

__all__ = ["GOOD_DIRECTION", "NOISE_NAME", "centroids_long", "good_direction", "name_segments",
           "profile"]
