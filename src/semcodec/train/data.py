"""Training data: random crops of BSDS500 (``../shared/data/bsds500/{train,val}``), held in memory.

BSDS500 is 200 + 100 small JPEGs, so decoding them once and cropping tensors beats a DataLoader on a
2-core machine. Captions (for the CLIP-I2T term) come from an optional JSON file ``{stem: caption}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


class CropSampler:
    def __init__(self, folder: str | Path, crop: int, captions: str | Path | None = None, seed: int = 0,
                 limit: int | None = None) -> None:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if limit:
            files = files[:limit]
        if not files:
            raise FileNotFoundError(f"no training images in {folder}")
        self.stems = [p.stem for p in files]
        self.images = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy()).permute(2, 0, 1)
                       for p in files]
        small = min(min(im.shape[1:]) for im in self.images)
        if crop > small:
            raise ValueError(f"crop {crop} is larger than the smallest image side {small}")
        self.crop = crop
        self.captions: dict[str, str] = json.loads(Path(captions).read_text()) if captions else {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, crop: int | None = None) -> tuple[Tensor, list[str | None]]:
        crop = crop or self.crop
        out, caps = [], []
        for _ in range(size):
            i = int(self.rng.integers(len(self.images)))
            im = self.images[i]
            top = int(self.rng.integers(im.shape[1] - crop + 1))
            left = int(self.rng.integers(im.shape[2] - crop + 1))
            c = im[:, top : top + crop, left : left + crop]
            if self.rng.random() < 0.5:
                c = c.flip(2)
            out.append(c)
            caps.append(self.captions.get(self.stems[i]))
        return torch.stack(out).float() / 255.0, caps

    def center_crops(self, n: int) -> Tensor:
        crops = []
        for im in self.images[:n]:
            top, left = (im.shape[1] - self.crop) // 2, (im.shape[2] - self.crop) // 2
            crops.append(im[:, top : top + self.crop, left : left + self.crop])
        return torch.stack(crops).float() / 255.0
