"""``semcodec lossless-bench``: bpsp of classical lossless codecs and of the ``lossless`` profile.

bpsp = total file bits / (3·H·W). For ours the total is the whole .smc container (header, framing
and checksums included), split as in Du et al. Table 4 into the lossy base (IMAGE stream) and the
residual (RESIDUAL stream, incl. framing and header). Every codec's output is decoded and compared
with the original; a mismatch aborts the benchmark.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: name -> the setting it runs at (printed next to every number). Standard settings of each tool, not a
#: library's defaults: imagecodecs' JPEG-XL default is a lower effort than cjxl's default 7.
BASELINES: dict[str, str] = {
    "PNG": "Pillow optimize=True (zlib level 9)",
    "WebP-lossless": "libwebp method 6, quality 100 (= cwebp -lossless -z 9)",
    "JPEG-LS": "CharLS, NEAR=0",
    "JPEG2000-lossless": "OpenJPEG, reversible 5/3 wavelet",
    "JPEG-XL-e7": "libjxl lossless, effort 7 (cjxl's default)",
    "JPEG-XL-e9": "libjxl lossless, effort 9",
}


def _baseline(name: str, x: np.ndarray) -> tuple[bytes, np.ndarray]:
    import imagecodecs as ic

    if name == "PNG":
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, format="PNG", optimize=True)
        data = buf.getvalue()
        return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    if name == "WebP-lossless":
        data = ic.webp_encode(x, lossless=True, method=6, level=100)
        return data, ic.webp_decode(data)
    if name == "JPEG-LS":
        data = ic.jpegls_encode(x, level=0)
        return data, ic.jpegls_decode(data)
    if name == "JPEG2000-lossless":
        data = ic.jpeg2k_encode(x, level=0, reversible=True)
        return data, ic.jpeg2k_decode(data)
    if name in ("JPEG-XL-e7", "JPEG-XL-e9"):
        data = ic.jpegxl_encode(x, lossless=True, effort=int(name[-1]))
        return data, ic.jpegxl_decode(data)
    raise ValueError(name)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` (1 ≤ K ≤ N) -> (K, N): this process codes images K, K+N, K+2N, ... (1-based)."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants K/N, e.g. 1/2, not {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 1 <= K <= N")
    return k, n


def take_shard(files: list[Path], shard: tuple[int, int]) -> list[Path]:
    """Files K, K+N, ... of a sorted list: shards of the same list never overlap and cover it."""
    k, n = shard
    return files[k - 1 :: n]


def run_bench(data_dir: Path, quality: int | None, limit: int, out_json: Path | None,
              weights: str | None, adapt_steps: int | None = None, save_dir: Path | None = None,
              shard: tuple[int, int] = (1, 1)) -> dict:
    from ..container import parse_container
    from ..image_io import load_image
    from ..lossless.base_codec import BASES
    from ..pipeline import compress, decode

    files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() == ".png")[: limit or None]
    files = take_shard(files, shard)  # shards run side by side, one per core
    from ..profiles.registry import get_profile

    rows = []
    opts: dict = {"weights": weights} if weights else {}
    if adapt_steps is not None:
        opts["adapt_steps"] = adapt_steps
    get_profile("lossless", **opts)  # import + weight loading are not part of the timings
    for f in files:
        x = load_image(str(f))
        n = x.size
        row: dict = {"image": f.name}
        for name in BASELINES:
            data, y = _baseline(name, x)
            assert np.array_equal(np.asarray(y).reshape(x.shape), x), f"{name} not lossless on {f.name}"
            row[name] = 8 * len(data) / n
        t, c0 = time.perf_counter(), time.process_time()
        blob = compress(x, profile="lossless", quality=quality, **opts)
        row["enc_s"], row["enc_cpu_s"] = time.perf_counter() - t, time.process_time() - c0
        t, c0 = time.perf_counter(), time.process_time()
        y = decode(blob, **opts).image
        row["dec_s"], row["dec_cpu_s"] = time.perf_counter() - t, time.process_time() - c0
        if save_dir:  # keep the files, e.g. to decode them again in a fresh process
            save_dir.mkdir(parents=True, exist_ok=True)
            (save_dir / f"{f.stem}.smc").write_bytes(blob)
        row["load_avg"] = os.getloadavg()[0]
        if not np.array_equal(y, x):
            raise AssertionError(f"lossless profile is NOT exact on {f.name}")
        c = parse_container(blob)
        base = sum(s.framed_size() for s in c.streams if s.kind.name == "IMAGE")
        row["ours"] = 8 * len(blob) / n
        row["ours_base"] = 8 * base / n
        row["ours_residual"] = 8 * (len(blob) - base) / n
        res = [s.payload for s in c.streams if s.kind.name == "RESIDUAL"][0]
        row["adapter_bytes"] = int.from_bytes(res[5:7], "big") if res[0] in (2, 4, 5) else 0
        row["adapter_rank"] = int(res[7]) if res[0] == 5 else 0  # version 5: the low-rank form
        base_payload = c.streams[[s.kind.name for s in c.streams].index("IMAGE")].payload
        row["base_quality"] = int(base_payload[1])
        row["base_codec"] = BASES.name_for_id(base_payload[0])  # the per-image search may pick any candidate
        row["exact"] = True
        rows.append(row)
        print(json.dumps(row), flush=True)
        result = summarise(rows, quality)
        if out_json:  # rewritten after every image so an interrupted run keeps its numbers
            out_json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def verify_saved(data_dir: Path, save_dir: Path, threads: int, weights: str | None,
                 shard: tuple[int, int] = (1, 1)) -> int:
    """Decode every saved ``.smc`` in this (fresh) process with ``threads`` torch threads; assert exact."""
    import torch

    from ..image_io import load_image
    from ..pipeline import decode

    torch.set_num_threads(threads)
    opts = {"weights": weights} if weights else {}
    files = take_shard(sorted(save_dir.glob("*.smc")), shard)
    for f in files:
        c0 = time.process_time()
        y = decode(f.read_bytes(), **opts).image
        if not np.array_equal(y, load_image(str(data_dir / f"{f.stem}.png"))):
            raise AssertionError(f"{f.name} does NOT decode to the original pixels with {threads} threads")
        print(f"{f.stem}: exact ({threads} torch threads, fresh process, {time.process_time() - c0:.1f} s CPU)",
              flush=True)
    print(f"all {len(files)} files exact with {torch.get_num_threads()} torch threads")
    return len(files)


def merge_results(paths: list[Path]) -> dict:
    """One result from the JSON files of several shards (rows in image order; all must agree on quality)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    qualities = {r["quality"] for r in parts}
    if len(qualities) != 1:
        raise ValueError(f"shards were run with different --quality settings: {sorted(map(str, qualities))}")
    rows = sorted((row for r in parts for row in r["rows"]), key=lambda row: row["image"])
    names = [row["image"] for row in rows]
    if len(set(names)) != len(names):
        raise ValueError("the shards overlap: an image appears twice")
    return summarise(rows, qualities.pop())


def summarise(rows: list[dict], quality: int | None) -> dict:
    keys = list(BASELINES) + ["ours", "ours_base", "ours_residual", "enc_s", "dec_s", "enc_cpu_s", "dec_cpu_s"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean["max_dec_s"] = float(max(r["dec_s"] for r in rows))
    mean["max_dec_cpu_s"] = float(max(r["dec_cpu_s"] for r in rows))
    return {"images": len(rows), "quality": quality, "mean": mean, "rows": rows}


def markdown(result: dict) -> str:
    m = result["mean"]
    lines = [f"| codec | setting | bpsp (mean of {result['images']} images) |", "|---|---|---|"]
    for k, setting in BASELINES.items():
        lines.append(f"| {k} | {setting} | {m[k]:.3f} |")
    lines.append(f"| ours (lossless profile) | defaults | {m['ours']:.3f} |")
    lines.append(f"| – lossy base (HEIF) | | {m['ours_base']:.3f} |")
    lines.append(f"| – residual (+ container header) | | {m['ours_residual']:.3f} |")
    lines.append("")
    lines.append(f"Ours: encode {m['enc_s']:.1f} s wall / {m['enc_cpu_s']:.1f} s CPU, decode {m['dec_s']:.1f} s wall"
                 f" / {m['dec_cpu_s']:.1f} s CPU mean (max decode {m['max_dec_s']:.1f} s wall,"
                 f" {m['max_dec_cpu_s']:.1f} s CPU) per image; exact on all {result['images']} images coded.")
    lines += ["", "| image | JPEG-XL e7 | JPEG-XL e9 | ours | base (quality) | residual | adapter bytes (rank) | decode s (wall / CPU) | load |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {Path(r['image']).stem} | {r['JPEG-XL-e7']:.3f} | {r['JPEG-XL-e9']:.3f} | {r['ours']:.3f} | {r['ours_base']:.3f} ({r.get('base_quality', '?')})"
                     f" | {r['ours_residual']:.3f} | {r.get('adapter_bytes', 0)} ({r.get('adapter_rank', 0)})"
                     f" | {r['dec_s']:.0f} / {r['dec_cpu_s']:.0f}"
                     f" | {r['load_avg']:.1f} |")
    n = result["images"]
    below = {e: sum(r["ours"] < r[f"JPEG-XL-{e}"] for r in result["rows"]) for e in ("e7", "e9")}
    lines += ["", f"Ours below JPEG-XL effort 7 on {below['e7']} of {n} images, below effort 9 on {below['e9']} of {n}."]
    return "\n".join(lines)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--quality", type=int, default=None, help="base quality (default: the model's)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--json-out", dest="json", default=None, metavar="PATH", help="write all numbers here as JSON")
    p.add_argument("--json", dest="json", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # former spelling
    p.add_argument("--weights", default=None, help="model folder (default: the packaged weights)")
    p.add_argument("--adapt-steps", type=int, default=None,
                   help="per-image head adapter fitting steps (default: the coder's; 0 = off)")
    p.add_argument("--save-dir", default=None, help="keep every .smc file here")
    p.add_argument("--verify", default=None, metavar="DIR",
                   help="only decode the .smc files saved in DIR (this process, --threads) and check them")
    p.add_argument("--threads", type=int, default=2, help="torch threads for --verify")
    p.add_argument("--shard", type=parse_shard, default=(1, 1), metavar="K/N",
                   help="code (or verify) only images K, K+N, ... so N processes can share the cores")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="only merge the --json-out files of finished shards into one table (and --json-out)")


def cmd_bench(args: argparse.Namespace) -> int:
    if args.verify:
        verify_saved(Path(args.data), Path(args.verify), args.threads, args.weights, args.shard)
        return 0
    if args.merge:
        res = merge_results([Path(p) for p in args.merge])
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(markdown(res))
        return 0
    res = run_bench(Path(args.data), args.quality, args.limit, Path(args.json) if args.json else None,
                    args.weights, args.adapt_steps, Path(args.save_dir) if args.save_dir else None, args.shard)
    print(markdown(res))
    return 0
