"""SEDIC object semantics: VLM names + details → Grounding DINO confirms → SAM masks.

    image ─► VLM (describe.py) ─► [(name, details)] ≤ J, overall text
                 │
                 └─► per name: Grounding DINO box? ──no──► dropped (hallucinated)
                                        │yes
                                        └─► SAM(box) ─► binary mask ─► MaskCoder (masks/)
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
from .records import GroundedObject, SedicAnalysis
from .sam import SamSegmenter


def ground_objects(image: np.ndarray, semantics: ObjectSemantics, detector: GroundingDinoDetector,
                   segmenter: SamSegmenter) -> SedicAnalysis:
    result = SedicAnalysis(semantics.overall)
    for obj in semantics.objects:
        det = detector.detect(image, obj.name)
        if det is None:
            result.dropped.append(obj.name)
            continue
        mask = segmenter.segment(image, det.box)
        if not mask.any():
            result.dropped.append(obj.name)
            continue
        result.objects.append(GroundedObject(obj.name, obj.details, mask, box=det.box, score=det.score))
    return result


def analyze_sedic(image: np.ndarray, vlm: Chat, detector: GroundingDinoDetector, segmenter: SamSegmenter,
                  limits: SedicLimits | None = None) -> SedicAnalysis:
    return ground_objects(image, describe_objects(image, vlm, limits or SedicLimits()), detector, segmenter)


__all__ = ["Detection", "GroundedObject", "GroundingDinoDetector", "ObjectDescription", "ObjectSemantics",
           "SamSegmenter", "SedicAnalysis", "SedicLimits", "analyze_sedic", "describe_objects",
           "ground_objects", "parse_object_answer", "sedic_prompt"]
