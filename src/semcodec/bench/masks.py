"""``semcodec mask-bench``: bits per binary mask for every mask coder, with JBIG1 and PNG measured in
the same run, on BSDS500 segmentations (first annotator, regions > 1% of the image).

Every mask is coded alone into a complete MASK payload (header and bounding box included), so the
numbers are what one object mask costs in a ``.smc`` file (plus the 6-byte stream framing).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..semantic.masks.codec import decode_masks, encode_masks
from ..semantic.masks.data import bsds_masks
from ..semantic.masks.resample import downsample, upsample
from ..semantic.masks.rle import rle_encode

DEFAULT_CONFIGS = [("ctx", 1), ("ctx0", 1), ("rle", 1), ("ctx", 2), ("rle", 2), ("ctx", 4), ("rle", 4),
                   ("ctx", 8)]


def jbig1_bits(mask: np.ndarray) -> int | None:
    """Size of ``pbmtojbg -q`` (JBIG1, jbigkit) output in bits; None when jbigkit is not installed."""
    exe = shutil.which("pbmtojbg")
    if exe is None:
        return None
    h, w = mask.shape
    pbm = f"P4\n{w} {h}\n".encode() + np.packbits(mask.astype(bool), axis=1).tobytes()
    out = subprocess.run([exe, "-q"], input=pbm, capture_output=True, check=True).stdout
    return 8 * len(out)


def png_bits(mask: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(bool)).save(buf, format="PNG", optimize=True)  # mode "1": 1 bit/pixel
    return 8 * len(buf.getvalue())


def run_bench(data: str | Path, configs: list[tuple[str, int]] | None = None, limit: int | None = None,
              verify_every: int = 10) -> dict:
    configs = configs or DEFAULT_CONFIGS
    masks = list(bsds_masks(data, annotators="first"))[:limit]
    if not masks:
        raise FileNotFoundError(f"no masks found in {data}")
    pixels = np.array([m.size for m in masks], dtype=np.float64)
    rows = []
    for method, factor in configs:
        bits, iou, t_enc, t_dec, n_dec = [], [], 0.0, 0.0, 0
        for i, m in enumerate(masks):
            t = time.perf_counter()
            payload = encode_masks([m], method, factor)
            t_enc += time.perf_counter() - t
            bits.append(8 * len(payload))
            target = m if factor == 1 else upsample(downsample(m, factor), *m.shape, factor)
            if verify_every and i % verify_every == 0:
                t = time.perf_counter()
                (dec,) = decode_masks(payload, expected_size=m.shape)
                t_dec += time.perf_counter() - t
                n_dec += 1
                if not np.array_equal(dec, target):
                    raise AssertionError(f"{method}@{factor}: mask {i} did not decode to the coded mask")
            inter = np.logical_and(target, m).sum()
            iou.append(inter / max(1, np.logical_or(target, m).sum()))
        b = np.array(bits, dtype=np.float64)
        rows.append({"coder": method, "factor": factor, "bits_per_mask": b.mean(),
                     "bits_per_pixel": (b / pixels).mean(), "mean_iou": float(np.mean(iou)),
                     "lossless": factor == 1, "encode_ms": 1000 * t_enc / len(masks),
                     "decode_ms": 1000 * t_dec / max(1, n_dec), "decoded": n_dec})
    jb = [jbig1_bits(m) for m in masks]
    if all(x is not None for x in jb):
        b = np.array(jb, dtype=np.float64)
        rows.append({"coder": "JBIG1 (pbmtojbg -q)", "factor": 1, "bits_per_mask": b.mean(),
                     "bits_per_pixel": (b / pixels).mean(), "mean_iou": 1.0, "lossless": True})
    else:
        rows.append({"coder": "JBIG1 (pbmtojbg -q)", "unavailable": "pbmtojbg not found: apt-get install -y jbigkit-bin"})
    b = np.array([8 * len(rle_encode(m)) for m in masks], dtype=np.float64)
    rows.append({"coder": "RLE+zlib, whole mask (no box, no header)", "factor": 1, "bits_per_mask": b.mean(),
                 "bits_per_pixel": (b / pixels).mean(), "mean_iou": 1.0, "lossless": True})
    b = np.array([png_bits(m) for m in masks], dtype=np.float64)
    rows.append({"coder": "PNG 1-bit (Pillow, optimize)", "factor": 1, "bits_per_mask": b.mean(),
                 "bits_per_pixel": (b / pixels).mean(), "mean_iou": 1.0, "lossless": True})
    return {"data": str(data), "masks": len(masks), "mean_pixels": float(pixels.mean()), "rows": rows}


def format_markdown(res: dict) -> str:
    lines = [f"{res['masks']} masks, mean {res['mean_pixels']:.0f} pixels each ({res['data']})", "",
             "| coder | resolution | bits / mask | bits / mask pixel | mean IoU | encode ms | decode ms |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        if "unavailable" in r:
            lines.append(f"| {r['coder']} | unavailable: {r['unavailable']} | | | | | |")
            continue
        res_txt = "full (lossless)" if r["factor"] == 1 else f"1/{r['factor']}"
        enc = f"{r['encode_ms']:.1f}" if "encode_ms" in r else ""
        dec = f"{r['decode_ms']:.0f}" if r.get("decoded") else ""
        lines.append(f"| {r['coder']} | {res_txt} | {r['bits_per_mask']:.0f} | {r['bits_per_pixel']:.5f} | "
                     f"{r['mean_iou']:.4f} | {enc} | {dec} |")
    return "\n".join(lines)


def cmd_mask_bench(args) -> int:
    configs = None
    if args.coders:
        configs = [(c.split("@")[0], int(c.split("@")[1]) if "@" in c else 1) for c in args.coders.split(",")]
    res = run_bench(args.data, configs, args.limit, args.verify_every)
    print(json.dumps(res, indent=2) if args.json else format_markdown(res))
    return 0
