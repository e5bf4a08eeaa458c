"""SEDIC object semantics: VLM names + details → Grounding DINO confirms → SAM masks.

    image ─► VLM (describe.py) ─► [(name, details)] ≤ J, overall text
                 │
                 └─► per name: Grounding DINO boxes? ──no──► dropped (hallucinated), and removed from
                                        │yes                  the overall text (prune.py)
                                        └─► SAM(every box) ─► union mask ─► MaskCoder (masks/)
"""

from __future__ import annotations

import numpy as np

from ..chat import Chat
from .describe import (
    ObjectDescription,
    ObjectSemantics,
    SedicLimits,
    describe_objects,
    parse_object_answer,
    sedic_prompt,
)
from .grounding import Detection, GroundingDinoDetector
from .prune import remove_names
from .records import GroundedObject, SedicAnalysis
from .sam import SamSegmenter


def ground_objects(image: np.ndarray, semantics: ObjectSemantics, detector: GroundingDinoDetector,
                   segmenter: SamSegmenter) -> SedicAnalysis:
    """Confirm each named object (every box above the detector's thresholds → SAM → one union mask);
    unconfirmed names are dropped from the objects and from the overall description."""
    result = SedicAnalysis(semantics.overall)
    for obj in semantics.objects:
        found = detector.detect_all(image, obj.name)
        mask = segmenter.segment_boxes(image, [d.box for d in found]) if found else None
        if mask is None or not mask.any():
            result.dropped.append(obj.name)
            continue
        best = found[0]
        result.objects.append(GroundedObject(obj.name, obj.details, mask, box=best.box, score=best.score))
    result.overall = remove_names(result.overall, result.dropped)
    return result


def analyze_sedic(image: np.ndarray, vlm: Chat, detector: GroundingDinoDetector, segmenter: SamSegmenter,
                  limits: SedicLimits | None = None) -> SedicAnalysis:
    return ground_objects(image, describe_objects(image, vlm, limits or SedicLimits()), detector, segmenter)


__all__ = ["Detection", "GroundedObject", "GroundingDinoDetector", "ObjectDescription", "ObjectSemantics",
           "SamSegmenter", "SedicAnalysis", "SedicLimits", "analyze_sedic", "describe_objects",
           "ground_objects", "parse_object_answer", "remove_names", "sedic_prompt"]
