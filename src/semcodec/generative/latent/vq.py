"""PerCo's local conditioning: hyper-encoder + vector quantiser + uniform index coding (Careil et al. 2024).

::

    VAE latent z (C×h×w) ─► hyper-encoder ─► adaptive pool to the grid gh×gw ─► e (D×gh×gw)
        ─► nearest codeword in the codebook (V×D) ─► indices ─► uniform code: ⌈gh·gw·log2 V⌉ bits
    decoder: indices ─► codebook lookup ─► z_l (D×gh×gw) ─► nearest upsample to h×w ─► UNet input

The grid (gh, gw) is the rate knob: the encoder picks it from the byte budget and writes it in
PARAMS. Indices are packed as one mixed-radix integer, so a non-power-of-two V wastes < 1 bit per
image, not per index. The decoder only looks codewords up, so its output is thread-independent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import FormatError

MAX_SYMBOLS = 1 << 20


def index_bits(n: int, V: int) -> int:
    """Exact bit count of ``n`` indices in 0..V−1 coded uniformly: ⌈n·log2 V⌉."""
    return ((V**n) - 1).bit_length() if n else 0


def pack_indices(indices: list[int] | torch.Tensor, V: int) -> bytes:
    idx = [int(i) for i in (indices.flatten().tolist() if isinstance(indices, torch.Tensor) else indices)]
    if any(not 0 <= i < V for i in idx):
        raise ValueError("index outside the codebook")
    if V & (V - 1) == 0:  # power of two: plain bit packing, linear time
        b = V.bit_length() - 1
        value = 0
        for i in reversed(idx):
            value = (value << b) | i
    else:
        value = 0
        for i in reversed(idx):
            value = value * V + i
    return value.to_bytes((index_bits(len(idx), V) + 7) // 8, "little")


def unpack_indices(data: bytes, n: int, V: int) -> list[int]:
    if not 0 <= n <= MAX_SYMBOLS or V < 2:
        raise FormatError("corrupted VQ stream: bad symbol count")
    if len(data) != (index_bits(n, V) + 7) // 8:
        raise FormatError(f"corrupted VQ stream: {len(data)} bytes for {n} indices of a {V}-word codebook")
    value = int.from_bytes(data, "little")
    out = []
    if V & (V - 1) == 0:
        b = V.bit_length() - 1
        mask = V - 1
        for _ in range(n):
            out.append(value & mask)
            value >>= b
    else:
        for _ in range(n):
            value, r = divmod(value, V)
            out.append(r)
    if value:
        raise FormatError("corrupted VQ stream: value exceeds the index range")
    return out


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PercoHead(nn.Module):
    """Hyper-encoder + codebook + learned null text embedding (everything PerCo adds besides the UNet)."""

    def __init__(self, latent_channels: int = 4, width: int = 64, code_dim: int = 8, codebook_size: int = 256,
                 text_len: int = 77, text_dim: int = 1024, blocks: int = 2) -> None:
        super().__init__()
        self.config = dict(latent_channels=latent_channels, width=width, code_dim=code_dim,
                           codebook_size=codebook_size, text_len=text_len, text_dim=text_dim, blocks=blocks)
        self.encoder = nn.Sequential(nn.Conv2d(latent_channels, width, 3, padding=1),
                                     *[ResBlock(width) for _ in range(blocks)])
        self.to_code = nn.Sequential(ResBlock(width), nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, code_dim, 1))
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.normal_(self.codebook.weight, std=1.0)
        #: ∅ of the classifier-free guidance, learned during fine-tuning (10% text dropout)
        self.null_text = nn.Parameter(torch.zeros(text_len, text_dim))

    @property
    def V(self) -> int:
        return int(self.config["codebook_size"])

    @property
    def D(self) -> int:
        return int(self.config["code_dim"])

    def features(self, z: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Continuous hyper-latent e (B×D×gh×gw) before quantisation."""
        return self.to_code(F.adaptive_avg_pool2d(self.encoder(z), grid))

    def quantize(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codewords: (indices B×gh×gw, straight-through quantised map B×D×gh×gw)."""
        flat = e.permute(0, 2, 3, 1).reshape(-1, self.D)
        d = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.weight.T
             + self.codebook.weight.pow(2).sum(1)[None])
        idx = d.argmin(1)
        q = self.codebook(idx).view(e.shape[0], e.shape[2], e.shape[3], self.D).permute(0, 3, 1, 2)
        return idx.view(e.shape[0], e.shape[2], e.shape[3]), e + (q - e).detach()

    def vq_loss(self, e: torch.Tensor, beta: float = 0.25) -> torch.Tensor:
        """VQ-VAE codebook + commitment loss (van den Oord et al. 2017)."""
        idx, _ = self.quantize(e.detach())
        cw = self.lookup(idx)
        return F.mse_loss(cw, e.detach()) + beta * F.mse_loss(e, cw.detach())

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices B×gh×gw → quantised map B×D×gh×gw."""
        return self.codebook(indices).permute(0, 3, 1, 2)

    @staticmethod
    def upsample(zq: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(zq, size=size, mode="nearest")

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> PercoHead:
        from safetensors.torch import load_file

        folder = Path(folder)
        head = cls(**json.loads((folder / "config.json").read_text()))
        head.load_state_dict(load_file(str(folder / "model.safetensors")))
        head.requires_grad_(False)
        return head.eval()


def grid_for(h: int, w: int, cell: int) -> tuple[int, int]:
    """Grid of ``cell``×``cell`` latent cells covering an h×w latent."""
    return max(1, math.ceil(h / cell)), max(1, math.ceil(w / cell))
