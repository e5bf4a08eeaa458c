"""BSDS500 human segmentations as binary object masks (the mask-coding benchmark and prior data).

``scipy.io.loadmat(f)['groundTruth'][0, k]['Segmentation'][0, 0]`` is annotator k's label map; every
label covering more than ``min_fraction`` of the image is one mask.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


def bsds_masks(folder: str | Path, annotators: str = "first", min_fraction: float = 0.01) -> Iterator[np.ndarray]:
    """Yield H×W bool masks from every ``*.mat`` in ``folder`` (sorted), first or all annotators."""
    import scipy.io

    files = sorted(Path(folder).glob("*.mat"))
    if not files:
        raise FileNotFoundError(f"no BSDS500 groundTruth .mat files in {folder}")
    for f in files:
        gt = scipy.io.loadmat(str(f))["groundTruth"]
        ks = range(gt.shape[1]) if annotators == "all" else range(1)
        for k in ks:
            seg = gt[0, k]["Segmentation"][0, 0]
            labels, counts = np.unique(seg, return_counts=True)
            for label, count in zip(labels, counts, strict=True):
                if count > min_fraction * seg.size:
                    yield seg == label
