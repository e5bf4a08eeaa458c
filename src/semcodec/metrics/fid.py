"""FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) between the reference and decoded sets.

    images ─► 256×256 patches (grid + grid shifted by 128 px) ─► resize 299 ─► Inception-v3 pool3 (2048-d)
        ─► FID = |μr−μd|² + Tr(Σr + Σd − 2(ΣrΣd)^½)       KID = unbiased MMD², kernel (x·y/d + 1)³

Few images (Kodak has 24) give far too few samples for a 2048-d covariance, so, as in HiFiC
(Mentzer et al. 2020) and the image-compression papers that followed, each image is cut into
non-overlapping 256 px patches plus a second grid offset by 128 px (Kodak: 8 patches per image,
192 in all). Scores on patches are comparable only with papers that use the same protocol.

The network is the standard FID Inception (:mod:`.fid_inception`, weights
``pt_inception-2015-12-05-6726825d.pth`` from ``$SEMCODEC_FID_INCEPTION_WEIGHTS`` or the metric weight
folders), so values are comparable with pytorch-fid/torch-fidelity and the papers. Without that file,
torchvision's ``Inception3`` with its ImageNet weights (``$SEMCODEC_INCEPTION_WEIGHTS`` or
``inception_v3_google-0cc3c7bd.pth`` in the torch hub cache) is used instead: its values differ from the
papers' and only comparisons inside one report are meaningful; :func:`inception_network` says which.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .base import SetMetric, torch_threads
from .fid_inception import HINT, fid_inception_file, load_fid_inception
from .weights import find_file, load_state_dict, missing

ENV = "SEMCODEC_INCEPTION_WEIGHTS"
NAMES = ["inception_v3_google-0cc3c7bd.pth", "inception_v3.safetensors", "inception_v3.pth"]
PATCH = 256


def fid_patches(image: np.ndarray, size: int = PATCH) -> list[np.ndarray]:
    """Non-overlapping ``size`` patches plus the grid shifted by size/2; the whole image if it is smaller."""
    h, w = image.shape[:2]
    if h < size or w < size:
        return [image]
    out = []
    for off in (0, size // 2):
        for y in range(off, h - size + 1, size):
            for x in range(off, w - size + 1, size):
                out.append(image[y:y + size, x:x + size])
    return out


def build_inception() -> torch.nn.Module:
    from torchvision.models import Inception3

    # transform_input=False: inputs are fed already scaled to [-1, 1], what the Google weights expect.
    net = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
    return net


def load_inception(path: str | Path | None = None) -> torch.nn.Module:
    path = Path(path) if path else find_file(ENV, NAMES)
    if path is None:
        raise FileNotFoundError(missing("Inception-v3 weights", ENV, NAMES))
    net = build_inception()
    net.load_state_dict(load_state_dict(path), strict=True)
    net.fc = torch.nn.Identity()  # pool3 features
    net.AuxLogits = None
    net.aux_logits = False
    return net.eval().requires_grad_(False)


def inception_network() -> str | None:
    """Which network FID/KID will use: the standard FID one, torchvision's, or None (no weights)."""
    if fid_inception_file() is not None:
        return "fid-inception-2015-12-05"
    return "torchvision-inception-v3" if find_file(ENV, NAMES) is not None else None


def load_feature_network() -> torch.nn.Module:
    """The FID Inception when its file is found, else torchvision's (see the module docstring)."""
    return load_fid_inception() if fid_inception_file() is not None else load_inception()


def inception_features(net: torch.nn.Module, images: list[np.ndarray], batch: int = 8) -> np.ndarray:
    feats = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.stack([torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1) for im in images[i:i + batch]])
            x = F.interpolate(x.float() / 127.5 - 1, size=(299, 299), mode="bilinear", align_corners=False)
            feats.append(net(x).double().numpy())
    return np.concatenate(feats) if feats else np.zeros((0, 2048))


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets ``a`` (n1×d) and ``b`` (n2×d).

    Tr((ΣaΣb)^½) is computed without a general matrix square root: with A = (a−μa)/√(n1−1) and
    B = (b−μb)/√(n2−1), Σa = AᵀA, Σb = BᵀB and the eigenvalues of ΣaΣb are the squared singular values
    of ABᵀ, so the trace is the nuclear norm of the small n1×n2 matrix ABᵀ (exact; seconds instead of
    minutes of ``scipy.linalg.sqrtm`` on 2048×2048). With more samples than dimensions the symmetric
    square roots are used instead: ‖Σa^½ Σb^½‖_*.
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan
    mu1, mu2 = a.mean(0), b.mean(0)
    A = (a - mu1) / math.sqrt(len(a) - 1)
    B = (b - mu2) / math.sqrt(len(b) - 1)
    tr1, tr2 = float((A * A).sum()), float((B * B).sum())
    if min(len(a), len(b)) <= a.shape[1]:
        cross = float(np.linalg.svd(A @ B.T, compute_uv=False).sum())
    else:
        cross = float(np.linalg.svd(_psd_sqrt(A.T @ A) @ _psd_sqrt(B.T @ B), compute_uv=False).sum())
    return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * cross)


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """Unbiased MMD² with the cubic polynomial kernel, averaged over random subsets (fixed seed)."""
    n = min(len(a), len(b), subset_size)
    if n < 2:
        return math.nan
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), n, replace=False)]
        y = b[rng.choice(len(b), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()
        vals.append(mmd)
    return float(np.mean(vals))


class _InceptionSet(SetMetric):
    higher_is_better: ClassVar[bool] = False

    @classmethod
    def availability(cls) -> str | None:
        if inception_network() is not None:
            return None
        return (f"FID Inception weights not found: {HINT} (or, not comparable with papers, torchvision's"
                f" {NAMES[0]} via {ENV})")

    def __init__(self) -> None:
        self._net: torch.nn.Module | None = None

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        if self._net is None:
            self._net = load_feature_network()
        with torch_threads(1):
            return inception_features(self._net, [p for im in images for p in fid_patches(im)])


class FID(_InceptionSet):
    description: ClassVar[str] = "Fréchet Inception distance on 256 px patches (HiFiC protocol)"

    def compute_set(self, references: list[np.ndarray], decodeds: list[np.ndarray]) -> float:
        return frechet_distance(self.features(references), self.features(decodeds))


class KID(_InceptionSet):
    description: ClassVar[str] = "kernel Inception distance on 256 px patches"

    def compute_set(self, references: list[np.ndarray], decodeds: list[np.ndarray]) -> float:
        return kernel_inception_distance(self.features(references), self.features(decodeds))
