"""``semcodec lossless-estimate``: where the bits go, from the teacher-forced model (no coding).

For each image and base quality: the real base size, the residual cross-entropy of the trained head
and of the head with a per-image adapter (:mod:`.adapter`, fitted exactly as the encoder does, here
on the teacher-forced states), split by channel and by position inside the 8×8 patch (first pixel,
rest of the first row, rest of the first column, interior): the patch border is where the causal
residual context is cut, because patches are coded in parallel (with the checkerboard order only
the first-phase patches lose it). Cheap: one forward pass per image and quality, no arithmetic
coding; the coded size is within ~1 % of these numbers. :func:`total_bits` is the same estimate
the encoder uses to rank the base candidates of each image (:mod:`.search`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..determinism import fixed_threads
from .adapter import fit_adapter
from .base_codec import encode_base
from .mixture import gmm_bits
from .model import ResidualLM, load_model


def _bits(model: ResidualLM, h: torch.Tensor, xs: torch.Tensor, xls: torch.Tensor, r: torch.Tensor,
          adapter=None) -> torch.Tensor:
    return torch.stack([gmm_bits(*model.head(h, c, r, adapter), xs[..., c], xls[..., c]) for c in range(3)], -1)


def _summary(bits: torch.Tensor, p: int, extra_bits: float = 0.0) -> dict:
    """bits (N, p², 3) -> mean bpsp overall, per channel and per position class."""
    pos = bits.mean((0, 2)).view(p, p)
    n = bits.numel()
    return {"bpsp": round((float(bits.sum()) + extra_bits) / n, 4),
            "RGB": [round(float(v), 3) for v in bits.mean((0, 1))],
            "first_pixel": round(float(pos[0, 0]), 3), "first_row": round(float(pos[0, 1:].mean()), 3),
            "first_col": round(float(pos[1:, 0].mean()), 3), "interior": round(float(pos[1:, 1:].mean()), 3)}


TILE, TILE_GRID = 64, 4  # quality choice on large images: a 4×4 grid of 64² tiles (~1/6 of Kodak)


def total_bits(model: ResidualLM, x: np.ndarray, quality: int, codec: str = "heif") -> tuple[float, bytes, np.ndarray]:
    """Base stream bits + estimated residual bits (trained head, teacher forced) of ``x`` at ``quality``.

    Returns (bits, base IMAGE payload, x_l) so the caller can keep the base it picks. Images larger
    than the tile grid are estimated on TILE_GRID² tiles of TILE² pixels spread evenly over the
    image (each with an 8-pixel context margin, as in training) and scaled to the image size: the
    same tiles at every quality, so the comparison between qualities is what matters. Smaller
    images are estimated whole (edge-padded to whole patches; padding pixels are not counted).
    """
    p = model.cfg.patch
    base, xl = encode_base(x, codec, quality)
    h, w = x.shape[:2]
    qi = torch.tensor([model.quality_index(quality)])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].contiguous()  # noqa: E731
    if h >= TILE * TILE_GRID and w >= TILE * TILE_GRID:
        m = 8
        pad = ((m, m), (m, m), (0, 0))
        xp, xlp = np.pad(x, pad, mode="edge"), np.pad(xl, pad, mode="edge")
        ys = [(k * (h - TILE) // (TILE_GRID - 1)) // p * p for k in range(TILE_GRID)]
        xs = [(k * (w - TILE) // (TILE_GRID - 1)) // p * p for k in range(TILE_GRID)]
        crops = [(xp[y : y + TILE + 2 * m, c : c + TILE + 2 * m], xlp[y : y + TILE + 2 * m, c : c + TILE + 2 * m])
                 for y in ys for c in xs]
        xb = torch.cat([t(a) for a, _ in crops])
        xlb = torch.cat([t(b) for _, b in crops])
        with fixed_threads(1), torch.no_grad():
            bits = model(xb, xlb, qi.repeat(len(crops)), margin=m)
        return 8.0 * len(base) + float(bits.mean()) * x.size, base, xl
    pad = ((0, -h % p), (0, -w % p), (0, 0))
    valid = np.pad(np.ones((h, w), bool), pad[:2])
    with fixed_threads(1), torch.no_grad():
        bits = model(t(np.pad(x, pad, mode="edge")), t(np.pad(xl, pad, mode="edge")), qi)  # (N, p², 3)
    nh, nw = valid.shape[0] // p, valid.shape[1] // p
    mask = torch.from_numpy(valid.reshape(nh, p, nw, p).transpose(0, 2, 1, 3).reshape(-1, p * p))
    return 8.0 * len(base) + float(bits[mask].sum()), base, xl


def estimate(model: ResidualLM, x: np.ndarray, quality: int, adapt_steps: int, codec: str = "heif") -> dict:
    p = model.cfg.patch
    x = np.ascontiguousarray(x[: x.shape[0] // p * p, : x.shape[1] // p * p])
    base, xl = encode_base(x, codec, quality)
    # np.array copies: the decoded base may be a read-only buffer
    t = lambda a: torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].contiguous()  # noqa: E731
    with fixed_threads(1), torch.no_grad():
        h, xs, xls, r = model.teacher_forced(t(x), t(xl), torch.tensor([model.quality_index(quality)]))
        out = {"quality": quality, "base_bpsp": round(8 * len(base) / x.size, 4),
               "residual": _summary(_bits(model, h, xs, xls, r), p)}
        if adapt_steps > 0:
            d = h.shape[-1]
            ad = fit_adapter(model, h.reshape(-1, d), r.reshape(-1, 3), xs.reshape(-1, 3), xls.reshape(-1, 3),
                             adapt_steps)
            nbytes = len(ad.to_bytes())
            out["adapted"] = _summary(_bits(model, h, xs, xls, r, ad), p, 8.0 * nbytes)
            out["adapter_bytes"] = nbytes
    best = out.get("adapted", out["residual"])["bpsp"]
    out["total_bpsp"] = round(out["base_bpsp"] + best, 4)
    return out


def cmd_estimate(args: argparse.Namespace) -> int:
    from ..image_io import load_image
    from .coder import DEFAULT_ADAPT_STEPS
    from .profile import default_weights

    model = load_model(args.weights or default_weights())
    steps = DEFAULT_ADAPT_STEPS if args.adapt_steps is None else args.adapt_steps
    for f in args.images:
        x = load_image(f)
        for q in (int(v) for v in args.quality.split(",")):
            print(json.dumps({"image": Path(f).name, **estimate(model, x, q, steps)}), flush=True)
    return 0
