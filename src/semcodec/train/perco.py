"""Train PerCo's hyper-encoder + EMA codebook + null embedding and fine-tune the UNet (Careil et al. 2024).

    semcodec train perco --model stabilityai/stable-diffusion-2-1-base --rate 0.0313 \\
        --images ../shared/data/bsds500/train --captions caps.tsv --out runs/perco --steps 20000

Per step: random crop → VAE latent z → hyper-encoder of the chosen rate point → e → nearest codewords
(straight-through; the codebook takes an EMA step) → z_l upsampled to the latent grid;
x_t = add_noise(z, ε, t); with probability 0.1 (``--text-dropout``) a sample's caption embedding is
replaced by the learned null embedding ∅, so text-only classifier-free guidance works at decode time.
Loss ‖target − UNet([x_t, z_l], t, c)‖² + β‖e − sg(q)‖², the target being what the scheduler's
``prediction_type`` asks for: the velocity v = √ᾱ_t·ε − √(1−ᾱ_t)·z for v models (SD 2.1), ε otherwise.
``--train linear`` (the paper) fine-tunes the UNet's linear layers and its first conv (whose 32 map
inputs are new and randomly initialised); ``--train all`` every UNet weight.
``--device --batch --grad-accum --amp --workers`` as for every diffusion trainer. ``--out`` becomes a
complete model folder for ``--set model=OUT`` of the ``perco`` profile. Captions: optional TSV
``filename<TAB>caption`` (missing → ∅, as at decode time without a caption). ``--tiny`` builds a tiny
random SD first (smoke).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..generative.components import DiffusionComponents
from ..generative.latent.vae import is_taef2, load_latent_space
from ..generative.perco.head import PercoHead
from ..generative.perco.rates import rate_point
from ..generative.perco.unet import expand_unet_inputs
from .args import perco_arguments
from .data import image_files
from .diffusion import (
    Accumulator,
    CropBatches,
    crop_size,
    diffusion_loop,
    diffusion_target,
    read_captions,
    start_run,
)


def caption_dropout(rng: random.Random, n: int, p: float) -> list[bool]:
    """Which of ``n`` samples train with ∅ instead of their caption (each independently, probability p)."""
    return [rng.random() < p for _ in range(n)]


def with_null(text: torch.Tensor, null: torch.Tensor, drop: list[bool]) -> torch.Tensor:
    """Caption embeddings (B×L×E) with the rows in ``drop`` replaced by ∅ (kept differentiable in ∅)."""
    mask = torch.tensor(drop, device=text.device)[:, None, None]
    return torch.where(mask, null[None, : text.shape[1]].to(text.dtype), text)


def select_trainable(unet: nn.Module, mode: str) -> list[nn.Parameter]:
    """Mark and return the UNet weights fine-tuned in ``mode`` (linear | all | conv_in | none)."""
    unet.requires_grad_(mode == "all")
    if mode == "linear":
        for m in unet.modules():
            if isinstance(m, nn.Linear):
                m.requires_grad_(True)
    if mode in ("linear", "conv_in"):
        unet.conv_in.requires_grad_(True)
    return [p for p in unet.parameters() if p.requires_grad]


def perco_loss(unet: nn.Module, sched: Any, z: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
               z_l: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Diffusion loss of the map- and text-conditioned UNet, target by the scheduler's prediction_type."""
    pred = unet(torch.cat([sched.add_noise(z, noise, t), z_l], 1), t, encoder_hidden_states=cond).sample
    return F.mse_loss(pred.float(), diffusion_target(sched, z, noise, t).float())


def train(args: argparse.Namespace) -> None:
    try:
        rate_point(args.rate)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    rng, out, model = start_run(args, latent_channels=32 if is_taef2(args.vae) else 4)
    resume = (out / "unet").is_dir() and (out / "perco").is_dir()
    bundle = DiffusionComponents.from_sources(str(out) if resume else model, device=args.device)
    space = load_latent_space(args.vae if is_taef2(args.vae) else None, bundle)
    unet = bundle.unet
    text_len = min(int(bundle.tokenizer.model_max_length), int(bundle.text_encoder.config.max_position_embeddings))
    head = PercoHead.load(out / "perco") if resume else PercoHead(
        latent_channels=space.channels, rate=args.rate, width=args.width, blocks=args.blocks,
        code_dim=args.code_dim, text_len=text_len, text_dim=int(bundle.text_encoder.config.hidden_size),
        decay=args.ema_decay, restart_below=args.dead_code_restart, seed=args.seed)
    head = head.to(bundle.device)
    if not resume:  # ∅ starts as the empty prompt's embedding, then is learned through caption dropout
        with torch.no_grad():
            head.null_text.copy_(bundle.encode_prompt([""])[0])
    expand_unet_inputs(unet, head.D, seed=args.seed)
    head.requires_grad_(True).train()
    unet.train()
    params = list(head.parameters()) + select_trainable(unet, args.train)
    opt = torch.optim.AdamW(params, lr=args.lr)
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    sched = bundle.scheduler
    batches = CropBatches(files, crop_size(args.size, space.factor, unet), rng, args.workers)
    acc = Accumulator(opt, params, args.device, args.amp, args.grad_accum)

    def micro_loss(_i: int) -> torch.Tensor:
        crops, names = batches.next(args.batch)
        texts = [captions.get(f.name, "") for f in names]
        with torch.no_grad():
            z = bundle.place(torch.cat([space.encode(c) for c in crops]))
            text = bundle.encode_prompt(texts)
        drop = [d or not c for d, c in zip(caption_dropout(rng, len(names), args.text_dropout), texts, strict=True)]
        zq, commit = head(z, args.commitment)
        noise = torch.randn_like(z)
        t = torch.randint(0, int(sched.config.num_train_timesteps), (len(names),), device=z.device)
        return perco_loss(unet, sched, z, noise, t, head.upsample(zq, z.shape[-2:]), with_null(text, head.null_text, drop)) \
            + commit.float()

    def step_fn(step: int) -> dict[str, float]:
        return {"loss": acc.step(micro_loss)}

    diffusion_loop(args, torch.nn.ModuleDict({"unet": unet, "head": head}), opt, step_fn, rng, "train perco")
    unet.eval()
    head.eval()
    unet.save_pretrained(out / "unet")
    head.save(out / "perco")
    if not resume:
        bundle.text_encoder.save_pretrained(out / "text_encoder")
        bundle.tokenizer.save_pretrained(out / "tokenizer")
        bundle.scheduler.save_pretrained(out / "scheduler")
        if not is_taef2(args.vae):
            bundle.vae.save_pretrained(out / "vae")
    print(f"saved PerCo model to {out}")


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.perco", __doc__, perco_arguments, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
