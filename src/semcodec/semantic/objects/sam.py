"""SAM (transformers ``SamModel``): a confirmed object's box prompt → binary mask at image size."""

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
        import torch
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), input_boxes=[[list(box)]], return_tensors="pt")
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())
        return masks[0][0, 0].numpy().astype(bool)
