"""Where the lossless profile's bits go per base candidate, and what the per-image base search picks.

For each image and base candidate (codec:quality): the tile estimate the search ranks by
(``estimate.total_bits``), and either the teacher-forced split base / residual / residual with the
per-image adapter (``--split``, no arithmetic coding) or the real container size of a file coded with
that one base (``--real``). With ``--real`` it also prints the smallest real file among the k best by
tile estimate (k = 1, 2, 3): what a search that codes its k finalists in full would keep, the bound for
``search_finalists`` = k (which compares them by whole-image estimates), so settings can be chosen on
images that are not the benchmark's.

    python scripts/lossless_base_search.py --split IMG.png ...          # bpsp split per candidate
    python scripts/lossless_base_search.py --real IMG.png ...           # real sizes + search outcomes
    python scripts/lossless_base_search.py --real --downsample 2 --crop 384x256 photo.jpg ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from semcodec.lossless.estimate import estimate, total_bits
from semcodec.lossless.profile import _cached_model, default_weights
from semcodec.lossless.search import parse_candidates
from semcodec.pipeline import compress


def load(path: str, downsample: int, crop: tuple[int, int] | None) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    if downsample > 1:
        im = im.reduce(downsample)  # box filter: washes out JPEG artefacts
    if crop:
        im = im.crop((0, 0, min(im.width, crop[0]), min(im.height, crop[1])))
    return np.asarray(im)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--candidates", default="20,30,40,50,60,70")
    ap.add_argument("--adapt-steps", type=int, default=200)
    ap.add_argument("--split", action="store_true", help="teacher-forced base/residual/adapted split")
    ap.add_argument("--real", action="store_true", help="real file size per candidate + search outcomes")
    ap.add_argument("--downsample", type=int, default=1)
    ap.add_argument("--crop", default=None, help="WxH: keep the top-left corner (after downsampling)")
    a = ap.parse_args()
    crop = tuple(int(v) for v in a.crop.split("x")) if a.crop else None
    model = _cached_model(str(default_weights()))
    cands = parse_candidates(a.candidates, model.cfg.base_codec)
    for f in a.images:
        x = load(f, a.downsample, crop)
        rows = {}
        for c in cands:
            key = f"{c.codec}:{c.quality}"
            row = {"tile_estimate": round(total_bits(model, x, c.quality, c.codec)[0] / x.size, 4)}
            if a.split:
                e = estimate(model, x, c.quality, a.adapt_steps, c.codec)
                row.update(base=e["base_bpsp"], residual=e["residual"]["bpsp"],
                           adapted=e.get("adapted", e["residual"])["bpsp"], total=e["total_bpsp"])
            if a.real:
                blob = compress(x, profile="lossless", base_codec=c.codec, base_candidates=str(c.quality),
                                adapt_steps=a.adapt_steps)
                row["real"] = round(8 * len(blob) / x.size, 4)
            rows[key] = row
        out = {"image": Path(f).name, "shape": list(x.shape), "candidates": rows}
        if a.real:
            ranked = sorted(rows, key=lambda k: rows[k]["tile_estimate"])  # stable, as the search
            out["search"] = {f"coded{k}": min(rows[r]["real"] for r in ranked[:k]) for k in (1, 2, 3)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
