"""How much better could the lossless residual model code an image if it were fitted to that image alone?

Per image, at one base quality, bits per subpixel of base + residual (teacher-forced, whole image):

- ``trained``: the packaged head as it is;
- ``adapter``: the per-image adapter the encoder sends (bias form, then the low-rank form when it pays,
  ``coder.fit_residual_adapter``), its bytes included: what the profile codes (within ~0.1 %);
- ``oracle_head``: every parameter of the mixture head fine-tuned on the image (Adam, ``--steps``);
- ``oracle_all``: every parameter of the model fine-tuned on the image's own 64×64 crops.

The two oracles leave out the cost of sending what they fitted (tens of kB to MB), so they are not
codecs: they bound what any per-image adaptation of this architecture can reach. An image where even
``oracle_all`` is above JPEG-XL says the gap is the model's capacity or context, not its training data
or its adapter. JPEG-XL: lossless at effort 9, real bytes. Kodak is used here to diagnose, never to
choose weights.

    python scripts/lossless_headroom.py [--weights DIR] [--quality 40] [--steps 300] [IMAGES ...]

Without IMAGES: Kodak kodim03, 09, 15, 21 (as ``lossless_domain_gap.py``). Minutes per image on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
from pathlib import Path

import imagecodecs
import numpy as np
import torch
from PIL import Image

from semcodec.lossless.base_codec import encode_base
from semcodec.lossless.coder import fit_residual, fit_residual_adapter
from semcodec.lossless.mixture import gmm_bits
from semcodec.lossless.model import ResidualLM, load_model
from semcodec.lossless.profile import default_weights
from semcodec.paths import shared_data_dir

CROP, MARGIN, CROPS = 64, 8, 8  # oracle_all trains on CROPS random crops per step, as the trainer does


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].contiguous()


def head_bits(model: ResidualLM, tokens: list[torch.Tensor]) -> float:
    h, r, x, xl = tokens
    with torch.no_grad():
        return sum(float(gmm_bits(*model.head(h, c, r), x[:, c], xl[:, c]).sum()) for c in range(3))


def oracle_head(model: ResidualLM, tokens: list[torch.Tensor], steps: int) -> float:
    """Residual bits after fine-tuning every head parameter on the image's own (fixed) backbone states."""
    m = copy.deepcopy(model)
    h, r, x, xl = tokens
    opt = torch.optim.Adam(m.head.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, h.shape[0], (16384,), generator=gen)
        loss = sum(gmm_bits(*m.head(h[i], c, r[i]), x[i, c], xl[i, c]).mean() for c in range(3))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head_bits(m, tokens)


def oracle_all(model: ResidualLM, x: np.ndarray, xl: np.ndarray, quality: int, steps: int) -> float:
    """Residual bits after fine-tuning the whole model on random crops of the image itself."""
    m = copy.deepcopy(model).train()
    pad = ((MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0))
    xp, xlp = to_tensor(np.pad(x, pad, mode="edge")), to_tensor(np.pad(xl, pad, mode="edge"))
    q = torch.tensor([m.quality_index(quality)] * CROPS)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    p, size = m.cfg.patch, CROP + 2 * MARGIN
    for _ in range(steps):
        ys = torch.randint(0, (x.shape[0] - CROP) // p + 1, (CROPS,), generator=gen) * p
        xs = torch.randint(0, (x.shape[1] - CROP) // p + 1, (CROPS,), generator=gen) * p
        xb = torch.cat([xp[..., a : a + size, b : b + size] for a, b in zip(ys.tolist(), xs.tolist(), strict=True)])
        xlb = torch.cat([xlp[..., a : a + size, b : b + size] for a, b in zip(ys.tolist(), xs.tolist(), strict=True)])
        loss = m(xb, xlb, q, margin=MARGIN).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    return fit_residual(m, x, xl, quality, adapt_steps=0).bits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--quality", type=int, default=40)
    ap.add_argument("--steps", type=int, default=300, help="Adam steps of each oracle fine-tune")
    args = ap.parse_args()
    model = load_model(args.weights or default_weights())
    files = args.images
    if not files:
        data = shared_data_dir()
        if data is None:
            raise SystemExit("needs ../shared/data (or SEMCODEC_DATA), or image paths")
        files = sorted(glob.glob(str(data / "kodak" / "*.png")))[2:24:6]
    p = model.cfg.patch
    rows = []
    for f in files:
        x = np.asarray(Image.open(f).convert("RGB"))
        x = np.ascontiguousarray(x[: x.shape[0] // p * p, : x.shape[1] // p * p])
        base, xl = encode_base(x, "heif", args.quality)
        n, base_bits = x.size, 8.0 * len(base)
        fit = fit_residual_adapter(model, x, xl, args.quality)
        row = {"image": Path(f).name, "quality": args.quality, "base": base_bits / n,
               "trained": head_bits(model, fit.tokens) / n, "adapter": fit.bits / n,
               "oracle_head": oracle_head(model, fit.tokens, args.steps) / n,
               "oracle_all": oracle_all(model, x, xl, args.quality, args.steps) / n,
               "jpegxl_e9": 8.0 * len(imagecodecs.jpegxl_encode(x, lossless=True, effort=9)) / n}
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        rows.append(row)
    cols = ("trained", "adapter", "oracle_head", "oracle_all")
    print("\n| image | base | " + " | ".join(f"{c} (total)" for c in cols) + " | JPEG-XL e9 |")
    print("|---" * (len(cols) + 3) + "|")
    for r in [*rows, {"image": "mean", **{k: float(np.mean([r[k] for r in rows])) for k in ("base", *cols, "jpegxl_e9")}}]:
        print(f"| {r['image']} | {r['base']:.3f} | " + " | ".join(f"{r['base'] + r[c]:.3f}" for c in cols)
              + f" | {r['jpegxl_e9']:.3f} |")


if __name__ == "__main__":
    main()
