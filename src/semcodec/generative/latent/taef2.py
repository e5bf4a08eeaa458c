"""TAEF2: the Tiny AutoEncoder for the FLUX.2 latent space (madebyollin/taesd, MIT), rebuilt from its keys.

The published files are flat ``nn.Sequential`` state dicts (encoder keys ``0``…``14``, decoder
``1``…``19``); diffusers' ``AutoencoderTiny`` cannot hold them because the mid-resolution blocks
carry an extra 1×1 "pool" branch (64→256, GroupNorm(4, 256), ReLU, 256→64) added to the block input.
We derive the layer list from the state dict itself, so any TAESD-family checkpoint loads::

    image [0,1] 3×H×W ─► encoder (3 stride-2 convs) ─► latent 32×H/8×W/8 ─► decoder ─► image [0,1]

Index positions without parameters are fixed by the architecture: decoder 0 = soft clamp
(3·tanh(x/3)), 2 = ReLU, the others = ×2 nearest upsampling.

Decoding memory: the decoder's "head" (up to its last GroupNorm block, at latent resolution) needs the
whole latent (GroupNorm statistics are global), but everything after it is local (3×3 convolutions,
ReLU, nearest upsampling), so :meth:`TAEF2.decode_uint8` runs that "tail" on tiles of at most
``TILE`` latent pixels a side plus a halo of the tail's receptive field and pastes the tile centres.
Each output pixel sees exactly the inputs it sees in a whole-image pass and the per-pixel arithmetic
does not depend on the tile size (checked bit for bit in ``tests/test_generative_taef2_tiles.py``),
so tiled output equals the whole-image output; peak memory is the latent-resolution part (~110 bytes
per output pixel with resulic's latent codec, measured) plus one tile (~0.4 GB) instead of ~1 KB per
output pixel.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...errors import MissingComponentError
from ...paths import shared_weights_dir

ENV_VAR = "SEMCODEC_TAEF2"
LATENT_CHANNELS = 32
SCALE = 8
#: tail tile side in latent pixels (512 output pixels); with the halo one tile adds about 0.4 GB
TILE = 64


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

    @torch.no_grad()
    def decode_uint8(self, z: torch.Tensor, tile: int = TILE, halo: int | None = None) -> np.ndarray:
        """The H×W×3 uint8 decode of one latent (1×C×h×w), its local tail run tile by tile (see module doc)."""
        k = tail_start(self.decoder)
        head, tail = self.decoder[:k], self.decoder[k:]
        a = head(z)
        h, w = a.shape[-2:]
        up = math.prod(int(m.scale_factor) for m in tail.modules() if isinstance(m, nn.Upsample))
        pad = tail_halo(tail) if halo is None else halo
        out = np.empty((h * up, w * up, 3), np.uint8)
        for r0, r1, c0, c1 in _tiles(h, w, tile):
            a0, a1, b0, b1 = max(0, r0 - pad), min(h, r1 + pad), max(0, c0 - pad), min(w, c1 + pad)
            x = tail(a[..., a0:a1, b0:b1]).clamp(0, 1)
            x = x[..., (r0 - a0) * up : (r1 - a0) * up, (c0 - b0) * up : (c1 - b0) * up]
            out[r0 * up : r1 * up, c0 * up : c1 * up] = to_uint8(x)
        return out


def to_uint8(x01: torch.Tensor) -> np.ndarray:
    """1×3×H×W in [0, 1] → H×W×3 uint8 (round half to even, as every TAEF2 decode before tiling)."""
    return (x01[0].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def tail_start(decoder: nn.Sequential) -> int:
    """Index of the first decoder layer after the last one with a global statistic (GroupNorm)."""
    last = -1
    for i, layer in enumerate(decoder):
        if any(isinstance(m, nn.GroupNorm) for m in layer.modules()):
            last = i
    return last + 1


def tail_halo(tail: nn.Sequential) -> int:
    """Receptive-field radius of the local tail, in input (latent) pixels, rounded up."""
    radius, scale = 0.0, 1
    for layer in tail:
        for m in layer.modules():
            if isinstance(m, nn.Conv2d):
                radius += (m.kernel_size[0] // 2) * m.dilation[0] / scale
            elif isinstance(m, nn.Upsample):
                scale *= int(m.scale_factor)
            elif isinstance(m, nn.GroupNorm):
                raise ValueError("the decoder tail is not local (GroupNorm)")
    return math.ceil(radius)


def _tiles(h: int, w: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Tiles (r0, r1, c0, c1) of an h×w latent: the whole latent up to tile² pixels, else tiles of about
    tile² pixels and never fewer than tile²/2 (thin images get longer tiles). PyTorch runs a convolution
    on a small input (≤ 20,480 values) with another algorithm than on a large one, whose rounding
    differs; tiles this large take the same path as the whole image, so their pixels are the same."""
    if h * w <= tile * tile:
        return [(0, h, 0, w)]
    out = []
    for r0, r1 in _spans(h, max(tile, -(-tile * tile // w))):
        out += [(r0, r1, c0, c1) for c0, c1 in _spans(w, max(tile, -(-tile * tile // (r1 - r0))))]
    return out


def _spans(n: int, tile: int) -> list[tuple[int, int]]:
    """``n`` split into the fewest near-equal spans of at most ``tile``."""
    parts = max(1, -(-n // tile))
    cuts = [round(i * n / parts) for i in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))
