"""``semcodec train-codec``: train the variable-rate learned codec on BSDS500 crops (CPU-friendly).

One step::

    crop x (B×3×C×C) ─► downscale ×s ─► LicSmall(x_s, r) ─► x̂_s ─► upsampler ×s ─► x̂ (C×C)
                                              │ likelihoods ─► R = bits / (C·C)   (full-res bpp)
    loss = R + λ(r) · Σ κ_k d_k(x̂, x, caption)        r ~ U[0, L−1], λ(r) geometric in [λmin, λmax]

Checkpoints (``last.pt``, atomic) hold model, optimisers, step and RNG state; a run resumes from them.
The log (``log.jsonl``) records every R and D term. ``--export DIR`` writes the shipped
``model.safetensors`` + ``config.json`` (entropy-coder CDF tables included) from a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..paths import shared_data_dir


def downscale(x: torch.Tensor, s: int) -> torch.Tensor:
    """The one downscaler used in training and coding (antialiased bicubic)."""
    if s == 1:
        return x
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h // s, w // s), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def lam_of(rate: torch.Tensor, lam_min: float, lam_max: float, levels: int) -> torch.Tensor:
    return lam_min * (lam_max / lam_min) ** (rate / (levels - 1))


def _bpp(likelihoods: dict[str, torch.Tensor], pixels: int) -> torch.Tensor:
    return sum(-torch.log2(v).flatten(1).sum(1) for v in likelihoods.values()) / pixels


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> dict[str, float]:
    from tqdm import tqdm

    from ..image.learned.models import build_model
    from .data import CropSampler
    from .losses import RDLoss, parse_kappa

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = Path(args.data) if args.data else (shared_data_dir() or Path("../shared/data")) / "bsds500"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scales = [int(s) for s in args.scales.split(",")]
    probs = np.array([float(p) for p in args.scale_probs.split(",")]) if args.scale_probs else np.ones(len(scales))
    probs = probs / probs.sum()
    for s in scales:
        if min(args.crop, args.crop_per_scale * s) % (64 * s):
            raise SystemExit(f"crops must be multiples of 64·s for every scale (s={s})")
    model_cfg = json.loads(args.model_cfg) if args.model_cfg else {}
    model_cfg.setdefault("scales", tuple(scales))
    model = build_model(args.model, **model_cfg)
    levels = model.levels
    kappa = parse_kappa(args.terms)
    term_kwargs = {"lpips": {"folder": args.lpips}, "clip-iqa": {"folder": args.clip}, "clip-i2t": {"folder": args.clip}}
    loss_fn = RDLoss(kappa, {k: v for k, v in term_kwargs.items() if k in kappa})
    train_set = CropSampler(data / "train", args.crop, args.captions, seed=args.seed, limit=args.limit)
    val_set = CropSampler(data / "val", args.crop, args.captions, seed=args.seed + 1, limit=args.limit) \
        if (data / "val").is_dir() else None

    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    step = 0
    ckpt_path = out / "last.pt"
    if ckpt_path.exists() and not args.restart:
        ck = torch.load(ckpt_path, weights_only=False)  # our own checkpoint, never from a bitstream
        model.load_state_dict(ck["model"], strict=False)
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        step = ck["step"]
        train_set.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step}")
    meta = {"model": args.model, "model_cfg": {**model_cfg, "scales": list(scales)}, "terms": kappa,
            "lam_min": args.lam_min, "lam_max": args.lam_max, "crop": args.crop, "batch": args.batch,
            "scales": scales, "scale_probs": probs.tolist(), "data": str(data)}
    (out / "run.json").write_text(json.dumps({**meta, "argv": vars(args)}, indent=2, default=str))

    rng = np.random.default_rng(args.seed + step)
    t0 = time.time()
    t_end = t0 + 60 * args.minutes if args.minutes else math.inf
    t_decay = t0 + 60 * args.minutes * args.decay_at if args.minutes else math.inf
    log = (out / "log.jsonl").open("a")
    bar = tqdm(total=args.iters, initial=step, desc="train-codec", disable=args.quiet, mininterval=5)
    last: dict[str, float] = {}
    model.train()
    while step < args.iters and time.time() < t_end:
        late = step >= args.decay_at * args.iters or (args.minutes and time.time() > t_decay)
        lr = args.lr * (0.1 if late else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        s = int(rng.choice(scales, p=probs))
        x, caps = train_set.batch(args.batch, crop=min(args.crop, args.crop_per_scale * s))
        r = torch.rand(args.batch) * (levels - 1)
        o = model(downscale(x, s), r)
        x_hat = model.upsample(o["x_hat"], s)
        bpp = _bpp(o["likelihoods"], x.shape[-1] * x.shape[-2])
        loss, logs = loss_fn(x_hat, x, bpp, lam_of(r, args.lam_min, args.lam_max, levels),
                             caps if loss_fn.needs_captions else None)
        opt.zero_grad()
        loss.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        opt.step()
        aux_loss = model.aux_loss()
        aux_opt.zero_grad()
        aux_loss.backward()
        aux_opt.step()
        step += 1
        bar.update(1)
        last = {"step": step, "scale": s, "lr": lr, "aux": float(aux_loss.detach()), **logs}
        if step % args.log_every == 0:
            log.write(json.dumps(last) + "\n")
            log.flush()
            bar.set_postfix(bpp=f"{logs['bpp']:.4f}", D=f"{logs['D']:.4f}")
        if val_set is not None and (step % args.val_every == 0 or step == args.iters):
            log.write(json.dumps({"step": step, "val": validate(model, val_set, scales, levels)}) + "\n")
            log.flush()
        if step % args.ckpt_every == 0 or step == args.iters:
            _checkpoint(model, opt, aux_opt, step, train_set, ckpt_path, meta)
    _checkpoint(model, opt, aux_opt, step, train_set, ckpt_path, meta)
    bar.close()
    log.close()
    if args.export:
        export(ckpt_path, Path(args.export))
    return last


def _checkpoint(model, opt, aux_opt, step, train_set, path: Path, meta: dict) -> None:  # noqa: ANN001
    _save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                  "step": step, "rng": train_set.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                  "meta": meta}, path)


@torch.no_grad()
def validate(model: torch.nn.Module, val_set: Any, scales: list[int], levels: int, n: int = 8) -> dict[str, Any]:
    """Mean estimated bpp / PSNR on centre crops of the val split, per scale, at lowest/mid/top rate."""
    model.eval()
    x = val_set.center_crops(n)
    res: dict[str, Any] = {}
    for s in scales:
        for r in (0.0, (levels - 1) / 2, float(levels - 1)):
            o = model(downscale(x, s), torch.full((x.shape[0],), r))
            x_hat = model.upsample(o["x_hat"], s).clamp(0, 1)
            mse = (x_hat - x).pow(2).flatten(1).mean(1)
            res[f"s{s}_r{r:g}"] = {"bpp": float(_bpp(o["likelihoods"], x.shape[-1] * x.shape[-2]).mean()),
                                   "psnr": float((-10 * torch.log10(mse)).mean())}
    model.train()
    return res


def export(ckpt_path: Path, folder: Path) -> None:
    """Checkpoint -> ``model.safetensors`` (+ CDF tables) and ``config.json`` for the profile.

    An existing ``config.json`` in ``folder`` keeps its calibration keys (``scale_policy``...).
    """
    from ..image.learned.models import build_model
    from ..image.learned.weights import save_lic

    ck = torch.load(ckpt_path, weights_only=False)  # our own training checkpoint
    meta = ck["meta"]
    model = build_model(meta["model"], **meta["model_cfg"])
    model.load_state_dict(ck["model"], strict=False)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        model.update(force=True)
    torch.set_num_threads(old)
    cfg: dict[str, Any] = {}
    if (folder / "config.json").is_file():
        cfg = {k: v for k, v in json.loads((folder / "config.json").read_text()).items()
               if k in ("scale_policy", "default_scale")}
    cfg.update({"model": meta["model"], "model_cfg": meta["model_cfg"], "train": {**meta, "steps": ck["step"]}})
    save_lic(model, cfg, folder)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from ..image.learned.calibrate import run

    data = args.data or str((shared_data_dir() or Path("../shared/data")) / "bsds500" / "val")
    res = run(args.weights, data, args.limit, args.json)
    print(json.dumps(res["scale_policy"]))
    return 0


def _cmd(args: argparse.Namespace) -> int:
    if args.export_only:
        if not args.export:
            raise SystemExit("--export-only needs --export DIR")
        export(Path(args.out) / "last.pt", Path(args.export))
        return 0
    last = train(args)
    print(json.dumps(last))
    return 0
