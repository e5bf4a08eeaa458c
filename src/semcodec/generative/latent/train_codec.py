"""Train the latent hyperprior (:mod:`.codec`) on VAE latents of BSDS500 (TAEF2 by default, any VAE with --vae).

    python -m semcodec.generative.latent.train_codec --out $SEMCODEC_RUNS/resulic --minutes 70

Steps: (1) encode BSDS500 train (and 20 val images) with the VAE once, cached in ``<out>/latents.pt``;
(2) train on random 32×32 latent crops (= 256×256 pixels) with flips, loss λ·MSE(ẑ, z) + bpp, where
bpp counts bits per *image* pixel (h·w·64); (3) checkpoint with resume every ``--ckpt-every`` steps;
(4) ``--export DIR`` writes model.safetensors + config.json of the latest checkpoint.
Runs on one thread so it can share the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...paths import runs_dir, shared_data_dir
from .codec import LatentHyperprior
from .vae import load_latent_space


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(runs_dir() / "resulic"))
    ap.add_argument("--minutes", type=float, default=70)
    ap.add_argument("--lmbda", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--max-steps", type=int, default=200_000)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=200, help="BSDS500 train images to encode (CPU budget)")
    ap.add_argument("--n-val", type=int, default=20)
    ap.add_argument("--vae", default="taef2", help="'taef2' or a diffusers VAE folder/id (e.g. SD 2.1's)")
    ap.add_argument("--latent-channels", type=int, default=32, help="channels of that VAE's latent (SD: 4)")
    ap.add_argument("--export", default=None, help="write the latest checkpoint as safetensors to this folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = LatentHyperprior(args.latent_channels, args.N, args.M)
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    ckpt = out / "checkpoint.pt"
    step, elapsed = 0, 0.0
    if ckpt.is_file():
        st = torch.load(ckpt, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        aux_opt.load_state_dict(st["aux_opt"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        print(f"resumed at step {step} ({elapsed / 60:.1f} min)", flush=True)
    if args.export:
        model.save(args.export, {"trained_steps": step, "train_minutes": round(elapsed / 60, 1),
                                 "lmbda": args.lmbda, "data": f"BSDS500 train (first {args.n_train} images), {args.vae} latents"})
        print(f"exported step {step} to {args.export}")
        return
    data = cache_latents(out, args.n_train, args.n_val, args.vae)
    train = data["train"]
    rng = np.random.default_rng(step)
    t0 = time.time() - elapsed
    log = open(out / "train.log", "a")  # noqa: SIM115 (kept open for the whole run)
    c = args.crop
    while step < args.max_steps and time.time() - t0 < args.minutes * 60:
        batch = []
        for _ in range(args.batch):
            z = train[rng.integers(len(train))]
            y0 = rng.integers(z.shape[1] - c + 1)
            x0 = rng.integers(z.shape[2] - c + 1)
            crop = z[:, y0 : y0 + c, x0 : x0 + c]
            if rng.random() < 0.5:
                crop = crop.flip(2)
            batch.append(crop)
        zb = torch.stack(batch)
        lr = args.lr if step < 0.75 * args.max_steps else args.lr / 4
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        opt.zero_grad()
        loss, bpp, mse = rd_loss(model, zb, args.lmbda)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        aux_opt.zero_grad()
        model.aux_loss().backward()
        aux_opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {float(loss):.4f} bpp {bpp:.4f} mse {mse:.4f} "
                  f"{(time.time() - t0) / 60:.1f}min", file=log, flush=True)
        if step % args.ckpt_every == 0:
            model.eval()
            with torch.no_grad():
                vb, vm = zip(*[rd_loss(model, LatentHyperprior.pad(z[None]), args.lmbda)[1:] for z in data["val"]], strict=True)
            rec = {"step": step, "val_bpp_est": float(np.mean(vb)), "val_mse": float(np.mean(vm)),
                   "min": round((time.time() - t0) / 60, 1)}
            print(json.dumps(rec), file=log, flush=True)
            tmp = out / "checkpoint.tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                        "step": step, "elapsed": time.time() - t0}, tmp)
            tmp.replace(ckpt)
    if not math.isfinite(float(loss)):
        raise SystemExit("training diverged")
    print(f"done at step {step}", file=log, flush=True)


if __name__ == "__main__":
    main()
