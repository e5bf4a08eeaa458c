"""ImageNet backbones shared by LPIPS and DISTS, built from torchvision classes and local weights.

torchvision's model files (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) are what its own
``weights=`` download would fetch; here they must be provided on disk. Only the ``features`` part is
kept (and the file may hold only ``features.*`` keys), so the 100 M-parameter classifiers never load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .weights import find_file, load_state_dict, missing

BACKBONES = {
    # name: (env var, standard file names)
    "alexnet": ("SEMCODEC_ALEXNET_WEIGHTS", ["alexnet-owt-7be5be79.pth", "alexnet.safetensors", "alexnet.pth"]),
    "vgg16": ("SEMCODEC_VGG16_WEIGHTS", ["vgg16-397923af.pth", "vgg16.safetensors", "vgg16.pth"]),
}


def backbone_file(name: str) -> Path | None:
    env, names = BACKBONES[name]
    return find_file(env, names)


def backbone_missing(name: str) -> str | None:
    if backbone_file(name) is not None:
        return None
    env, names = BACKBONES[name]
    return missing(f"torchvision {name} ImageNet weights", env, names)


def build_features(name: str, random_init: bool = False) -> nn.Sequential:
    """The torchvision ``features`` module of ``name``; parameters are uninitialised unless ``random_init``.

    The model is built on the meta device so the classifier (most of AlexNet's 61 M parameters) is never
    allocated; only ``features`` is materialised, to be filled by :func:`load_features`.
    """
    from torchvision import models

    with torch.device("meta"):
        if name == "alexnet":
            feats = models.AlexNet().features
        elif name == "vgg16":
            feats = models.vgg.make_layers(models.vgg.cfgs["D"])  # VGG16 "D" without its classifier
        else:
            raise ValueError(name)
    feats = feats.to_empty(device="cpu")
    if random_init:
        for m in feats.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return feats


def load_features(name: str, path: str | Path | None = None) -> nn.Sequential:
    """``features`` of a torchvision backbone with weights from ``path`` (or the discovered file)."""
    path = Path(path) if path else backbone_file(name)
    if path is None:
        raise FileNotFoundError(backbone_missing(name))
    feats = build_features(name)
    sd = load_state_dict(path)
    sub = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    feats.load_state_dict(sub, strict=True)
    return feats.eval().requires_grad_(False)


IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_tensor(image) -> torch.Tensor:
    """H×W×3 uint8 -> 1×3×H×W float in [0, 1]."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0
