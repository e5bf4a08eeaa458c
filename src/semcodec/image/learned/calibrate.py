"""Pick the downscale used for each bpp range (``scale_policy`` in config.json) on held-out images.

For every image, scale s and a grid of rate codes, the image is really coded and decoded; the mean
(bpp, quality) curve per scale is interpolated on a log-bpp grid, and each grid point takes the scale
with the best quality score for the metric the weights were optimised for (``psnr``, ``ms-ssim`` in dB,
or ``both``: their sum, for weights trained on a mix). Run on BSDS500 *val*, never on the Kodak test set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...paths import portable_paths
from .coding import LicCoder
from .profile import LicProfile


def _quality(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from pytorch_msssim import ms_ssim

    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    psnr = 10 * np.log10(255**2 / max(mse, 1e-10))
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float()
    ms = float(ms_ssim(ta, tb, data_range=255, win_size=11 if min(a.shape[:2]) > 160 else 7))
    return psnr, ms


METRICS = ("psnr", "ms-ssim", "both")


def metric_of(cfg: dict[str, Any]) -> str:
    """The calibration metric matching the weights' training terms (``train.terms`` in config.json)."""
    terms = set(cfg.get("train", {}).get("terms", {}))
    if terms == {"ms-ssim"}:
        return "ms-ssim"
    if terms and terms <= {"mse", "mse-paper"}:
        return "psnr"
    return "both"


def _score(psnr: float, msssim: float, metric: str) -> float:
    ms_db = -10 * np.log10(max(1 - msssim, 1e-6))
    return {"psnr": psnr, "ms-ssim": ms_db, "both": psnr + ms_db}[metric]


def calibrate(weights: str | Path, images: list[np.ndarray], rate_step: int = 16,
              metric: str = "both") -> dict[str, Any]:
    prof = LicProfile(weights=str(weights))
    coder: LicCoder = prof.coder
    codes = sorted(set(range(0, coder.max_rate_code + 1, rate_step)) | {coder.max_rate_code})
    curves: dict[int, list[tuple[float, float, float]]] = {}
    for s in prof.model.scales:
        pts = []
        for code in codes:
            bpps, psnrs, mss = [], [], []
            for img in images:
                h, w = img.shape[:2]
                c = coder.encode_latent(coder.analyse(img, s), s, code)
                out = coder.decode(c, w, h)
                from .profile import _cost

                bpps.append(8 * _cost(c) / (h * w))
                p, m = _quality(out, img)
                psnrs.append(p)
                mss.append(m)
            pts.append((float(np.mean(bpps)), float(np.mean(psnrs)), float(np.mean(mss))))
        curves[s] = pts
    grid = np.geomspace(0.002, 0.5, 41)
    best: list[int] = []
    for g in grid:
        scores = {}
        for s, pts in curves.items():
            b = np.log([p[0] for p in pts])
            if np.log(g) < b.min():
                continue
            score = [_score(p[1], p[2], metric) for p in pts]
            scores[s] = float(np.interp(np.log(g), b, score))
        best.append(max(scores, key=scores.get) if scores else max(curves))
    policy: list[list[float]] = []
    for g, s in zip(grid, best, strict=True):
        if not policy or policy[-1][1] != s:
            policy.append([0.0 if not policy else float(g), int(s)])
    return {"scale_policy": policy, "metric": metric, "curves": {str(k): v for k, v in curves.items()}}


def run(weights: str, data: str, limit: int, out_json: str | None, metric: str | None = None) -> dict[str, Any]:
    from PIL import Image

    files = sorted(p for p in Path(data).iterdir() if p.suffix.lower() in (".jpg", ".png"))[:limit]
    images = [np.asarray(Image.open(p).convert("RGB")).copy() for p in files]
    cfg_path = Path(weights) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    metric = metric or metric_of(cfg)
    res = calibrate(weights, images, metric=metric)
    cfg["scale_policy"] = res["scale_policy"]
    cfg["calibration"] = {"data": portable_paths(str(data)), "images": len(images), "metric": metric,
                          "curves": res["curves"]}
    cfg_path.write_text(json.dumps(cfg, indent=2))
    if out_json:
        Path(out_json).write_text(json.dumps(res, indent=2))
    return res
