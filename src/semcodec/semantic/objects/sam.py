"""SAM (transformers ``SamModel``): a confirmed object's box prompts → one binary mask at image size.

An object Grounding DINO finds several times (two dogs) gets one mask: the union of SAM's masks for
every box, all boxes prompted in one forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..chat import load_hf


class SamSegmenter:
    def __init__(self, model: Any, processor: Any, device: str = "cpu"):
        self.model, self.processor, self.device = model, processor, device

    @classmethod
    def load(cls, path: str, device: str = "cpu") -> SamSegmenter:
        model, proc = load_hf("sam", path, device)
        return cls(model, proc, device)

    def segment(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """H×W bool mask of the object inside ``box`` (x0, y0, x1, y1 pixels); single-mask output."""
        return self.segment_boxes(image, [box])

    def segment_boxes(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
        """H×W bool union of SAM's single-mask output for each box (one forward pass for all boxes)."""
        import torch
        from PIL import Image

        if not boxes:
            return np.zeros(image.shape[:2], dtype=bool)
        inputs = self.processor(images=Image.fromarray(image), input_boxes=[[list(b) for b in boxes]],
                                return_tensors="pt")
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())
        return masks[0][:, 0].numpy().astype(bool).any(axis=0)  # boxes × H × W → union
