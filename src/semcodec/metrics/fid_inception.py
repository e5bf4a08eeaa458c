"""The FID Inception network: TensorFlow's 2015-12-05 Inception-v3 graph, the one FID values in papers use.

Heusel et al. computed FID with a TensorFlow Inception graph whose weights were later converted to
PyTorch as ``pt_inception-2015-12-05-6726825d.pth`` (the file pytorch-fid and torch-fidelity load).
Its layout is torchvision's ``Inception3`` (1008 classes, no auxiliary head), but the graph differs in
the pooling branch of the mixed blocks, so loading the file into plain torchvision blocks gives other
features. The differences, all in the ``branch_pool`` input::

    Mixed_5b..5d (A), Mixed_6b..6e (C), Mixed_7b (E)   3×3 average pool that ignores the zero padding
                                                       (count_include_pad=False; torchvision counts it)
    Mixed_7c (E, the last block)                       3×3 *max* pool (as in the TF graph)

Each block below reuses torchvision's branches and recomputes only its pooling branch, so the
parameter names (and the file's keys) are exactly torchvision's.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import find_file, load_state_dict

ENV = "SEMCODEC_FID_INCEPTION_WEIGHTS"
FILE = "pt_inception-2015-12-05-6726825d.pth"
NAMES = [FILE, "pt_inception-2015-12-05.safetensors"]
HINT = (f"get {FILE} (the FID Inception weights released with pytorch-fid, also used by torch-fidelity;"
        f" sha256 prefix 6726825d) and set {ENV} to it, or pass --fid-weights")
NUM_CLASSES = 1008  # the TF graph's 1000 ImageNet classes + 8 unused


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def _fid_block(base: type[nn.Module], pool) -> type[nn.Module]:
    """A torchvision mixed block whose pooling branch (its last output) uses ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = base._forward(self, x)
        outputs[-1] = self.branch_pool(pool(x))
        return outputs

    return type(f"FID{base.__name__}", (base,), {"_forward": _forward, "__doc__": _fid_block.__doc__})


def build_fid_inception() -> nn.Module:
    """Uninitialised FID Inception (fill it with :func:`load_fid_inception` or a state dict)."""
    from torchvision.models import inception as tv

    block_a = _fid_block(tv.InceptionA, _avg_pool_no_pad)
    block_c = _fid_block(tv.InceptionC, _avg_pool_no_pad)
    block_e1 = _fid_block(tv.InceptionE, _avg_pool_no_pad)
    block_e2 = _fid_block(tv.InceptionE, _max_pool)
    net = tv.Inception3(num_classes=NUM_CLASSES, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b = block_a(192, pool_features=32)
    net.Mixed_5c = block_a(256, pool_features=64)
    net.Mixed_5d = block_a(288, pool_features=64)
    net.Mixed_6b = block_c(768, channels_7x7=128)
    net.Mixed_6c = block_c(768, channels_7x7=160)
    net.Mixed_6d = block_c(768, channels_7x7=160)
    net.Mixed_6e = block_c(768, channels_7x7=192)
    net.Mixed_7b = block_e1(1280)
    net.Mixed_7c = block_e2(2048)
    return net


def fid_inception_file() -> Path | None:
    return find_file(ENV, NAMES)


def load_fid_inception(path: str | Path | None = None) -> nn.Module:
    """The FID Inception up to its 2048-d pool features (input: 299×299 RGB scaled to [-1, 1])."""
    path = Path(path) if path else fid_inception_file()
    if path is None:
        raise FileNotFoundError(f"FID Inception weights not found: {HINT}")
    net = build_fid_inception()
    net.load_state_dict(load_state_dict(path), strict=True)
    net.fc = nn.Identity()
    return net.eval().requires_grad_(False)
