"""Training of the lossless residual LM on BSDS500 (CPU): ``semcodec train lossless`` (alias ``train-lossless``).

Each sample is a random (64+2m)² crop of a training image, its lossy base x_l at a random quality from
``cfg.qualities`` (pre-coded once and cached as .npz under ``<out>/cache``) and the quality index.
The loss is the cross-entropy in bits per subpixel of x given x_l (Du et al., Eq. 5); the margin m
only feeds the convolutional global embedding, so a crop sees the same context it would see inside a
whole image. Crops are aligned to the 8-pixel grid so patches sit on the HEVC block grid as they do
at coding time.

The run itself is :class:`~semcodec.train.loop.TrainLoop`: ``<out>/ckpt.pt`` (weights, optimiser,
step, best, RNG, plus the model config) every ``--ckpt-every`` steps and on exit (also on SIGTERM);
``--resume`` continues from it, also from checkpoints of the former ``semcodec.lossless.train``. The best
validation model is exported as ``<out>/export/{config.json,model.safetensors}``; ``--export-to``
copies it into the package.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..lossless.base_codec import encode_base
from ..lossless.model import LosslessConfig, ResidualLM, parameter_count, save_model
from .args import lossless_arguments
from .data import image_files, load_training_image
from .loop import TrainLoop, warmup_cosine

MARGIN = 8


def _large_enough(images: list[Path], side: int, downsample: int) -> list[Path]:
    """Images whose (downsampled) size holds a training crop; ImageNet has some as small as 68×56."""
    keep = []
    for f in images:
        with Image.open(f) as img:
            if min(img.size) // downsample >= side:
                keep.append(f)
    return keep


def native_window(x: np.ndarray, side: int, key: str) -> np.ndarray:
    """A side×side window of a full-resolution (JPEG-decoded) image, or the whole image if smaller.

    Its origin is a per-image pseudo-random position that is never a multiple of 8, so the JPEG
    8×8 block grid never lines up with the base codec's blocks or the model's patches (the model
    must not learn JPEG block edges as patch structure: Kodak has none).
    """
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    h, w = x.shape[:2]
    oy = 8 * int(rng.integers(max(1, (h - side - 8) // 8 + 1))) + int(rng.integers(1, 8)) if h > side + 8 else 0
    ox = 8 * int(rng.integers(max(1, (w - side - 8) // 8 + 1))) + int(rng.integers(1, 8)) if w > side + 8 else 0
    return x[oy : oy + side, ox : ox + side]


def build_cache(images: list[Path], cfg: LosslessConfig, cache: Path, desc: str,
                downsample: int = 1, native: int = 0) -> list[dict[int, Path]]:
    """Code every image at every base quality once; store (x, x_l) padded by MARGIN (edge mode).

    ``native`` > 0: instead of the (downsampled) image, a native-resolution window of that side
    (:func:`native_window`): full-resolution statistics (smoother, less noisy than a 2× box-downsampled
    image, as in camera and film photos) at a fraction of the base-coding cost of the whole image.
    """
    from tqdm import tqdm

    out = []
    tag = f"_n{native}" if native else f"_d{downsample}" if downsample > 1 else ""
    for img in tqdm(images, desc=f"base cache {desc}", leave=False):
        entry = {}
        for q in cfg.qualities:
            f = cache / f"{cfg.base_codec}{q}{tag}" / f"{img.parent.name}_{img.stem}.npz"
            if not f.exists():
                f.parent.mkdir(parents=True, exist_ok=True)
                x = load_training_image(img, 1 if native else downsample)
                if native:
                    x = np.ascontiguousarray(native_window(x, native, f"{img.parent.name}/{img.name}"))
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


def evaluate_sets(model: ResidualLM, sets: dict[str, list[tuple[torch.Tensor, ...]]]) -> dict[str, float]:
    """:func:`evaluate` of each named validation set; ``mean`` is the mean of the sets' means.

    The first set keeps the plain keys (``q30``… and ``mean_<name>``), so logs of one-set runs read the same.
    """
    res: dict[str, float] = {}
    for i, (name, val) in enumerate(sets.items()):
        r = evaluate(model, val)
        res.update(r if i == 0 else {f"{k}_{name}": v for k, v in r.items() if k != "mean"})
        res[f"mean_{name}"] = r["mean"]
    res["mean"] = float(np.mean([res[f"mean_{name}"] for name in sets]))
    return res


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
    src_cfg = folder / "config.json"
    if src_cfg.exists() and "qual.weight" in src:
        src_q = LosslessConfig.from_dict(json.loads(src_cfg.read_text())).qualities
        src["qual.weight"] = quality_rows(src["qual.weight"], src_q, model.cfg.qualities)
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


def quality_rows(table: torch.Tensor, src_q: list[int], dst_q: list[int]) -> torch.Tensor:
    """Base-quality embeddings for ``dst_q`` from a model trained on ``src_q``.

    A quality the source knows keeps its row; a new one between two known qualities starts at the
    linear interpolation of their rows (outside the known range: the nearest row), so a model grown
    to condition on e.g. quality 40 first treats it as the blend of 30 and 50 it was coded with so far.
    """
    rows = []
    for q in dst_q:
        lo = max((s for s in src_q if s <= q), default=None)
        hi = min((s for s in src_q if s >= q), default=None)
        if lo is None or hi is None or lo == hi:
            near = lo if hi is None else hi if lo is None else lo
            rows.append(table[src_q.index(near)])
        else:
            t = (q - lo) / (hi - lo)
            rows.append((1 - t) * table[src_q.index(lo)] + t * table[src_q.index(hi)])
    return torch.stack(rows)


def _config(args: argparse.Namespace, ckpt: Path) -> LosslessConfig:
    """A resumed run keeps the config it started with (stored in the checkpoint)."""
    if args.resume and ckpt.exists():
        return LosslessConfig.from_dict(json.loads(torch.load(ckpt, weights_only=True)["cfg"]))
    if args.config:
        return LosslessConfig.from_dict(json.loads(Path(args.config).read_text()))
    return LosslessConfig()


def _images(args: argparse.Namespace) -> tuple[list[Path], list[Path], list[Path]]:
    """Training images, BSDS500 ``val`` images, and the images held out of ``--train-dirs``.

    ``--holdout-every K`` moves every K-th image of the extra folders (sorted) from training to a
    second validation set, so the weights are also chosen on photos like the extra training data
    (ImageNet's are smoother and less noisy than downsampled BSDS500) without touching Kodak.
    """
    data = Path(args.data)
    train = [f for s in args.train_splits.split(",") for f in image_files(data / s)]
    extra = [f for d in filter(None, args.train_dirs.split(",")) for f in image_files(Path(d))]
    k = args.holdout_every
    held = [f for i, f in enumerate(extra) if k and i % k == k - 1]
    train += [f for i, f in enumerate(extra) if not (k and i % k == k - 1)]
    train = _large_enough(train, args.crop, args.downsample)[: args.max_images or None]
    return train, image_files(data / "val")[: args.val_images], _large_enough(held, args.crop, args.downsample)


def train(args: argparse.Namespace) -> Path:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config(args, out / "ckpt.pt")
    torch.manual_seed(args.seed)
    model = ResidualLM(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    train_imgs, val_imgs, held_imgs = _images(args)

    def step_fn(step: int) -> dict[str, float]:
        loss = model(*sampler.sample(args.batch), margin=MARGIN).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"loss": float(loss.detach())}

    def export(metrics: dict) -> None:
        save_model(model, out / "export")
        (out / "export" / "train_state.json").write_text(
            json.dumps({"step": loop.step, "val_residual_bpsp": metrics}, indent=2) + "\n")

    cache = out / "cache"
    entries = build_cache(train_imgs, cfg, cache, "train", args.downsample)
    if args.native_window:  # every image once more as a full-resolution window (sampled like any image)
        entries += build_cache(_large_enough(train_imgs, args.crop + 2 * MARGIN, 1), cfg, cache, "train native",
                               native=args.native_window)
    sampler = CropSampler(entries, cfg.qualities, args.crop, args.seed)
    loop = TrainLoop(out, model, {"opt": opt}, step_fn, args.steps, validate_fn=lambda: evaluate_sets(model, val_sets),
                     val_key="mean", export_fn=export, resume=args.resume, max_minutes=args.max_minutes,
                     val_every=args.val_every, ckpt_every=args.ckpt_every, desc="train lossless",
                     quiet=getattr(args, "quiet", False), rngs={"sampler": sampler.rng},
                     extra_state=lambda: {"cfg": cfg.to_json()},
                     lr_at=lambda s: warmup_cosine(s, args.lr, args.warmup, args.steps, 0.1, after_warmup=False))
    state = loop.load()
    if state is None and args.init_from:
        loop.log({"event": f"warm start from {args.init_from}",
                  "not_copied_whole": init_from(model, Path(args.init_from))})
    elif state is not None and "sampler" not in state.get("rng", {}):  # a checkpoint of the former trainer
        sampler.rng.bit_generator.state = np.random.default_rng(args.seed + loop.step).bit_generator.state
    val_sets = {}
    for name, imgs in (("bsds", val_imgs), ("held", held_imgs)):
        for suffix, native in (("", 0), ("_native", args.native_window)) if args.native_window else (("", 0),):
            if imgs:
                use = _large_enough(imgs, args.crop + 2 * MARGIN, 1) if native else imgs
                vsampler = CropSampler(build_cache(use, cfg, cache, name + suffix, args.downsample, native),
                                       cfg.qualities, args.crop, 0)
                vrng = np.random.default_rng(1234)
                val_sets[name + suffix] = [vsampler.sample(args.batch, vrng) for _ in range(args.val_batches)]
    loop.log({"event": f"lossless training: {parameter_count(model)} parameters, {len(train_imgs)} train images,"
                       f" {len(held_imgs)} held out, start step {loop.step}"})
    if loop.step == 0:  # the starting point (e.g. the warm-start source) on the same validation crops
        loop.log({"step": 0, "val": evaluate_sets(model, val_sets)})
    res = loop.run()
    if not (out / "export" / "model.safetensors").exists():
        save_model(model, out / "export")
    if args.export_to:
        dst = Path(args.export_to)
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors", "train_state.json"):
            if (out / "export" / name).exists():
                shutil.copy(out / "export" / name, dst / name)
    loop.log({"event": f"done at step {res.step}, best val {res.best:.4f}", "stopped": res.stopped})
    loop.close()
    return out / "export"


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.lossless", __doc__, lossless_arguments, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
