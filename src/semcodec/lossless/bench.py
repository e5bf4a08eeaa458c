"""``semcodec lossless-bench``: bpsp of classical lossless codecs and of the ``lossless`` profile.

bpsp = total file bits / (3·H·W). For ours the total is the whole .smc container (header, framing
and checksums included), split as in Du et al. Table 4 into the lossy base (IMAGE stream) and the
residual (RESIDUAL stream, incl. framing and header). Every codec's output is decoded and compared
with the original; a mismatch aborts the benchmark.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

BASELINES = ["PNG", "WebP-lossless", "JPEG-LS", "JPEG2000-lossless", "JPEG-XL-lossless"]


def _baseline(name: str, x: np.ndarray) -> tuple[bytes, np.ndarray]:
    import imagecodecs as ic

    if name == "PNG":
        data = ic.png_encode(x, level=9)
        return data, ic.png_decode(data)
    if name == "WebP-lossless":
        data = ic.webp_encode(x, lossless=True, level=100, method=6)
        return data, ic.webp_decode(data)
    if name == "JPEG-LS":
        data = ic.jpegls_encode(x)
        return data, ic.jpegls_decode(data)
    if name == "JPEG2000-lossless":
        data = ic.jpeg2k_encode(x, level=0, reversible=True)
        return data, ic.jpeg2k_decode(data)
    if name == "JPEG-XL-lossless":  # libjxl defaults (effort 7)
        data = ic.jpegxl_encode(x, lossless=True)
        return data, ic.jpegxl_decode(data)
    raise ValueError(name)


def run_bench(data_dir: Path, quality: int | None, limit: int, out_json: Path | None,
              weights: str | None) -> dict:
    from ..container import parse_container
    from ..image_io import load_image
    from ..pipeline import compress, decode

    files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() == ".png")[: limit or None]
    rows = []
    opts = {"weights": weights} if weights else {}
    for f in files:
        x = load_image(str(f))
        n = x.size
        row: dict = {"image": f.name}
        for name in BASELINES:
            data, y = _baseline(name, x)
            assert np.array_equal(np.asarray(y).reshape(x.shape), x), f"{name} not lossless on {f.name}"
            row[name] = 8 * len(data) / n
        t = time.perf_counter()
        blob = compress(x, profile="lossless", quality=quality, **opts)
        row["enc_s"] = time.perf_counter() - t
        t = time.perf_counter()
        y = decode(blob, **opts).image
        row["dec_s"] = time.perf_counter() - t
        if not np.array_equal(y, x):
            raise AssertionError(f"lossless profile is NOT exact on {f.name}")
        c = parse_container(blob)
        base = sum(s.framed_size() for s in c.streams if s.kind.name == "IMAGE")
        row["ours"] = 8 * len(blob) / n
        row["ours_base"] = 8 * base / n
        row["ours_residual"] = 8 * (len(blob) - base) / n
        row["exact"] = True
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = BASELINES + ["ours", "ours_base", "ours_residual", "enc_s", "dec_s"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean["max_dec_s"] = float(max(r["dec_s"] for r in rows))
    result = {"images": len(rows), "quality": quality, "mean": mean, "rows": rows}
    if out_json:
        out_json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def markdown(result: dict) -> str:
    m = result["mean"]
    lines = ["| codec | bpsp |", "|---|---|"]
    for k in BASELINES:
        lines.append(f"| {k} | {m[k]:.3f} |")
    lines.append(f"| ours (lossless profile) | {m['ours']:.3f} |")
    lines.append(f"| – lossy base (HEIF) | {m['ours_base']:.3f} |")
    lines.append(f"| – residual | {m['ours_residual']:.3f} |")
    lines.append("")
    lines.append(f"Ours: encode {m['enc_s']:.1f} s, decode {m['dec_s']:.1f} s mean "
                 f"(max {m['max_dec_s']:.1f} s) per image; exact on all {result['images']} images.")
    return "\n".join(lines)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--quality", type=int, default=None, help="base quality (default: the model's)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--json", default=None, help="write all numbers here")
    p.add_argument("--weights", default=None, help="model folder (default: the packaged weights)")


def cmd_bench(args: argparse.Namespace) -> int:
    res = run_bench(Path(args.data), args.quality, args.limit, Path(args.json) if args.json else None,
                    args.weights)
    print(markdown(res))
    return 0
