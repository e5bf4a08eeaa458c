"""PerCo's rate table (Careil et al. 2024), without torch: the CLI lists it, the head builds from it.

Each rate point fixes the hyper-latent grid of a 512×512 image (64×64 SD latent → 64, 32, 16 or 8
per side, i.e. 0–3 stride-2 convs) and the codebook size V; its name is the map's bitrate
gh·gw·log2 V / 512² as the paper's table gives it (the caption's bits come on top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the code dimension of the paper (low-dimensional codes, as in Yu et al.'s improved VQGAN)
CODE_DIM = 32


@dataclass(frozen=True)
class RatePoint:
    name: str  # bits per pixel of the map at 512×512, as the paper's table names it
    downs: int  # strided convs: grid = latent / 2**downs (64×64 latent → 64, 32, 16, 8)
    V: int  # codebook size

    @property
    def stride(self) -> int:
        return 2**self.downs

    def bpp(self, latent: int = 64, pixels: int = 512 * 512) -> float:
        return (latent // self.stride) ** 2 * math.log2(self.V) / pixels


#: Careil et al.'s rate table, lowest rate first. The index is written into PARAMS: append, never
#: reorder. 8196 is the table's own (non-power-of-two) codebook size; the uniform code is exact for it.
RATE_POINTS: tuple[RatePoint, ...] = (
    RatePoint("0.0019", 3, 256),
    RatePoint("0.0024", 3, 1024),
    RatePoint("0.0098", 2, 1024),
    RatePoint("0.0313", 1, 256),
    RatePoint("0.0508", 1, 8196),
    RatePoint("0.0937", 0, 64),
    RatePoint("0.1250", 0, 256),
)
RATE_NAMES = tuple(r.name for r in RATE_POINTS)


def rate_point(name: str) -> RatePoint:
    for r in RATE_POINTS:
        if r.name == name:
            return r
    raise ValueError(f"unknown PerCo rate point {name!r}; one of {', '.join(RATE_NAMES)}")
