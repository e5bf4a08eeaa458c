"""Grounding DINO (transformers) confirms each VLM-named object and gives its box.

One forward pass per object name (J ≤ 3), text prompt ``"<name>."``. Every box above
``box_threshold`` whose phrase score passes ``text_threshold`` is a detection of the object (several
for an object with several instances: all of them go to SAM, as in Grounded-SAM); an object with no
such box is treated as a VLM hallucination and dropped before any mask bits are spent on it.
The thresholds default to those of SEDIC's released code (0.3 / 0.25).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..chat import load_hf


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float


class GroundingDinoDetector:
    def __init__(self, model: Any, processor: Any, device: str = "cpu",
                 box_threshold: float = 0.3, text_threshold: float = 0.25):
        self.model, self.processor, self.device = model, processor, device
        self.box_threshold, self.text_threshold = box_threshold, text_threshold

    @classmethod
    def load(cls, path: str, device: str = "cpu", **kw: float) -> GroundingDinoDetector:
        model, proc = load_hf("gdino", path, device)
        return cls(model, proc, device, **kw)

    def detect(self, image: np.ndarray, name: str) -> Detection | None:
        """The best-scoring detection of ``name``, or None."""
        found = self.detect_all(image, name)
        return max(found, key=lambda d: d.score) if found else None

    def detect_all(self, image: np.ndarray, name: str) -> list[Detection]:
        """Every detection of ``name`` above the thresholds (clipped to the image, empty boxes left out),
        best score first."""
        import torch
        from PIL import Image

        text = name.strip().lower().rstrip(".") + "."
        inputs = self.processor(images=Image.fromarray(image), text=text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        res = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[image.shape[:2]])[0]
        h, w = image.shape[:2]
        found = []
        for score, raw in zip(res["scores"].tolist(), res["boxes"].tolist(), strict=True):
            x0, y0, x1, y1 = (float(v) for v in raw)
            box = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(box, float(score)))
        return sorted(found, key=lambda d: -d.score)
