"""PerCo's hyper-encoder, quantiser and learned null embedding, one rate point per trained head.

::

    VAE latent z (C×h×w) ─► conv 3×3 ─► k strided convs (×½ each) ─► residual blocks ─► 1×1 conv
        ─► e (32×⌈h/2^k⌉×⌈w/2^k⌉) ─► EMA codebook (V words) ─► indices ─► ⌈gh·gw·log2 V⌉ bits
    decoder: indices ─► codewords ─► each repeated 2^k×2^k (nearest upsampling) ─► z_l (32×h×w)

The rate points are the paper's table for 512×512 images (a 64×64 SD latent): the grid side
(64, 32, 16 or 8, i.e. k = 0..3 strided convs) and the codebook size V fix the bitrate
gh·gw·log2 V / (512·512) of the quantised map; the caption comes on top. A head is trained for
one rate point (its strides and V are part of its weights), as the paper trains one model per rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ...errors import MissingComponentError
from ..latent.vq import EMACodebook
from .rates import CODE_DIM, RATE_NAMES, rate_point


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class HyperEncoder(nn.Module):
    """Latent → continuous hyper-latent e. Downsampling comes first, so the residual blocks of the
    low-rate points run on the small grid (same parameters, a fraction of the compute)."""

    def __init__(self, latent_channels: int, width: int, blocks: int, downs: int, code_dim: int) -> None:
        super().__init__()
        if width % 8:
            raise ValueError(f"hyper-encoder width must be a multiple of 8, got {width}")
        self.proj_in = nn.Conv2d(latent_channels, width, 3, padding=1)
        self.down = nn.Sequential(*[nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, stride=2, padding=1))
                                    for _ in range(downs)])
        self.blocks = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.proj_out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, code_dim, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.blocks(self.down(self.proj_in(z))))


class PercoHead(nn.Module):
    """Everything PerCo adds besides the UNet: hyper-encoder, EMA codebook, learned null embedding ∅.

    The default width and depth are the SD-size head (≈5.3–6.3 M parameters over the rate points,
    inside the paper's 4–8 M); tests build tiny ones."""

    def __init__(self, latent_channels: int = 4, rate: str = "0.0313", width: int = 192, blocks: int = 8,
                 code_dim: int = CODE_DIM, text_len: int = 77, text_dim: int = 1024, decay: float = 0.99,
                 eps: float = 1e-5, restart_below: float | None = None, seed: int = 0) -> None:
        super().__init__()
        self.rate = rate_point(rate)
        self.config = dict(latent_channels=latent_channels, rate=rate, width=width, blocks=blocks,
                           code_dim=code_dim, text_len=text_len, text_dim=text_dim, decay=decay, eps=eps,
                           restart_below=restart_below, seed=seed)
        self.encoder = HyperEncoder(latent_channels, width, blocks, self.rate.downs, code_dim)
        self.codebook = EMACodebook(self.rate.V, code_dim, decay, eps, restart_below, seed)
        #: ∅ of the classifier-free guidance, learned during fine-tuning (10% caption dropout)
        self.null_text = nn.Parameter(torch.zeros(text_len, text_dim))

    @property
    def V(self) -> int:
        return self.rate.V

    @property
    def D(self) -> int:
        return int(self.config["code_dim"])

    @property
    def rate_index(self) -> int:
        return RATE_NAMES.index(self.rate.name)

    def grid(self, h: int, w: int) -> tuple[int, int]:
        """Hyper-latent grid of an h×w latent (each stride-2 conv with padding 1 rounds up)."""
        s = self.rate.stride
        return -(-h // s), -(-w // s)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """Continuous hyper-latent e (B×D×gh×gw) before quantisation."""
        return self.encoder(z)

    def quantize(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codewords, no codebook update: (indices B×gh×gw, straight-through quantised map)."""
        b, d, h, w = e.shape
        idx = self.codebook.nearest(e.permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)
        q = self.lookup(idx).to(e.dtype)
        return idx, e + (q - e).detach()

    def forward(self, z: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: (straight-through quantised map, commitment loss); the codebook takes an EMA step."""
        _, q, commit = self.codebook(self.features(z), beta)
        return q, commit

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices B×gh×gw → quantised map B×D×gh×gw."""
        return self.codebook.lookup(indices).permute(0, 3, 1, 2)

    def upsample(self, zq: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Each code covers the stride×stride latent cells its strided convs saw (nearest upsampling)."""
        s = self.rate.stride
        return zq.repeat_interleave(s, 2).repeat_interleave(s, 3)[..., : size[0], : size[1]]

    def encoder_parameters(self) -> int:
        return sum(p.numel() for p in self.encoder.parameters())

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
        config = json.loads((folder / "config.json").read_text())
        if "rate" not in config:
            raise MissingComponentError(
                f"the PerCo head at {folder} is the earlier adaptive-pool head (no rate point); train a head of"
                " the paper's design with `semcodec train perco --rate RATE`")
        head = cls(**config)
        head.load_state_dict(load_file(str(folder / "model.safetensors")))
        head.requires_grad_(False)
        return head.eval()

