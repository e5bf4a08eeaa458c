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


def start_run(args: argparse.Namespace, **tiny_kwargs: Any) -> tuple[random.Random, Path, str]:
    """Seed torch and a data RNG, pin threads, build the tiny SD if asked: ``(rng, out, model source)``."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.amp == "fp16" and not args.device.startswith("cuda"):
        raise SystemExit("--amp fp16 needs a CUDA device (use bf16 on the CPU)")
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


def crop_at(path: Path, size: int, fy: float, fx: float) -> np.ndarray:
    """The ``size``² crop at relative position (fy, fx) ∈ [0, 1)²: the position is drawn before the
    image is read, so worker threads can read images while the draws stay in one seeded order."""
    im = np.asarray(Image.open(path).convert("RGB"))
    h, w = im.shape[:2]
    if min(h, w) < size:
        im = pad_to_multiple(im, size)
        h, w = im.shape[:2]
    y, x = int(fy * (h - size + 1)), int(fx * (w - size + 1))
    return np.ascontiguousarray(im[y : y + size, x : x + size])


class CropBatches:
    """Batches of (crop, file) drawn from a seeded RNG; ``workers`` threads read and crop the images."""

    def __init__(self, files: list[Path], size: int, rng: random.Random, workers: int = 0) -> None:
        self.files, self.size, self.rng = files, size, rng
        self.pool = None
        if workers > 0:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(workers)

    def next(self, n: int) -> tuple[np.ndarray, list[Path]]:
        """``n`` crops stacked as N×size×size×3 uint8, and their files."""
        picks = [(self.files[self.rng.randrange(len(self.files))], self.rng.random(), self.rng.random())
                 for _ in range(n)]
        jobs = [(f, self.size, fy, fx) for f, fy, fx in picks]
        crops = list(self.pool.map(lambda j: crop_at(*j), jobs)) if self.pool else [crop_at(*j) for j in jobs]
        return np.stack(crops), [f for f, _, _ in picks]


class Accumulator:
    """One optimiser step over ``grad_accum`` micro-batches, under autocast when ``amp`` is fp16/bf16.

    fp16 scales the loss (``torch.amp.GradScaler``) so small gradients survive; bf16 needs no scaling.
    """

    def __init__(self, opt: Any, params: list[Any], device: str, amp: str = "none", grad_accum: int = 1,
                 clip: float = 1.0) -> None:
        import torch

        self.opt, self.params, self.clip = opt, params, clip
        self.grad_accum = max(1, int(grad_accum))
        self.device_type = torch.device(device).type
        self.amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp)
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=amp == "fp16" and self.device_type == "cuda")

    def autocast(self) -> Any:
        import torch

        return torch.autocast(self.device_type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def step(self, micro_loss: Any) -> float:
        """``micro_loss(i)`` → the loss of micro-batch i (called under autocast); returns the mean loss."""
        import torch

        self.opt.zero_grad()
        total = 0.0
        for i in range(self.grad_accum):
            with self.autocast():
                loss = micro_loss(i) / self.grad_accum
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return total


def diffusion_target(sched: Any, x0: Any, noise: Any, t: Any) -> Any:
    """The UNet's regression target for the scheduler's ``prediction_type``: ε, the velocity
    (``sched.get_velocity``, SD 2.1-768 and other v models) or x_0."""
    kind = str(getattr(sched.config, "prediction_type", None) or "epsilon")
    if kind == "v_prediction":
        return sched.get_velocity(x0, noise, t)
    if kind == "sample":
        return x0
    if kind != "epsilon":
        raise SystemExit(f"prediction_type {kind!r} is not supported by this trainer")
    return noise


def crop_size(requested: int, vae_factor: int, unet: Any) -> int:
    """Largest crop ≤ ``requested`` divisible by the VAE factor × the UNet's total downsampling."""
    mult = vae_factor * 2 ** (len(unet.config.block_out_channels) - 1)
    return max(mult, requested // mult * mult)


def diffusion_loop(args: argparse.Namespace, model: Any, opt: Any, step_fn: Any,
                   rng: random.Random | dict[str, random.Random], desc: str) -> None:
    """Run ``step_fn`` in :class:`~semcodec.train.loop.TrainLoop` with the flags of :func:`~semcodec.train.args.add_run_arguments`."""
    from .loop import TrainLoop

    opts = opt if isinstance(opt, dict) else {"opt": opt}  # a dict: several optimisers, checkpointed by name
    rngs = rng if isinstance(rng, dict) else {"data": rng}  # a dict: several RNG streams, restored on resume
    loop = TrainLoop(Path(args.out), model, opts, step_fn, args.steps, rngs=rngs,
                     resume=args.resume, max_minutes=args.max_minutes, ckpt_every=args.ckpt_every, desc=desc)
    loop.load()
    loop.run()
    loop.close()
