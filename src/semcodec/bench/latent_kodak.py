"""Kodak benchmark of the latent-space codec + TAEF2 decoder (the ``resulic`` profile without diffusion).

    python -m semcodec.bench.latent_kodak --q 0 4 8 --out $SEMCODEC_RUNS/resulic/bench.json

Per image: TAEF2 alone (encode → decode, no quantisation: the ceiling of this decoder), then for each
q-step index a real ``.smc`` from :func:`semcodec.pipeline.compress` (bpp = 8·file bytes / pixels),
decoded with :func:`semcodec.pipeline.decompress`, and AVIF at the same byte budget as a baseline
measured in the same run. Prints a Markdown table of means over the 24 images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import RateError
from ..metrics.pixel import ms_ssim, psnr
from ..paths import shared_data_dir
from ..pipeline import compress, decompress
from ..profiles import get_profile


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semcodec.bench.latent_kodak", description=__doc__.splitlines()[0])
    ap.add_argument("--q", type=int, nargs="+", default=[0, 4, 8], help="q-step indices (resulic quality)")
    ap.add_argument("--codec", default=None, help="latent codec folder (default: the shipped one)")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--baseline", default="avif")
    ap.add_argument("--out", default=None, help="per-image rows as JSON, rewritten after every image")
    ap.add_argument("--summarize", default=None, help="only print the table of an existing --out file")
    args = ap.parse_args(argv)
    if args.summarize:
        table(json.loads(Path(args.summarize).read_text()), args.baseline)
        return
    data = shared_data_dir()
    if data is None:
        raise SystemExit("shared data (Kodak) not found; set SEMCODEC_DATA")
    files = sorted((data / "kodak").glob("kodim*.png"))[: args.limit]
    opts = {"codec": args.codec} if args.codec else {}
    prof = get_profile("resulic", **opts)
    rows = []
    t0 = time.time()
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        px = img.shape[0] * img.shape[1]
        with torch.no_grad():
            ref = prof.space.decode(prof._encode_latent(img))[: img.shape[0], : img.shape[1]]
        row = {"image": f.name, "taef2_psnr": psnr(img, ref), "taef2_msssim": ms_ssim(img, ref), "points": []}
        for q in args.q:
            smc = compress(img, quality=q, profile=prof)
            dec = decompress(smc, **opts)
            point = {"q": q, "bpp": 8 * len(smc) / px, "psnr": psnr(img, dec), "msssim": ms_ssim(img, dec)}
            try:
                base = compress(img, bpp=8 * len(smc) / px, profile=args.baseline)
                bdec = decompress(base)
                point.update(base_bpp=8 * len(base) / px, base_psnr=psnr(img, bdec), base_msssim=ms_ssim(img, bdec))
            except RateError:  # the baseline cannot go that low: reported as missing
                point.update(base_bpp=float("nan"), base_psnr=float("nan"), base_msssim=float("nan"))
            row["points"].append(point)
        rows.append(row)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
        print(f"{f.name} {time.time() - t0:.0f}s " + " ".join(
            f"q{p['q']}:{p['bpp']:.4f}bpp/{p['psnr']:.2f}dB" for p in row["points"]), flush=True)
    table(rows, args.baseline)


def table(rows: list[dict], baseline: str) -> None:
    n = len(rows)
    qs = [p["q"] for p in rows[0]["points"]]
    print(f"\nKodak ({n} images), means; bpp from real .smc files; {baseline} at the same byte budget\n")
    print("| setting | bpp | PSNR (dB) | MS-SSIM | "
          f"{baseline} bpp | {baseline} PSNR | {baseline} MS-SSIM |")
    print("|---|---|---|---|---|---|---|")
    print(f"| TAEF2 alone (unquantised latent) | – | {np.mean([r['taef2_psnr'] for r in rows]):.2f} |"
          f" {np.mean([r['taef2_msssim'] for r in rows]):.4f} | | | |")
    for i, q in enumerate(qs):
        pts = [r["points"][i] for r in rows]

        def m(k: str, pts: list = pts) -> float:
            return float(np.mean([p[k] for p in pts]))

        print(f"| resulic q={q} (latent codec + TAEF2) | {m('bpp'):.4f} | {m('psnr'):.2f} | {m('msssim'):.4f} |"
              f" {m('base_bpp'):.4f} | {m('base_psnr'):.2f} | {m('base_msssim'):.4f} |")


if __name__ == "__main__":
    main()
