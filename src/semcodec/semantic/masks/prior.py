"""Context prior tables: P(1 | template context) learned on BSDS500 *train + val* segmentations.

The adaptive counts of :mod:`.context` start from these probabilities instead of 1/2, which is what
lets a 16-pixel template (65,536 contexts) pay off on a single small mask (JBIG1 has to learn its
1,024 contexts from scratch in every image). Tables are shipped in
``semcodec/weights/mask_context_prior/model.safetensors`` as uint16 (probability × 65536), one per
template and resolution factor; their hash is part of the coder's identity.

Train (about 2 minutes on one core)::

    python -m semcodec.semantic.masks.prior --data ../shared/data/bsds500/groundTruth
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ...errors import MissingComponentError
from ...paths import PACKAGE_WEIGHTS
from .context import PROB_ONE, TEMPLATES, contexts
from .resample import FACTORS, downsample

PRIOR_DIR = PACKAGE_WEIGHTS / "mask_context_prior"


def crop_to_bbox(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(cropped mask, (y, x, h, w)); an empty mask gives a 0×0 crop and h = w = 0."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return mask[:0, :0], (0, 0, 0, 0)
    xs = np.flatnonzero(mask.any(axis=0))
    y, x, h, w = int(ys[0]), int(xs[0]), int(ys[-1] - ys[0] + 1), int(xs[-1] - xs[0] + 1)
    return mask[y : y + h, x : x + w], (y, x, h, w)


def table_name(template: str, factor: int) -> str:
    return f"{template}_f{factor}"


@functools.cache
def _load_tables(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v.astype(np.int64) for k, v in load_file(path).items()}


def load_prior(template: str, factor: int) -> np.ndarray:
    path = PRIOR_DIR / "model.safetensors"
    if not path.is_file():
        raise MissingComponentError(
            f"mask context prior {path} is missing; reinstall semcodec or retrain it with "
            "`python -m semcodec.semantic.masks.prior --data ../shared/data/bsds500/groundTruth`"
        )
    tables = _load_tables(str(path))
    name = table_name(template, factor)
    if name not in tables:
        raise MissingComponentError(f"mask context prior has no table {name!r}; retrain it (see prior.py)")
    return tables[name]


@functools.cache
def prior_hash() -> str:
    path = PRIOR_DIR / "model.safetensors"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"


def count_contexts(masks: list[np.ndarray], template: str, factor: int) -> tuple[np.ndarray, np.ndarray]:
    tpl = TEMPLATES[template]
    n = 1 << len(tpl)
    c0 = np.zeros(n, np.int64)
    c1 = np.zeros(n, np.int64)
    for m in masks:
        crop, _ = crop_to_bbox(downsample(m, factor))
        if crop.size == 0:
            continue
        ctx = contexts(crop, tpl)
        b = crop.reshape(-1)
        c1 += np.bincount(ctx[b], minlength=n)
        c0 += np.bincount(ctx[~b], minlength=n)
    return c0, c1


def counts_to_table(c0: np.ndarray, c1: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    p = (c1 + alpha) / (c0 + c1 + 2 * alpha)
    return np.clip(np.round(p * PROB_ONE), 1, PROB_ONE - 1).astype(np.uint16)


def main(argv: list[str] | None = None) -> int:
    from safetensors.numpy import save_file

    from .data import bsds_masks

    ap = argparse.ArgumentParser(description="Train the mask-coder context priors on BSDS500 train+val.")
    ap.add_argument("--data", required=True, help="BSDS500 groundTruth folder (uses its train/ and val/)")
    ap.add_argument("--out", default=str(PRIOR_DIR))
    args = ap.parse_args(argv)
    t0 = time.time()
    masks = [m for split in ("train", "val") for m in bsds_masks(Path(args.data) / split, annotators="all")]
    tables, stats = {}, {}
    for factor in FACTORS:
        c0, c1 = count_contexts(masks, "t16", factor)
        tables[table_name("t16", factor)] = counts_to_table(c0, c1)
        stats[table_name("t16", factor)] = {"pixels": int(c0.sum() + c1.sum()), "contexts_seen": int(((c0 + c1) > 0).sum())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tables, str(out / "model.safetensors"))
    cfg = {"templates": {"t16": [list(o) for o in TEMPLATES["t16"]]}, "factors": list(FACTORS),
           "alpha": 0.4, "masks": len(masks), "data": "BSDS500 groundTruth train+val, all annotators, regions > 1%",
           "stats": stats, "seconds": round(time.time() - t0, 1)}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    print(json.dumps(cfg, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
