"""Rate-distortion of learned-codec checkpoints on held-out images, and BD-rate of each against the first.

For architecture decisions (issue 17: does a context model pay?) *before* a coding path exists, so the
rates are **estimates**: −log2 of the model's likelihoods per full-resolution pixel, computed the same
way for every model compared. Never report them as file sizes. Quality is PSNR and MS-SSIM of the
upsampled reconstruction against the full-resolution crop. Images: centre crops of BSDS500 ``val``
(the split that chooses weights), at the scales Kodak is coded at in 0.005–0.1 bpp (×2, ×4).

usage: python scripts/compare_lic_models.py A.pt|WEIGHTS_DIR B.pt|WEIGHTS_DIR ... [--images 48] [--crop 256]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcodec.eval.bdrate import bd_rate
from semcodec.image.learned.models import build_model, downscale
from semcodec.paths import shared_data_dir
from semcodec.train.data import CropSampler


def load(path: Path) -> torch.nn.Module:
    """A trainer checkpoint (``last.pt``) or an exported weights folder."""
    if path.is_dir():
        from safetensors.torch import load_file

        cfg = json.loads((path / "config.json").read_text())
        model = build_model(cfg["model"], **cfg.get("model_cfg", {}))
        model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    else:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(ck["meta"]["model"], **ck["meta"]["model_cfg"])
        model.load_state_dict(ck["model"], strict=False)
    return model.eval()


@torch.no_grad()
def curve(model: torch.nn.Module, x: torch.Tensor, scale: int, rates: list[float]) -> dict[str, list[float]]:
    from pytorch_msssim import ms_ssim

    out: dict[str, list[float]] = {"bpp_est": [], "psnr": [], "ms_ssim": []}
    for r in rates:
        bpp, psnr, ms = [], [], []
        for i in range(0, x.shape[0], 8):
            xb = x[i : i + 8]
            o = model(downscale(xb, scale), torch.full((xb.shape[0],), r))
            x_hat = model.upsample(o["x_hat"], scale).clamp(0, 1)
            bits = sum(-torch.log2(v).flatten(1).sum(1) for v in o["likelihoods"].values())
            bpp += (bits / (xb.shape[-1] * xb.shape[-2])).tolist()
            q = (x_hat * 255).round() / 255  # the decoder's 8-bit output
            psnr += (-10 * torch.log10((q - xb).pow(2).flatten(1).mean(1))).tolist()
            ms += ms_ssim(q, xb, data_range=1.0, size_average=False).tolist()
        out["bpp_est"].append(float(np.mean(bpp)))
        out["psnr"].append(float(np.mean(psnr)))
        out["ms_ssim"].append(float(np.mean(ms)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="checkpoints or weights folders; the first is the anchor")
    ap.add_argument("--data", type=Path, default=None, help="held-out images (default: <shared data>/bsds500/val)")
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--scales", default="2,4")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = args.data or (shared_data_dir() or Path("../shared/data")) / "bsds500" / "val"
    x = CropSampler(data, args.crop, None, seed=1).center_crops(args.images)
    rates = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    res: dict[str, Any] = {"images": int(x.shape[0]), "crop": args.crop, "rates_are": "estimated (likelihoods)",
                           "models": [str(m) for m in args.models], "curves": {}, "bd_rate_vs_first": {}}
    curves = {}
    for m in args.models:
        model = load(m)
        curves[str(m)] = {s: curve(model, x, int(s), rates) for s in args.scales.split(",")}
    res["curves"] = curves
    anchor = curves[str(args.models[0])]
    for m in args.models[1:]:
        c = curves[str(m)]
        res["bd_rate_vs_first"][str(m)] = {
            f"s{s}_{metric}": bd_rate(anchor[s]["bpp_est"], anchor[s][metric], c[s]["bpp_est"], c[s][metric]).value
            for s in anchor for metric in ("psnr", "ms_ssim")}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
