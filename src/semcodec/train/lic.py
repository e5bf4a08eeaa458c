"""``semcodec train lic`` (alias ``train-codec``): train the variable-rate learned codec on BSDS500 crops (CPU-friendly).

One step::

    crop x (B×3×C×C) ─► downscale ×s ─► LicSmall(x_s, r) ─► x̂_s ─► upsampler ×s ─► x̂ (C×C)
                                              │ likelihoods ─► R = bits / (C·C)   (full-res bpp)
    loss = R + λ(r) · Σ κ_k d_k(x̂, x, caption)        r ~ U[0, L−1], λ(r) geometric in [λmin, λmax]

The run is :class:`~semcodec.train.loop.TrainLoop`: checkpoints (``last.pt``, atomic) hold model,
optimisers, step and RNG states; a run resumes from them unless ``--restart``.
The log (``log.jsonl``) records every R and D term. ``--export DIR`` writes the shipped
``model.safetensors`` + ``config.json`` (entropy-coder CDF tables included) from a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..image.learned.models import downscale
from ..image.learned.refine import lam_of
from ..paths import portable_paths, shared_data_dir
from .loop import TrainLoop


def _bpp(likelihoods: dict[str, torch.Tensor], pixels: int) -> torch.Tensor:
    return sum(-torch.log2(v).flatten(1).sum(1) for v in likelihoods.values()) / pixels


def _scales(args: argparse.Namespace) -> tuple[list[int], np.ndarray]:
    scales = [int(s) for s in args.scales.split(",")]
    probs = np.array([float(p) for p in args.scale_probs.split(",")]) if args.scale_probs else np.ones(len(scales))
    for s in scales:
        if min(args.crop, args.crop_per_scale * s) % (64 * s):
            raise SystemExit(f"crops must be multiples of 64·s for every scale (s={s})")
    return scales, probs / probs.sum()


def _rd_loss(args: argparse.Namespace) -> Any:
    from .losses import RDLoss, parse_kappa

    kappa = parse_kappa(args.terms)
    term_kwargs = {"lpips": {"folder": args.lpips}, "clip-iqa": {"folder": args.clip}, "clip-i2t": {"folder": args.clip}}
    return RDLoss(kappa, {k: v for k, v in term_kwargs.items() if k in kappa})


def train(args: argparse.Namespace) -> dict[str, float]:
    from ..image.learned.models import build_model
    from .data import CropSampler

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = Path(args.data) if args.data else (shared_data_dir() or Path("../shared/data")) / "bsds500"
    out = Path(args.out)
    scales, probs = _scales(args)
    model_cfg = {"scales": tuple(scales), **(json.loads(args.model_cfg) if args.model_cfg else {})}
    model = build_model(args.model, **model_cfg)
    loss_fn = _rd_loss(args)
    kappa = loss_fn.kappa
    folders = [data / split for split in args.train_splits.split(",") if split]
    folders += [Path(d) for d in args.train_dirs.split(",") if d]
    train_set = CropSampler(folders, args.crop, args.captions, seed=args.seed, limit=args.limit)
    # full-resolution crops come from box-downsampled copies (no JPEG artefacts to learn); same rng stream
    s1_set = train_set
    if 1 in scales and args.s1_downsample > 1:
        s1_set = CropSampler(folders, args.crop_per_scale, args.captions, limit=args.limit,
                             downsample=args.s1_downsample)
        s1_set.rng = train_set.rng
    val_set = CropSampler(data / "val", args.crop, args.captions, seed=args.seed + 1, limit=args.limit) \
        if (data / "val").is_dir() else None
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.endswith(".quantiles")], lr=1e-3)
    meta = {"model": args.model, "model_cfg": {**model_cfg, "scales": list(scales)}, "terms": kappa,
            "train_folders": [str(f) for f in folders], "s1_downsample": args.s1_downsample,
            "lam_min": args.lam_min, "lam_max": args.lam_max, "crop": args.crop, "batch": args.batch,
            "scales": scales, "scale_probs": probs.tolist(), "data": str(data)}
    scale_rng = np.random.default_rng(args.seed)
    t_decay = time.monotonic() + 60 * args.minutes * args.decay_at if args.minutes else math.inf

    def step_fn(step: int) -> dict[str, float]:
        s = int(scale_rng.choice(scales, p=probs))
        x, caps = (s1_set if s == 1 else train_set).batch(args.batch, crop=min(args.crop, args.crop_per_scale * s))
        r = torch.rand(args.batch) * (model.levels - 1)
        o = model(downscale(x, s), r)
        bpp = _bpp(o["likelihoods"], x.shape[-1] * x.shape[-2])
        loss, logs = loss_fn(model.upsample(o["x_hat"], s), x, bpp, lam_of(r, args.lam_min, args.lam_max, model.levels),
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
        return {**logs, "scale": s, "aux": float(aux_loss.detach())}

    def lr_at(step: int) -> float:
        return args.lr * (0.1 if step >= args.decay_at * args.iters or time.monotonic() > t_decay else 1.0)

    best_dir = out / "best"

    def export_best(metrics: Any) -> None:
        """Every validation improvement is exported at once, so any stop leaves the best weights ready."""
        loop.save()
        export(loop.ckpt_path, best_dir)
        (best_dir / "val.json").write_text(json.dumps({"step": loop.step, **metrics}, indent=2))

    rd = (loss_fn, args.lam_min, args.lam_max) if not loss_fn.needs_captions else None
    loop = TrainLoop(out, model, {"opt": opt, "aux_opt": aux_opt}, step_fn, args.iters, lr_at=lr_at,
                     validate_fn=(lambda: {**validate(model, val_set, scales, model.levels, rd=rd),
                                           "cpu_h": cpu_seconds() / 3600}) if val_set else None,
                     val_key="rd" if val_set and rd else None, export_fn=export_best,
                     rngs={"crops": train_set.rng, "scale": scale_rng}, extra_state=lambda: {"meta": meta, "cpu_s": cpu_seconds()},
                     resume=not args.restart, max_minutes=args.minutes or 0, val_every=args.val_every,
                     ckpt_every=args.ckpt_every, log_every=args.log_every, ckpt_name="last.pt",
                     log_name="log.jsonl", desc="train lic", quiet=getattr(args, "quiet", False))
    state = loop.load()
    if state is None and args.init_from:
        warm_start(model, Path(args.init_from))
    cpu_before = float(state.get("cpu_s", 0.0)) if state else 0.0

    def cpu_seconds() -> float:
        """CPU seconds of the whole run (all invocations): the x axis of the training curve."""
        return cpu_before + time.process_time()

    (out / "run.json").write_text(json.dumps({**meta, "argv": vars(args)}, indent=2, default=str))
    model.train()
    res = loop.run()
    loop.close()
    if args.export:
        export(loop.ckpt_path, Path(args.export))
    return {"step": res.step, **res.last}


def warm_start(model: torch.nn.Module, folder: Path) -> None:
    """Start a new run from shipped weights (the fallback when a run's checkpoint is lost)."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    model.load_state_dict(state, strict=False)  # CompressAI resizes the CDF buffers to the file's
    print(f"warm start from {folder}")


@torch.no_grad()
def validate(model: torch.nn.Module, val_set: Any, scales: list[int], levels: int, n: int = 8,
             rd: Any = None) -> dict[str, Any]:
    """Mean estimated bpp / PSNR on centre crops of the val split, per scale, at lowest/mid/top rate.

    With ``rd = (loss_fn, lam_min, lam_max)`` it adds ``"rd"``: the training objective R + λ(r)·D averaged
    over the s ≥ 2 points (the scales Kodak-size images are coded at in 0.005–0.1 bpp), the number that
    picks the exported weights.
    """
    model.eval()
    x = val_set.center_crops(n)
    res: dict[str, Any] = {}
    rd_values = []
    for s in scales:
        for r in (0.0, (levels - 1) / 2, float(levels - 1)):
            rate = torch.full((x.shape[0],), r)
            o = model(downscale(x, s), rate)
            x_hat = model.upsample(o["x_hat"], s).clamp(0, 1)
            mse = (x_hat - x).pow(2).flatten(1).mean(1)
            bpp = _bpp(o["likelihoods"], x.shape[-1] * x.shape[-2])
            res[f"s{s}_r{r:g}"] = {"bpp": float(bpp.mean()), "psnr": float((-10 * torch.log10(mse)).mean())}
            if rd is not None and (s > 1 or len(scales) == 1):
                loss_fn, lam_min, lam_max = rd
                loss, logs = loss_fn(x_hat, x, bpp, lam_of(rate, lam_min, lam_max, levels), None)
                res[f"s{s}_r{r:g}"].update({k: float(v) for k, v in logs.items() if k != "loss"})
                rd_values.append(float(loss))
    if rd_values:
        res["rd"] = sum(rd_values) / len(rd_values)
    model.train()
    return res


def export(ckpt_path: Path, folder: Path) -> None:
    """Checkpoint -> ``model.safetensors`` (+ CDF tables) and ``config.json`` for the profile.

    An existing ``config.json`` in ``folder`` keeps its calibration keys (``scale_policy``...).
    """
    from ..image.learned.models import build_model
    from ..image.learned.weights import save_lic

    ck = torch.load(ckpt_path, weights_only=True)
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
    cfg.update({"model": meta["model"], "model_cfg": meta["model_cfg"],
                "train": portable_paths({**meta, "steps": ck["step"]})})
    save_lic(model, cfg, folder)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..image.learned.calibrate import run

    data = args.data or str((shared_data_dir() or Path("../shared/data")) / "bsds500" / "val")
    res = run(args.weights, data, args.limit, args.json, getattr(args, "metric", None))
    print(json.dumps(res["scale_policy"]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.export_only:
        if not args.export:
            raise SystemExit("--export-only needs --export DIR")
        export(Path(args.out) / "last.pt", Path(args.export))
        return 0
    last = train(args)
    print(json.dumps(last))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .args import lic_arguments, module_main

    return module_main("semcodec.train.lic", __doc__, lic_arguments, cmd_train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
