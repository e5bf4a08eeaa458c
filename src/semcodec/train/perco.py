"""Train PerCo's hyper-encoder + codebook + null embedding and fine-tune the UNet (Careil et al. 2024).

    semcodec train perco --model stabilityai/stable-diffusion-2-1-base \\
        --images ../shared/data/bsds500/train --captions caps.tsv --out runs/perco --steps 20000

Per step: random crop → VAE latent z; random grid (so one head serves every rate) → hyper-latent e
→ VQ (straight-through) → upsampled map z_l; x_t = add_noise(z, ε, t); the caption embedding is
replaced by the learned null embedding with probability 0.1 (``--text-dropout``) so text-only
classifier-free guidance works at decode time; loss ‖target − ε_θ([x_t, z_l], t, c)‖² + VQ loss, with
the target the scheduler's ``prediction_type`` asks for (ε, or the velocity of a v model such as SD 2.1-768).
``--device --batch --grad-accum --amp --workers`` as for every diffusion trainer.
The UNet's first conv gets D extra randomly initialised inputs on the first run. ``--out`` becomes a
complete model folder for ``--set model=OUT`` of the ``perco`` profile. Captions: optional TSV
``filename<TAB>caption`` (missing → empty caption). ``--tiny`` builds a tiny random SD first (smoke).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from ..generative.components import DiffusionComponents
from ..generative.latent.vae import is_taef2, load_latent_space
from ..generative.latent.vq import PercoHead, grid_for
from ..generative.perco.unet import expand_unet_inputs
from .args import perco_arguments
from .diffusion import (
    Accumulator,
    CropBatches,
    crop_size,
    diffusion_loop,
    diffusion_target,
    image_files,
    read_captions,
    start_run,
)

TRAIN_CELLS = (1, 2, 4, 8)


def train(args: argparse.Namespace) -> None:
    rng, out, model = start_run(args, latent_channels=32 if is_taef2(args.vae) else 4)
    resume = (out / "unet").is_dir() and (out / "perco").is_dir()
    bundle = DiffusionComponents.from_sources(str(out) if resume else model, device=args.device)
    space = load_latent_space(args.vae if is_taef2(args.vae) else None, bundle)
    unet = bundle.unet
    text_len = min(int(bundle.tokenizer.model_max_length), int(bundle.text_encoder.config.max_position_embeddings))
    head = PercoHead.load(out / "perco") if resume else PercoHead(
        latent_channels=space.channels, code_dim=args.code_dim, codebook_size=args.codebook,
        text_len=text_len, text_dim=int(bundle.text_encoder.config.hidden_size))
    head = head.to(bundle.device)
    if not resume:  # ∅ starts as the empty prompt's embedding, then is learned through text dropout
        with torch.no_grad():
            head.null_text.copy_(bundle.encode_prompt([""])[0])
    expand_unet_inputs(unet, head.D, seed=args.seed)
    head.requires_grad_(True).train()
    unet.train()
    unet.requires_grad_(args.train_unet == "all")
    if args.train_unet == "conv_in":
        unet.conv_in.requires_grad_(True)
    params = list(head.parameters()) + [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr)
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    sched = bundle.scheduler
    batches = CropBatches(files, crop_size(args.size, space.factor, unet), rng, args.workers)
    acc = Accumulator(opt, params, args.device, args.amp, args.grad_accum)

    def micro_loss(_i: int) -> torch.Tensor:
        crops, names = batches.next(args.batch)
        with torch.no_grad():
            z = bundle.place(torch.cat([space.encode(c) for c in crops]))
            text = bundle.encode_prompt([captions.get(f.name, "") for f in names])
        drop = torch.tensor([rng.random() < args.text_dropout for _ in names], device=z.device)
        text = torch.where(drop[:, None, None], head.null_text[None, : text.shape[1]].to(text.dtype), text)
        h, w = z.shape[-2:]
        e = head.features(z, grid_for(h, w, rng.choice(TRAIN_CELLS)))
        _, zq = head.quantize(e)
        noise = torch.randn_like(z)
        t = torch.randint(0, int(sched.config.num_train_timesteps), (len(names),), device=z.device)
        pred = unet(torch.cat([sched.add_noise(z, noise, t), head.upsample(zq, (h, w))], 1), t,
                    encoder_hidden_states=text).sample
        return F.mse_loss(pred.float(), diffusion_target(sched, z, noise, t).float()) + head.vq_loss(e.float())

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
