"""Training data: random crops of image folders (BSDS500 splits, ImageNet samples), held in memory.

BSDS500 is 200 + 100 small JPEGs and ``imagenet_samples`` 1,000 more, so decoding them once and cropping
tensors beats a DataLoader on a 2-core machine. Captions (for the CLIP-I2T term) come from an optional JSON
file ``{stem: caption}``. ``downsample`` box-filters every image (PIL ``reduce``): averaging 2×2 blocks
washes out JPEG block and chroma artefacts that a codec trained at full resolution would learn to keep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: what the trainers read from a data folder (every trainer lists folders with :func:`image_files`)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(folders: str | Path | list[str | Path]) -> list[Path]:
    """Sorted image files of one folder or several (a list keeps its order)."""
    folders = folders if isinstance(folders, list) else [folders]
    return [p for d in folders for p in sorted(Path(d).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def load_training_image(path: Path, downsample: int = 1) -> np.ndarray:
    """RGB uint8; ``downsample`` > 1 box-filters (PIL ``reduce``) away most of the JPEG artefacts.

    BSDS500 and ImageNet images are JPEGs (4:2:0 chroma, DCT-quantised blocks); averaging 2×2 blocks
    leaves clean, camera-like pixel statistics, closer to the photos the codecs are used on.
    """
    img = Image.open(path).convert("RGB")
    if downsample > 1:
        img = img.reduce(downsample)
    return np.asarray(img)


def _load(path: Path, downsample: int) -> Tensor:
    return torch.from_numpy(load_training_image(path, downsample).copy()).permute(2, 0, 1)


class CropSampler:
    """Random (flipped) crops; images smaller than a requested crop are skipped for that crop size."""

    def __init__(self, folder: str | Path | list[str | Path], crop: int, captions: str | Path | None = None,
                 seed: int = 0, limit: int | None = None, downsample: int = 1) -> None:
        files = image_files(folder)
        if limit:
            files = files[:limit]
        if not files:
            raise FileNotFoundError(f"no training images in {folder}")
        self.stems = [p.stem for p in files]
        self.images = [_load(p, downsample) for p in files]
        if crop > max(min(im.shape[1:]) for im in self.images):
            raise ValueError(f"crop {crop} is larger than every image's smaller side")
        self.crop = crop
        self._fits: dict[int, np.ndarray] = {}
        self.captions: dict[str, str] = json.loads(Path(captions).read_text()) if captions else {}
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, crop: int | None = None) -> tuple[Tensor, list[str | None]]:
        crop = crop or self.crop
        if crop not in self._fits:
            self._fits[crop] = np.array([i for i, im in enumerate(self.images) if min(im.shape[1:]) >= crop])
            if not len(self._fits[crop]):
                raise ValueError(f"no training image holds a {crop}-pixel crop")
        fits = self._fits[crop]
        out, caps = [], []
        for _ in range(size):
            i = int(fits[self.rng.integers(len(fits))])
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
        for im in [im for im in self.images if min(im.shape[1:]) >= self.crop][:n]:
            top, left = (im.shape[1] - self.crop) // 2, (im.shape[2] - self.crop) // 2
            crops.append(im[:, top : top + self.crop, left : left + self.crop])
        return torch.stack(crops).float() / 255.0
