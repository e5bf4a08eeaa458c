"""What the diffusion fine-tuning trainers (``train.perco``, ``train.resulic_cdm``) share: run setup,
data, crop size (their flags: :func:`~semcodec.train.args.add_run_arguments`).

PerCo's trainer and ResULIC's CDM trainer differ only in their model pieces and loss; the plumbing
around them (seeded run, optional tiny random SD for smoke runs, image folder, caption TSV, crops
that fit the VAE × UNet downsampling) lives here once.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..generative.components.sampling import pad_to_multiple

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def start_run(args: argparse.Namespace, **tiny_kwargs: Any) -> tuple[random.Random, Path, str]:
    """Seed torch and a data RNG, pin threads, build the tiny SD if asked: ``(rng, out, model source)``."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    model = args.model
    if args.tiny:
        from ..generative.components.tiny import build_tiny_sd

        model = str(build_tiny_sd(out / "base", **tiny_kwargs))
    if not model:
        raise SystemExit("give --model (or --tiny)")
    return random.Random(args.seed), out, model


def read_captions(path: str | None) -> dict[str, str]:
    captions: dict[str, str] = {}
    if path:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                captions[k] = v
    return captions


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def random_crop(path: Path, size: int, rng: random.Random) -> np.ndarray:
    """A ``size``² RGB crop (padded first when the image is smaller)."""
    im = np.asarray(Image.open(path).convert("RGB"))
    h, w = im.shape[:2]
    if min(h, w) < size:
        im = pad_to_multiple(im, size)
        h, w = im.shape[:2]
    y, x = rng.randrange(h - size + 1), rng.randrange(w - size + 1)
    return np.ascontiguousarray(im[y : y + size, x : x + size])


def crop_size(requested: int, vae_factor: int, unet: Any) -> int:
    """Largest crop ≤ ``requested`` divisible by the VAE factor × the UNet's total downsampling."""
    mult = vae_factor * 2 ** (len(unet.config.block_out_channels) - 1)
    return max(mult, requested // mult * mult)


def diffusion_loop(args: argparse.Namespace, model: Any, opt: Any, step_fn: Any, rng: random.Random, desc: str) -> None:
    """Run ``step_fn`` in :class:`~semcodec.train.loop.TrainLoop` with the flags of :func:`~semcodec.train.args.add_run_arguments`."""
    from .loop import TrainLoop

    loop = TrainLoop(Path(args.out), model, {"opt": opt}, step_fn, args.steps, rngs={"data": rng},
                     resume=args.resume, max_minutes=args.max_minutes, ckpt_every=args.ckpt_every, desc=desc)
    loop.load()
    loop.run()
    loop.close()
