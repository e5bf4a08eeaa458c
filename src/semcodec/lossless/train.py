"""Training of the residual LM on BSDS500 (CPU): ``semcodec train-lossless``.

Each sample is a random (64+2m)² crop of a training image, its lossy base x_l at a random quality from
``cfg.qualities`` (pre-coded once and cached as .npz under ``<out>/cache``) and the quality index.
The loss is the cross-entropy in bits per subpixel of x given x_l (Du et al., Eq. 5); the margin m
only feeds the convolutional global embedding, so a crop sees the same context it would see inside a
whole image. Crops are aligned to the 8-pixel grid so patches sit on the HEVC block grid as they do
at coding time.

Checkpoints (``<out>/ckpt.pt``: weights, optimiser, step, RNG) are written every ``--ckpt-every``
steps and on exit (also on SIGTERM); ``--resume`` continues from them. The best validation model is exported as
``<out>/export/{config.json,model.safetensors}``; ``--export-to`` copies it into the package.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .base_codec import encode_base
from .model import LosslessConfig, ResidualLM, parameter_count, save_model

MARGIN = 8


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _large_enough(images: list[Path], side: int, downsample: int) -> list[Path]:
    """Images whose (downsampled) size holds a training crop; ImageNet has some as small as 68×56."""
    keep = []
    for f in images:
        with Image.open(f) as img:
            if min(img.size) // downsample >= side:
                keep.append(f)
    return keep


def load_training_image(path: Path, downsample: int = 1) -> np.ndarray:
    """RGB uint8; ``downsample`` > 1 box-filters (PIL ``reduce``) away most of the JPEG artefacts.

    BSDS500 images are JPEGs (4:2:0 chroma, DCT-quantised blocks); averaging 2×2 blocks leaves
    clean, camera-like pixel statistics, closer to the lossless photos the codec is used on.
    """
    img = Image.open(path).convert("RGB")
    if downsample > 1:
        img = img.reduce(downsample)
    return np.asarray(img)


def build_cache(images: list[Path], cfg: LosslessConfig, cache: Path, desc: str,
                downsample: int = 1) -> list[dict[int, Path]]:
    """Code every image at every base quality once; store (x, x_l) padded by MARGIN (edge mode)."""
    from tqdm import tqdm

    out = []
    tag = f"_d{downsample}" if downsample > 1 else ""
    for img in tqdm(images, desc=f"base cache {desc}", leave=False):
        entry = {}
        for q in cfg.qualities:
            f = cache / f"{cfg.base_codec}{q}{tag}" / f"{img.parent.name}_{img.stem}.npz"
            if not f.exists():
                f.parent.mkdir(parents=True, exist_ok=True)
                x = load_training_image(img, downsample)
                _, xl = encode_base(x, cfg.base_codec, q)
                pad = ((MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0))
                tmp = f.with_suffix(".tmp.npz")
                np.savez(tmp, x=np.pad(x, pad, mode="edge"), xl=np.pad(xl, pad, mode="edge"))
                tmp.replace(f)
            entry[q] = f
        out.append(entry)
    return out


class CropSampler:
    def __init__(self, entries: list[dict[int, Path]], qualities: list[int], crop: int, seed: int) -> None:
        self.entries, self.qualities, self.crop = entries, qualities, crop
        self.rng = np.random.default_rng(seed)
        self._mem: dict[Path, tuple[np.ndarray, np.ndarray]] = {}

    def _load(self, f: Path) -> tuple[np.ndarray, np.ndarray]:
        if f not in self._mem:
            d = np.load(f)
            self._mem[f] = (d["x"], d["xl"])
        return self._mem[f]

    def sample(self, n: int, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, ...]:
        rng = rng or self.rng
        xs, xls, qs = [], [], []
        c = self.crop
        for _ in range(n):
            e = self.entries[rng.integers(len(self.entries))]
            qi = int(rng.integers(len(self.qualities)))
            x, xl = self._load(e[self.qualities[qi]])
            h, w = x.shape[0] - 2 * MARGIN, x.shape[1] - 2 * MARGIN
            oy = 8 * int(rng.integers((h - c) // 8 + 1))
            ox = 8 * int(rng.integers((w - c) // 8 + 1))
            sl = (slice(oy, oy + c + 2 * MARGIN), slice(ox, ox + c + 2 * MARGIN))
            xs.append(x[sl])
            xls.append(xl[sl])
            qs.append(qi)
        to_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        return to_t(xs), to_t(xls), torch.tensor(qs)


def evaluate(model: ResidualLM, val: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
    model.eval()
    per_q: dict[int, list[float]] = {}
    with torch.no_grad():
        for x, xl, qi in val:
            bits = model(x, xl, qi, margin=MARGIN)
            n = bits.shape[0] // x.shape[0]
            for i in range(x.shape[0]):
                per_q.setdefault(int(qi[i]), []).append(float(bits[i * n : (i + 1) * n].mean()))
    model.train()
    res = {f"q{model.cfg.qualities[k]}": float(np.mean(v)) for k, v in sorted(per_q.items())}
    res["mean"] = float(np.mean(list(res.values())))
    return res


def init_from(model: ResidualLM, folder: Path) -> list[str]:
    """Warm start from an exported model: copy every tensor that fits, grow the ones that grew.

    Grown embedding tables / input columns (e.g. the checkerboard's extra neighbours) keep the old
    rows and get zeros for the new ones; transformer blocks absent from the source start as the
    identity (zero output projections), so the warm-started model first predicts like the source.
    Returns the names of the tensors that were not copied whole.
    """
    from safetensors.torch import load_file

    src = load_file(str(folder / "model.safetensors"))
    own = model.state_dict()
    partial = []
    with torch.no_grad():
        for k, v in own.items():
            if k in src and src[k].shape == v.shape:
                v.copy_(src[k])
                continue
            partial.append(k)
            if k in src and src[k].dim() == v.dim() and all(a <= b for a, b in zip(src[k].shape, v.shape, strict=True)):
                v.zero_()
                v[tuple(slice(0, n) for n in src[k].shape)] = src[k]
            elif k not in src and ".c_proj." in k:
                v.zero_()
    return partial


def train(args: argparse.Namespace) -> Path:
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "a", buffering=1)  # noqa: SIM115 - line-buffered, lives for the run
    ckpt_path = out / "ckpt.pt"
    cfg = LosslessConfig()
    if args.config:
        cfg = LosslessConfig.from_dict(json.loads(Path(args.config).read_text()))
    state = None
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=True)
        cfg = LosslessConfig.from_dict(json.loads(state["cfg"]))
    torch.manual_seed(args.seed)
    model = ResidualLM(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step, best = 0, math.inf
    if state is None and args.init_from:
        print(f"warm start from {args.init_from}; not copied whole: {init_from(model, Path(args.init_from))}",
              file=log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, best = int(state["step"]), float(state["best"])
        torch.set_rng_state(state["torch_rng"])
    data = Path(args.data)
    train_imgs = [f for s in args.train_splits.split(",") for f in _list_images(data / s)]
    train_imgs += [f for d in filter(None, getattr(args, "train_dirs", "").split(",")) for f in _list_images(Path(d))]
    train_imgs = _large_enough(train_imgs, args.crop, args.downsample)[: args.max_images or None]
    val_imgs = _list_images(data / "val")[: args.val_images]
    cache = out / "cache"
    sampler = CropSampler(build_cache(train_imgs, cfg, cache, "train", args.downsample), cfg.qualities, args.crop,
                          args.seed + step)
    vsampler = CropSampler(build_cache(val_imgs, cfg, cache, "val", args.downsample), cfg.qualities, args.crop, 0)
    vrng = np.random.default_rng(1234)
    val = [vsampler.sample(args.batch, vrng) for _ in range(args.val_batches)]
    print(f"lossless training: {parameter_count(model)} parameters, {len(train_imgs)} train images,"
          f" start step {step}", file=log)

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / args.warmup)
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))

    def save_ckpt() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                    "cfg": cfg.to_json(), "torch_rng": torch.get_rng_state()}, tmp)
        tmp.replace(ckpt_path)

    if step == 0:  # the starting point (e.g. the warm-start source) on the same validation crops
        print(f"step 0 val {json.dumps(evaluate(model, val))}", file=log)
    def on_term(signum: int, frame: object) -> None:  # `kill <pid>`: stop cleanly, checkpoint kept
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.time()
    model.train()
    bar = tqdm(total=args.steps, initial=step, desc="train-lossless", dynamic_ncols=True)
    ema = None
    try:
        while step < args.steps:
            if args.max_minutes and time.time() - t0 > 60 * args.max_minutes:
                print(f"step {step}: wall-time limit reached", file=log)
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x, xl, qi = sampler.sample(args.batch)
            loss = model(x, xl, qi, margin=MARGIN).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            lv = float(loss.detach())
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
            bar.update(1)
            bar.set_postfix(bpsp=f"{ema:.3f}")
            if step % 10 == 0:
                print(f"step {step} loss {lv:.4f} ema {ema:.4f} lr {lr_at(step):.2e}"
                      f" t {time.time() - t0:.0f}s", file=log)
            if step % args.val_every == 0 or step == args.steps:
                v = evaluate(model, val)
                print(f"step {step} val {json.dumps(v)}", file=log)
                if v["mean"] < best:
                    best = v["mean"]
                    save_model(model, out / "export")
                    (out / "export" / "train_state.json").write_text(
                        json.dumps({"step": step, "val_residual_bpsp": v}, indent=2) + "\n")
            if step % args.ckpt_every == 0:
                save_ckpt()
    finally:
        save_ckpt()
        bar.close()
    if not (out / "export" / "model.safetensors").exists():
        save_model(model, out / "export")
    if args.export_to:
        dst = Path(args.export_to)
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors", "train_state.json"):
            if (out / "export" / name).exists():
                shutil.copy(out / "export" / name, dst / name)
    print(f"done at step {step}, best val {best:.4f}", file=log)
    return out / "export"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semcodec.lossless.train", description=__doc__.splitlines()[0])
    from .commands import add_train_arguments

    add_train_arguments(p)
    train(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
