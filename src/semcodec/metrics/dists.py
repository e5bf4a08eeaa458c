"""DISTS (Ding, Ma, Wang, Simoncelli, TPAMI 2020, "Image Quality Assessment: Unifying Structure and Texture Similarity").

    x, y ∈ [0,1] ─► ImageNet normalise ─► VGG16 with L2-pooling instead of max-pooling, 5 stages
        ─► per channel: texture term S1 = (2μxμy+c)/(μx²+μy²+c), structure term S2 = (2σxy+c)/(σx²+σy²+c)
        ─► DISTS = 1 − Σ (α·S1 + β·S2)   (α, β learned, normalised to sum 1; stage 0 is the image itself)

Needs torchvision's VGG16 weights (see :mod:`semcodec.metrics.backbones`) and the α/β file ``weights.pt``
that the ``DISTS_pytorch`` package ships (found without importing it) or ``$SEMCODEC_DISTS_WEIGHTS``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import IMAGENET_MEAN, IMAGENET_STD, backbone_file, backbone_missing, load_features, to_tensor
from .base import Metric, check_pair, torch_threads
from .weights import find_file, load_state_dict, package_file

CHANNELS = [3, 64, 128, 256, 512, 512]


def alpha_beta_file() -> Path | None:
    if os.environ.get("SEMCODEC_DISTS_WEIGHTS"):
        return find_file("SEMCODEC_DISTS_WEIGHTS", ["weights.pt", "dists.pt", "dists.safetensors"])
    return package_file("DISTS_pytorch", "weights.pt")


class L2Pool(nn.Module):
    """Hanning-window L2 pooling, stride 2 (replaces VGG's max-pooling to avoid aliasing)."""

    filter: torch.Tensor

    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        g = g / g.sum()
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTSNet(nn.Module):
    def __init__(self, vgg_features: nn.Sequential):
        super().__init__()
        f = vgg_features
        self.stages = nn.ModuleList([
            nn.Sequential(*f[0:4]),
            nn.Sequential(L2Pool(64), *f[5:9]),
            nn.Sequential(L2Pool(128), *f[10:16]),
            nn.Sequential(L2Pool(256), *f[17:23]),
            nn.Sequential(L2Pool(512), *f[24:30]),
        ])
        self.alpha = nn.Parameter(torch.zeros(1, sum(CHANNELS), 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, sum(CHANNELS), 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - IMAGENET_MEAN) / IMAGENET_STD
        out = [x]
        for s in self.stages:
            h = s(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.features(x), self.features(y)
        w = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w, CHANNELS, dim=1)
        betas = torch.split(self.beta / w, CHANNELS, dim=1)
        c1 = c2 = 1e-6
        d1 = d2 = torch.zeros(x.shape[0], 1, 1, 1)
        for a, b, u, v in zip(alphas, betas, fx, fy, strict=True):
            mu, mv = u.mean([2, 3], keepdim=True), v.mean([2, 3], keepdim=True)
            s1 = (2 * mu * mv + c1) / (mu**2 + mv**2 + c1)
            vu = ((u - mu) ** 2).mean([2, 3], keepdim=True)
            vv = ((v - mv) ** 2).mean([2, 3], keepdim=True)
            cov = (u * v).mean([2, 3], keepdim=True) - mu * mv
            s2 = (2 * cov + c2) / (vu + vv + c2)
            d1 = d1 + (a * s1).sum(1, keepdim=True)
            d2 = d2 + (b * s2).sum(1, keepdim=True)
        return 1 - (d1 + d2).flatten()


def load_dists(backbone: str | Path | None = None, alpha_beta: str | Path | None = None) -> DISTSNet:
    model = DISTSNet(load_features("vgg16", backbone))
    path = Path(alpha_beta) if alpha_beta else alpha_beta_file()
    if path is None:
        raise FileNotFoundError("DISTS alpha/beta weights not found")
    sd = load_state_dict(path)
    model.alpha.data.copy_(sd["alpha"].reshape(model.alpha.shape))
    model.beta.data.copy_(sd["beta"].reshape(model.beta.shape))
    return model.eval().requires_grad_(False)


class DISTS(Metric):
    higher_is_better: ClassVar[bool] = False
    description: ClassVar[str] = "DISTS structure+texture similarity (Ding et al. 2020), 0 = identical"

    @classmethod
    def availability(cls) -> str | None:
        reason = backbone_missing("vgg16")
        if reason:
            return reason
        if alpha_beta_file() is None:
            return ("DISTS alpha/beta 'weights.pt' not found: `pip install 'semcodec[metrics]'` (dists-pytorch ships it) or set"
                    " SEMCODEC_DISTS_WEIGHTS")
        return None

    def __init__(self) -> None:
        self._model: DISTSNet | None = None

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        check_pair(reference, decoded)
        if self._model is None:
            self._model = load_dists(backbone_file("vgg16"), alpha_beta_file())
        with torch.no_grad(), torch_threads(1):
            return float(self._model(to_tensor(reference), to_tensor(decoded))[0])
