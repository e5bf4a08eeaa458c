"""Fine-tune an ε-prediction UNet into ResULIC's compression-aware diffusion model (CDM).

    semcodec train resulic-cdm --model SD_FOLDER --codec CODEC_FOLDER --images TRAIN_IMAGES \\
        --out runs/resulic-sd21 --steps 20000

Per step: crop → VAE latent x_0 → latent codec at a random q-step index → z_c (exactly what the
decoder will see) → N_r from the relative error of z_c (:func:`start_step_for_distortion`, as the
encoder does) → t ~ U{0..N_r} → x_t on the residual-shifted forward path → the UNet learns the
residual noise e_t = ε + (k_t/σ_t)(z_c − x_0) (see :mod:`semcodec.generative.resulic.scheduler`); captions optional (TSV),
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
from .diffusion import crop_size, diffusion_loop, image_files, random_crop, read_captions, start_run


def train(args: argparse.Namespace) -> None:
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
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    size = crop_size(args.size, space.factor, unet)

    def step_fn(step: int) -> dict[str, float]:
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
        return {"loss": float(loss.detach()), "N_r": n_r}

    diffusion_loop(args, unet, opt, step_fn, rng, "train resulic-cdm")
    unet.eval()
    unet.save_pretrained(out / "unet")
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        getattr(bundle, part).save_pretrained(out / part)
    print(f"saved CDM model to {out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semcodec.train.resulic_cdm", description=__doc__.splitlines()[0])
    resulic_cdm_arguments(ap)
    train(ap.parse_args(argv))


if __name__ == "__main__":
    main()
