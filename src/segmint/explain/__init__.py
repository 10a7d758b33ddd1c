"""Profiles, centroid tables, segment names and descriptions, and a surrogate model's view of
what sets the segments apart."""
from segmint.explain.profile import (
    GOOD_DIRECTION,
    NOISE_NAME,
    centroids_long,
    centroids_long_many,
    describe_segments,
    good_direction,
    name_segments,
    profile,
    profiles,
)
from segmint.explain.surrogate import SurrogateExplanation, explain_segments

__all__ = ["GOOD_DIRECTION", "NOISE_NAME", "SurrogateExplanation", "centroids_long", "centroids_long_many",
           "describe_segments",
           "explain_segments", "good_direction", "name_segments", "profile", "profiles"]
