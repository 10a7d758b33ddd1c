"""Rule-based solutions: segmentations marketers already use, shown beside the clustered ones
and measured on the same prepared matrix, so an analyst can compare both. They are never
recommended (they were not fitted); new customers are scored by the same rules, on the score
scale learned from the run's customers (see :func:`segmint.recipes.rfm.score_edges`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from segmint.cluster.metrics import label_centers, solution_metrics
from segmint.cluster.sweep import Solution

if TYPE_CHECKING:
    from segmint.prepare import Representation
    from segmint.recipes import CustomerTable
    from segmint.spec import RunSpec

__all__ = ["rule_solutions", "RFM_ALGORITHM", "RULE_ALGORITHMS"]

RFM_ALGORITHM = "rfm_rules"
#: every rule-based solution's ``algorithm`` (none is in the registry)
RULE_ALGORITHMS = (RFM_ALGORITHM,)


def _rfm_solution(table: CustomerTable, rep: Representation, spec: RunSpec) -> Solution:
    from segmint.recipes.rfm import RFM_SEGMENT_MAP, RFM_SEGMENTS, rfm_segments, score_edges

    scores = rfm_segments(table.frame)
    ids = {name: i for i, name in enumerate(RFM_SEGMENTS)}
    labels = np.array([ids[str(s)] for s in scores["rfm_segment"]], dtype=np.int64)
    metrics = solution_metrics(rep.X, labels, silhouette_sample=spec.sweep.silhouette_sample,
                               seed=spec.seed)
    center_ids, centers = label_centers(rep.X, labels)
    return Solution(
        name="rfm_segments", algorithm=RFM_ALGORITHM, representation=rep.name, params={},
        labels=labels, model=None, metrics=metrics, fit_seconds=0.0, center_ids=center_ids,
        centers=centers, columns=list(rep.columns),
        description="RFM segments by the usual R/F score map (rule-based, for comparison)",
        rules={"kind": "rfm", "scores": "quintiles of recency_days, frequency, monetary",
               "edges": score_edges(table.frame, scores), "segments": list(RFM_SEGMENTS),
               "map": [list(p) for p in RFM_SEGMENT_MAP]},
        segment_names={i: name for name, i in ids.items()})


def rule_solutions(table: CustomerTable, rep: Representation, spec: RunSpec) -> list[Solution]:
    """The rule-based solutions the recipe knows (the ``rfm`` feature set: the named RFM
    segments), measured on ``rep``'s matrix."""
    if spec.recipe.kind == "transactions" and spec.recipe.features == "rfm":
        return [_rfm_solution(table, rep, spec)]
    return []
