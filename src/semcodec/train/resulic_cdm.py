"""Fine-tune a UNet (ε or v prediction) into ResULIC's compression-aware diffusion model (CDM).

    semcodec train resulic-cdm --model SD_FOLDER --codec CODEC_FOLDER --images TRAIN_IMAGES \\
        --out runs/resulic-sd21 --steps 20000

Per step: crop → VAE latent x_0 → latent codec at a random q-step index → z_c (exactly what the
decoder will see) → N_r from the relative error of z_c (:func:`start_step_for_distortion`, as the
encoder does) → t ~ U{0..N_r} → x_t on the residual-shifted forward path → the UNet learns the
residual noise e_t = ε + (k_t/σ_t)(z_c − x_0) (see :mod:`semcodec.generative.resulic.scheduler`), expressed in
the UNet's ``prediction_type`` (``CompressionAwareScheduler.training_target``); captions optional (TSV),
dropped to "" with probability 0.1 for classifier-free guidance. ``--out`` is a full model folder for
``--set model=OUT`` of the ``resulic`` profile. ``--tiny`` builds a tiny random SD (smoke run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from ..generative.components import DiffusionComponents
from ..generative.latent.codec import LatentHyperprior
from ..generative.latent.vae import load_latent_space
from ..generative.resulic.scheduler import CompressionAwareScheduler, start_step_for_distortion
from .args import resulic_cdm_arguments
from .diffusion import (
    Accumulator,
    CropBatches,
    crop_size,
    diffusion_loop,
    image_files,
    read_captions,
    start_run,
)


def train(args: argparse.Namespace) -> None:
    rng, out, model = start_run(args, controlnet=False)
    bundle = DiffusionComponents.from_sources(model, device=args.device)
    space = load_latent_space(None, bundle)
    codec = LatentHyperprior.load(args.codec)  # stays on the CPU in float32: it codes exactly like the profile
    cdm = CompressionAwareScheduler.for_model(bundle.scheduler.config)
    unet = bundle.unet
    unet.train().requires_grad_(True)
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr)
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    batches = CropBatches(files, crop_size(args.size, space.factor, unet), rng, args.workers)
    acc = Accumulator(opt, params, args.device, args.amp, args.grad_accum)
    last: dict[str, float] = {}

    def sample(crop: object, name: str) -> tuple[torch.Tensor, torch.Tensor, int, str]:
        """(x_t, target, t, caption) of one crop, on the path the decoder will replay."""
        x0 = space.encode(crop).to("cpu", torch.float32)
        h, w = x0.shape[-2:]
        z_c = codec.decompress_latent(codec.compress_latent(x0, rng.randint(0, args.q_max)), h, w)
        rel = float(((z_c - x0) ** 2).sum() / (x0**2).sum().clamp_min(1e-12))
        n_r = max(1, start_step_for_distortion(cdm.alphas_cumprod, rel))
        cdm.set_timesteps(1, start_step=n_r)
        t = rng.randint(0, n_r)
        noise = torch.randn_like(x0)
        last["N_r"] = n_r
        text = captions.get(name, "") if rng.random() >= args.text_dropout else ""
        return cdm.forward_sample(x0, z_c, noise, t), cdm.training_target(x0, z_c, noise, t), t, text

    def micro_loss(_i: int) -> torch.Tensor:
        crops, files = batches.next(args.batch)
        with torch.no_grad():
            items = [sample(c, f.name) for c, f in zip(crops, files, strict=True)]
            text = bundle.encode_prompt([it[3] for it in items])
        x_t = bundle.place(torch.cat([it[0] for it in items]))
        target = bundle.place(torch.cat([it[1] for it in items]))
        t = torch.tensor([it[2] for it in items], device=x_t.device)
        return F.mse_loss(unet(x_t, t, encoder_hidden_states=text).sample.float(), target.float())

    def step_fn(step: int) -> dict[str, float]:
        return {"loss": acc.step(micro_loss), "N_r": last.get("N_r", 0)}

    diffusion_loop(args, unet, opt, step_fn, rng, "train resulic-cdm")
    unet.eval()
    unet.save_pretrained(out / "unet")
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        getattr(bundle, part).save_pretrained(out / part)
    print(f"saved CDM model to {out}")


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.resulic_cdm", __doc__, resulic_cdm_arguments, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
