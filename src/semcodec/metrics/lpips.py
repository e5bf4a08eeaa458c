"""LPIPS (Zhang et al., CVPR 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

    x, y ∈ [-1,1] ─► scaling layer ─► backbone slices (5 ReLU stages) ─► unit-normalise channels
        ─► (φx − φy)² ─► 1×1 linear layer per stage (learned, ≥ 0) ─► spatial mean ─► sum over stages

The training loss term ``lpips`` (:mod:`semcodec.train.losses`) uses this network too. Two files are needed: the torchvision backbone (see :mod:`semcodec.metrics.backbones`) and the
LPIPS v0.1 linear layers (``alex.pth`` / ``vgg.pth``, keys ``lin{k}.model.1.weight``), which the
``lpips`` PyPI package ships (found there without importing it) or ``$SEMCODEC_LPIPS_WEIGHTS`` points to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .backbones import BACKBONES, backbone_file, backbone_missing, load_features, to_tensor
from .base import Metric, check_pair, torch_threads
from .weights import find_file, load_state_dict, package_file

NETS = {
    # LPIPS name: (backbone, slice boundaries in ``features``, channels per stage)
    "alex": ("alexnet", [2, 5, 8, 10, 12], [64, 192, 384, 256, 256]),
    "vgg": ("vgg16", [4, 9, 16, 23, 30], [64, 128, 256, 512, 512]),
}


def _linear_names(net: str) -> list[str]:
    return [f"{net}.pth", f"lpips_{net}.pth", f"lpips_{net}.safetensors"]


def linear_file(net: str) -> Path | None:
    return find_file("SEMCODEC_LPIPS_WEIGHTS", _linear_names(net)) or (
        None if _env_set() else package_file("lpips", f"weights/v0.1/{net}.pth"))


def lpips_files(net: str, folder: str | Path | None = None) -> tuple[Path, Path] | str:
    """(backbone file, linear-layer file) of LPIPS-``net``, or why they are missing.

    With ``folder`` both come from that one folder (standard names), else they are found as the metric
    finds them (environment variables, metric weights folders, the ``lpips`` package)."""
    if folder is None:
        reason = lpips_missing(net)
        if reason:
            return reason
        back, lin = backbone_file(NETS[net][0]), linear_file(net)
        assert back is not None and lin is not None
        return back, lin
    d = Path(folder)
    back_names, lin_names = BACKBONES[NETS[net][0]][1], _linear_names(net)
    back = next((d / n for n in back_names if (d / n).is_file()), None)
    lin = next((d / n for n in lin_names if (d / n).is_file()), None)
    if back is None or lin is None:
        return f"{d} must hold the backbone ({' or '.join(back_names)}) and the linear layers ({' or '.join(lin_names)})"
    return back, lin


def _env_set() -> bool:
    import os

    return bool(os.environ.get("SEMCODEC_LPIPS_WEIGHTS"))


class _Linear(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPSNet(nn.Module):
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, net: str, features: nn.Sequential):
        super().__init__()
        _, cuts, chans = NETS[net]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        starts = [0, *cuts[:-1]]
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, cuts, strict=True))
        for k, c in enumerate(chans):
            self.add_module(f"lin{k}", _Linear(c))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x``, ``y``: N×3×H×W in [-1, 1]; returns N distances (differentiable in ``x`` and ``y``)."""
        hx, hy = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = x.new_zeros(x.shape[0])
        for k, s in enumerate(self.slices):
            hx, hy = s(hx), s(hy)
            nx = hx / (hx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = hy / (hy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}").model((nx - ny) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(net: str, backbone: str | Path | None = None, linear: str | Path | None = None) -> LPIPSNet:
    """Build LPIPS-``net`` from a torchvision backbone file and an LPIPS linear-layer file."""
    model = LPIPSNet(net, load_features(NETS[net][0], backbone))
    lin_path = Path(linear) if linear else linear_file(net)
    if lin_path is None:
        raise FileNotFoundError(f"LPIPS {net} linear weights not found")
    sd = load_state_dict(lin_path)
    own = {k: v for k, v in sd.items() if k.startswith("lin")}
    missing, unexpected = model.load_state_dict(own, strict=False)
    lin_missing = [k for k in missing if k.startswith("lin")]
    if lin_missing or unexpected:
        raise ValueError(f"{lin_path}: missing {lin_missing}, unexpected {unexpected}")
    return model.eval().requires_grad_(False)


def lpips_missing(net: str) -> str | None:
    """``None`` if both LPIPS files of ``net`` are found, else what to install or set."""
    reason = backbone_missing(NETS[net][0])
    if reason:
        return reason
    if linear_file(net) is None:
        return (f"LPIPS v0.1 linear layers '{net}.pth' not found: `pip install 'semcodec[metrics]'` (lpips ships them) or set"
                " SEMCODEC_LPIPS_WEIGHTS to the file or its folder")
    return None


class _LPIPS(Metric):
    net: ClassVar[str]
    higher_is_better: ClassVar[bool] = False

    @classmethod
    def availability(cls) -> str | None:
        return lpips_missing(cls.net)

    def __init__(self) -> None:
        self._model: LPIPSNet | None = None

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        check_pair(reference, decoded)
        if self._model is None:
            self._model = load_lpips(self.net, backbone_file(NETS[self.net][0]), linear_file(self.net))
        with torch.no_grad(), torch_threads(1):
            return float(self._model(to_tensor(reference) * 2 - 1, to_tensor(decoded) * 2 - 1)[0])


class LPIPSAlex(_LPIPS):
    net: ClassVar[str] = "alex"
    description: ClassVar[str] = "LPIPS v0.1 with AlexNet features (Zhang et al. 2018)"


class LPIPSVGG(_LPIPS):
    net: ClassVar[str] = "vgg"
    description: ClassVar[str] = "LPIPS v0.1 with VGG16 features (Zhang et al. 2018)"
