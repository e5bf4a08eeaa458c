"""Train the latent hyperprior (:mod:`semcodec.generative.latent.codec`) on VAE latents of BSDS500 (TAEF2 by default, any VAE with --vae).

    semcodec train latent-codec --out runs/latent_codec --minutes 70

Steps: (1) encode BSDS500 train (and 20 val images) with the VAE once, cached in ``<out>/latents.pt``;
(2) train on random 32×32 latent crops (= 256×256 pixels) with flips, loss λ·MSE(ẑ, z) + bpp, where
bpp counts bits per *image* pixel (h·w·64); (3) :class:`~semcodec.train.loop.TrainLoop` validates and checkpoints every ``--ckpt-every`` steps
(resumed on the next call);
(4) ``--export DIR`` writes model.safetensors + config.json of the latest checkpoint.
Runs on one thread so it can share the machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..generative.latent.codec import LatentHyperprior
from ..generative.latent.vae import load_latent_space
from ..paths import shared_data_dir
from .args import latent_codec_arguments
from .loop import TrainLoop


def _load_rgb(path: Path) -> np.ndarray:
    im = np.asarray(Image.open(path).convert("RGB"))
    h, w = im.shape[0] // 8 * 8, im.shape[1] // 8 * 8
    return np.ascontiguousarray(im[:h, :w])


@torch.no_grad()
def cache_latents(out: Path, n_train: int = 200, n_val: int = 20, vae: str = "taef2") -> dict[str, list[torch.Tensor]]:
    cache = out / "latents.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    data = shared_data_dir()
    if data is None:
        raise SystemExit("shared data not found (set SEMCODEC_DATA)")
    space = load_latent_space(vae)
    res: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
    parts = out / "latent_parts"  # one file per image: an interrupted run resumes where it stopped
    parts.mkdir(exist_ok=True)
    for split, files in (("train", sorted((data / "bsds500/train").glob("*.jpg"))[:n_train]),
                         ("val", sorted((data / "bsds500/val").glob("*.jpg"))[:n_val])):
        for i, f in enumerate(files):
            part = parts / f"{split}_{f.stem}.pt"
            if part.is_file():
                z = torch.load(part, weights_only=True)
            else:
                z = space.encode(_load_rgb(f))[0]
                # landscape orientation for easy cropping
                z = z if z.shape[1] <= z.shape[2] else z.transpose(1, 2).contiguous()
                torch.save(z, part)
            res[split].append(z)
            if i % 10 == 0:
                print(f"encode {split} {i}/{len(files)}", flush=True)
    torch.save(res, cache)
    return res


def rd_loss(model: LatentHyperprior, z: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, float, float]:
    out = model(z)
    pixels = z.shape[0] * z.shape[2] * z.shape[3] * 64
    bits = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values())
    bpp = bits / pixels
    mse = torch.mean((out["z_hat"] - z) ** 2)
    return lmbda * mse + bpp, float(bpp.detach()), float(mse.detach())


def _crops(latents: list[torch.Tensor], n: int, c: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` random c×c crops (random horizontal flips) of the cached latents."""
    batch = []
    for _ in range(n):
        z = latents[rng.integers(len(latents))]
        y0, x0 = rng.integers(z.shape[1] - c + 1), rng.integers(z.shape[2] - c + 1)
        crop = z[:, y0 : y0 + c, x0 : x0 + c]
        batch.append(crop.flip(2) if rng.random() < 0.5 else crop)
    return torch.stack(batch)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LatentHyperprior(args.latent_channels, args.N, args.M)
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.endswith(".quantiles")], lr=1e-3)
    rng = np.random.default_rng(0)

    def step_fn(step: int) -> dict[str, float]:
        model.train()
        opt.zero_grad()
        loss, bpp, mse = rd_loss(model, _crops(data["train"], args.batch, args.crop, rng), args.lmbda)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        aux_opt.zero_grad()
        model.aux_loss().backward()
        aux_opt.step()
        return {"loss": float(loss.detach()), "bpp": bpp, "mse": mse}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        model.eval()
        vb, vm = zip(*[rd_loss(model, LatentHyperprior.pad(z[None]), args.lmbda)[1:] for z in data["val"]], strict=True)
        return {"val_bpp_est": float(np.mean(vb)), "val_mse": float(np.mean(vm))}

    loop = TrainLoop(Path(args.out), model, {"opt": opt, "aux_opt": aux_opt}, step_fn, args.max_steps,
                     validate_fn=validate, lr_at=lambda s: args.lr if s < 0.75 * args.max_steps else args.lr / 4,
                     rngs={"crops": rng}, val_every=args.ckpt_every, ckpt_every=args.ckpt_every, log_every=50,
                     ckpt_name="checkpoint.pt", desc="train latent-codec", quiet=getattr(args, "quiet", False))
    loop.load()
    if args.export:
        model.save(args.export, {"trained_steps": loop.step, "train_minutes": round(loop.elapsed / 60, 1),
                                 "lmbda": args.lmbda, "data": f"BSDS500 train (first {args.n_train} images), {args.vae} latents"})
        print(f"exported step {loop.step} to {args.export}")
        return
    data = cache_latents(loop.out, args.n_train, args.n_val, args.vae)
    loop.max_minutes = max(1e-6, args.minutes - loop.elapsed / 60)  # --minutes bounds the whole run
    loop.run()
    loop.close()


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.latent_codec", __doc__, latent_codec_arguments, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
