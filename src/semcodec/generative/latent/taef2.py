"""TAEF2: the Tiny AutoEncoder for the FLUX.2 latent space (madebyollin/taesd, MIT), rebuilt from its keys.

The published files are flat ``nn.Sequential`` state dicts (encoder keys ``0``…``14``, decoder
``1``…``19``); diffusers' ``AutoencoderTiny`` cannot hold them because the mid-resolution blocks
carry an extra 1×1 "pool" branch (64→256, GroupNorm(4, 256), ReLU, 256→64) added to the block input.
We derive the layer list from the state dict itself, so any TAESD-family checkpoint loads::

    image [0,1] 3×H×W ─► encoder (3 stride-2 convs) ─► latent 32×H/8×W/8 ─► decoder ─► image [0,1]

Index positions without parameters are fixed by the architecture: decoder 0 = soft clamp
(3·tanh(x/3)), 2 = ReLU, the others = ×2 nearest upsampling.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from ...errors import MissingComponentError
from ...paths import shared_weights_dir

ENV_VAR = "SEMCODEC_TAEF2"
LATENT_CHANNELS = 32
SCALE = 8


def _conv(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class Clamp(nn.Module):
    """Soft clamp of the latent to (−3, 3), first layer of every TAESD decoder."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block: relu(conv³(x') + skip(x')), x' = x + pool(x) when the GroupNorm branch exists."""

    def __init__(self, n_in: int, n_out: int, pool_channels: int = 0) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Module | None = None
        if pool_channels:
            self.pool = nn.Sequential(
                nn.Conv2d(n_in, pool_channels, 1, bias=False),
                nn.GroupNorm(4, pool_channels),
                nn.ReLU(),
                nn.Conv2d(pool_channels, n_in, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_from_state_dict(state: dict[str, torch.Tensor], decoder: bool) -> nn.Sequential:
    """Rebuild the flat Sequential whose ``state_dict()`` is ``state`` (strict load)."""
    by_index: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if not head.isdigit():
            raise ValueError(f"not a flat TAESD state dict: key {key!r}")
        by_index.setdefault(int(head), {})[rest] = value
    layers: list[nn.Module] = []
    stride_next = False
    for i in range(max(by_index) + 1):
        entry = by_index.get(i)
        if entry is None:
            if not decoder:
                raise ValueError(f"encoder layer {i} has no parameters")
            layers.append(Clamp() if i == 0 else nn.ReLU() if i == 2 else nn.Upsample(scale_factor=2))
            continue
        if "conv.0.weight" in entry:
            w = entry["conv.0.weight"]
            pool = entry["pool.0.weight"].shape[0] if "pool.0.weight" in entry else 0
            layers.append(Block(w.shape[1], w.shape[0], pool))
        elif "weight" in entry:
            w = entry["weight"]
            # Encoder: the bias-free 3×3 convs between block groups are the stride-2 downsamplers.
            stride_next = not decoder and "bias" not in entry
            layers.append(_conv(w.shape[1], w.shape[0], stride=2 if stride_next else 1, bias="bias" in entry))
        else:
            raise ValueError(f"unrecognised TAESD layer {i}: {sorted(entry)}")
    net = nn.Sequential(*layers)
    net.load_state_dict(state, strict=True)
    return net.eval()


def default_taef2_dir() -> Path | None:
    """``$SEMCODEC_TAEF2`` (a folder with ``taef2_encoder.pth``/``taef2_decoder.pth``), else the shared weights."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    w = shared_weights_dir()
    return (w / "taef2") if w is not None else None


def taef2_unavailable_reason(path: str | Path | None = None) -> str | None:
    d = Path(path) if path else default_taef2_dir()
    if d is None:
        return (f"the TAEF2 weights were not found: set {ENV_VAR} to a folder holding taef2_encoder.pth and"
                " taef2_decoder.pth (github.com/madebyollin/taesd), or pass vae=<diffusers VAE id or path>")
    missing = [n for n in ("taef2_encoder.pth", "taef2_decoder.pth") if not (d / n).is_file()]
    if missing:
        return f"{d} lacks {', '.join(missing)} (set {ENV_VAR} to the folder holding the TAEF2 .pth files)"
    return None


class TAEF2(nn.Module):
    """Encoder + decoder pair; images in [0, 1], latents 32×H/8×W/8 (H, W multiples of 8)."""

    latent_channels = LATENT_CHANNELS
    scale_factor = SCALE

    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, digest: str = "") -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.digest = digest

    @classmethod
    def from_dir(cls, path: str | Path | None = None) -> TAEF2:
        reason = taef2_unavailable_reason(path)
        if reason:
            raise MissingComponentError(reason)
        d = Path(path) if path else default_taef2_dir()
        assert d is not None
        h = hashlib.sha256()
        parts = []
        for name, is_dec in (("taef2_encoder.pth", False), ("taef2_decoder.pth", True)):
            raw = (d / name).read_bytes()
            h.update(raw)
            state = torch.load(d / name, weights_only=True, map_location="cpu")
            parts.append(build_from_state_dict(state, decoder=is_dec))
        model = cls(parts[0], parts[1], h.hexdigest()[:16])
        for p in model.parameters():
            p.requires_grad_(False)
        return model.eval()

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return self.encoder(x01)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).clamp(0, 1)
