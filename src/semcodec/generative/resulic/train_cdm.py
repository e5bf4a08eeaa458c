"""Fine-tune an ε-prediction UNet into ResULIC's compression-aware diffusion model (CDM).

    python -m semcodec.generative.resulic.train_cdm --model $SEMCODEC_SD_MODEL \\
        --codec path/to/codec-sd21 --images path/to/train_images --out path/to/resulic-sd21 --steps 20000

Per step: crop → VAE latent x_0 → latent codec at a random q-step index → z_c (exactly what the
decoder will see) → N_r from the relative error of z_c (:func:`start_step_for_distortion`, as the
encoder does) → t ~ U{0..N_r} → x_t on the residual-shifted forward path → the UNet learns the
residual noise e_t = ε + (k_t/σ_t)(z_c − x_0) (see :mod:`.scheduler`); captions optional (TSV),
dropped to "" with probability 0.1 for classifier-free guidance. ``--out`` is a full model folder for
``--set model=OUT`` of the ``resulic`` profile. ``--tiny`` builds a tiny random SD (smoke run).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..components import DiffusionComponents
from ..components.training import (
    add_run_arguments,
    crop_size,
    image_files,
    random_crop,
    read_captions,
    start_run,
)
from ..latent.codec import LatentHyperprior
from ..latent.vae import load_latent_space
from .scheduler import CompressionAwareScheduler, start_step_for_distortion


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap, lr=1e-5)
    ap.add_argument("--codec", required=True, help="latent codec folder for this VAE")
    ap.add_argument("--q-max", type=int, default=12, help="largest q-step index sampled")
    args = ap.parse_args(argv)
    rng, out, model = start_run(args, controlnet=False)
    bundle = DiffusionComponents.from_sources(model)
    space = load_latent_space(None, bundle)
    codec = LatentHyperprior.load(args.codec)
    cfg = bundle.scheduler.config
    cdm = CompressionAwareScheduler(num_train_timesteps=int(cfg.num_train_timesteps), beta_start=float(cfg.beta_start),
                                    beta_end=float(cfg.beta_end), beta_schedule=str(cfg.beta_schedule))
    unet = bundle.unet
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr)
    captions = read_captions(args.captions)
    files = image_files(Path(args.images))
    size = crop_size(args.size, space.factor, unet)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        f = files[rng.randrange(len(files))]
        with torch.no_grad():
            x0 = space.encode(random_crop(f, size, rng))
            h, w = x0.shape[-2:]
            z_c = codec.decompress_latent(codec.compress_latent(x0, rng.randint(0, args.q_max)), h, w)
            rel = float(((z_c - x0) ** 2).sum() / (x0**2).sum().clamp_min(1e-12))
            n_r = max(1, start_step_for_distortion(cdm.alphas_cumprod, rel))
            cdm.set_timesteps(1, start_step=n_r)
            t = rng.randint(0, n_r)
            noise = torch.randn_like(x0)
            x_t = cdm.forward_sample(x0, z_c, noise, t)
            target = cdm.residual_noise(x0, z_c, noise, t)
            text = bundle.encode_prompt([captions.get(f.name, "") if rng.random() >= args.text_dropout else ""])
        loss = F.mse_loss(unet(x_t, torch.tensor([t]), encoder_hidden_states=text).sample, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == args.steps:
            print(f"step {step} loss {float(loss.detach()):.4f} N_r {n_r} {time.time() - t0:.0f}s", flush=True)
    unet.eval()
    unet.save_pretrained(out / "unet")
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        getattr(bundle, part).save_pretrained(out / part)
    print(f"saved CDM model to {out}")


if __name__ == "__main__":
    main()
