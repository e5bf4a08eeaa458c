"""``calibrate-resulic-nr``: fit ResULIC's rate point → N_r table for one diffusion model.

For each q index (rate point of the latent codec) and each candidate N_r, every image is coded at that
q index and decoded by the CDM from that N_r; the table keeps, per rate point, the N_r with the lowest
mean distortion (``mse`` in pixels, or ``lpips`` = LPIPS-Alex when installed) and is written as ``resulic_nr.json``
in the model folder, where the profile finds it (``nr_mode=table``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def add_commands(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calibrate-resulic-nr", help="fit the resulic rate point -> N_r table of a diffusion model")
    c.add_argument("images", help="folder of calibration images")
    c.add_argument("--model", required=True, help="diffusers model folder (the table is written into it)")
    c.add_argument("--codec", default=None, help="latent codec folder (default: the profile's)")
    c.add_argument("--q", type=int, nargs="+", default=[0, 2, 4, 6, 8], help="q indices (rate points) to fit")
    c.add_argument("--candidates", type=int, nargs="+", default=[50, 100, 200, 300, 400, 500, 600, 800],
                   help="N_r values tried at each rate point")
    c.add_argument("--steps", type=int, default=4, help="CDM steps used for the fit (as the files will use)")
    c.add_argument("--metric", choices=("mse", "lpips"), default="mse", help="distortion minimised")
    c.add_argument("--limit", type=int, default=8, help="at most this many images")
    c.add_argument("--out", default=None, help="write the table here instead of the model folder")
    c.set_defaults(func=_cmd)


def _distance(metric: str) -> Any:
    if metric == "mse":
        return lambda a, b: float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    from ..metrics import get_metric  # lazily: LPIPS loads torchvision weights

    m = get_metric("lpips-alex")
    return lambda a, b: float(m.compute(b, a))


def fit_nr_table(images: Sequence[np.ndarray], model: str, q_indices: Sequence[int], candidates: Sequence[int],
                 steps: int = 4, metric: str = "mse", codec: str | None = None, **options: Any) -> Any:
    """The table (not yet saved): per q index, the candidate N_r with the lowest mean distortion."""
    import torch

    from ..generative.components import fixed_threads
    from ..generative.components.sampling import pad_to_multiple
    from ..generative.resulic.nr_table import NrTable
    from ..generative.resulic.profile import ResulicProfile, _digest

    prof = ResulicProfile(model=model, steps=steps, **({"codec": codec} if codec else {}), **options)
    dist = _distance(metric)
    T = int(prof.scheduler.config.num_train_timesteps)
    cands = sorted({int(n) for n in candidates if 0 <= int(n) < T})
    points = []
    for k in q_indices:
        scores = {n: 0.0 for n in cands}
        bpp = 0.0
        for img in images:
            h, w = img.shape[:2]
            z = prof._encode_latent(pad_to_multiple(img, prof._multiple()))
            with fixed_threads(), torch.no_grad():
                payload = prof.codec.compress_latent(z, int(k))
                z_c = prof.codec.decompress_latent(payload, *z.shape[-2:])
            bpp += 8 * len(payload) / (h * w) / len(images)
            for n in cands:
                with fixed_threads(), torch.no_grad():
                    out = prof.space.decode(prof.refine(z_c, "", n, steps, 1.0, prof.seed))[:h, :w]
                scores[n] += dist(out, img) / len(images)
        best = min(cands, key=lambda n: (scores[n], n))
        points.append({"q_index": int(k), "bpp": round(bpp, 5), "n_r": best,
                       "distortion": {str(n): round(v, 6) for n, v in scores.items()}})
    return NrTable(codec=_digest(prof.codec_dir / "model.safetensors"), points=points, steps=steps, metric=metric,
                   extra={"images": len(images)})


def _cmd(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..generative.resulic.nr_table import TABLE_NAME

    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.limit]
    if not files:
        print(f"no images in {args.images}")
        return 2
    images = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    table = fit_nr_table(images, args.model, args.q, args.candidates, steps=args.steps, metric=args.metric,
                         codec=args.codec)
    out = table.save(args.out or Path(args.model) / TABLE_NAME)
    for p in table.points:
        print(f"q {p['q_index']}: {p['bpp']:.4f} bpp -> N_r {p['n_r']}")
    print(f"wrote {out}")
    return 0
