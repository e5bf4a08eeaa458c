"""SEDIC object semantics: VLM names + details → Grounding DINO confirms → SAM masks.

    image ─► VLM (describe.py) ─► [(name, details)] ≤ J, overall text
                 │
                 └─► per name: Grounding DINO box? ──no──► dropped (hallucinated)
                                        │yes
                                        └─► SAM(box) ─► binary mask ─► MaskCoder (masks/)
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from .sam import SamSegmenter


@dataclass
class GroundedObject:
    name: str
    details: str
    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray  # H×W bool

    @property
    def text(self) -> str:
        """The object's description as sent to the decoder (name + details)."""
        return f"{self.name}, {self.details}" if self.details else self.name


@dataclass
class SedicAnalysis:
    overall: str
    objects: list[GroundedObject] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # VLM names Grounding DINO could not find


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
        result.objects.append(GroundedObject(obj.name, obj.details, det.box, det.score, mask))
    return result


def analyze_sedic(image: np.ndarray, vlm: Chat, detector: GroundingDinoDetector, segmenter: SamSegmenter,
                  limits: SedicLimits | None = None) -> SedicAnalysis:
    return ground_objects(image, describe_objects(image, vlm, limits or SedicLimits()), detector, segmenter)


__all__ = ["Detection", "GroundedObject", "GroundingDinoDetector", "ObjectDescription", "ObjectSemantics",
           "SamSegmenter", "SedicAnalysis", "SedicLimits", "analyze_sedic", "describe_objects",
           "ground_objects", "parse_object_answer", "sedic_prompt"]
