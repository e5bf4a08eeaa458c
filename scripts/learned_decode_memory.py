#!/usr/bin/env python3
"""Peak RSS and CPU of decoding a header-forged ``resulic`` or ``itc`` file (issue 20).

The file is a real 32×32 stream (resulic: TAEF2 latent codec; itc: the tiny random SD of
``generative/components/tiny.py`` with a webp base, as in the fuzz harness) whose checksum-valid
header claims ``--size WxH``. ``--uncapped`` lifts the profile's decode pixel cap and work budget to
measure the decoder itself. Run each measurement in a fresh process (peak RSS is per process):

    SEMCODEC_TAEF2=DIR python scripts/learned_decode_memory.py resulic --size 1024x1024
    python scripts/learned_decode_memory.py itc --size 1024x1024 --uncapped
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import semcodec
from semcodec.container import Container, parse_container
from semcodec.generative.components import budget as diffusion_budget
from semcodec.generative.resulic import profile as resulic_profile


def seed_image(n: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 7) * np.cos(y / 9), 4 * x + y, 200 * ((x - 16) ** 2 + (y - 12) ** 2 < 60)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", choices=("resulic", "itc"))
    ap.add_argument("--size", default="1024x1024", help="WxH the forged header claims")
    ap.add_argument("--uncapped", action="store_true", help="lift the profile's pixel cap and the work budget")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        opts: dict = {}
        if args.profile == "itc":
            from semcodec.generative.components.tiny import build_tiny_sd

            sd = build_tiny_sd(Path(tmp) / "sd")
            opts = {"model": str(sd), "controlnet": str(sd / "controlnet"), "base_profile": "webp"}
            data = semcodec.compress(seed_image(), bpp=3.0, profile="itc", caption="a red circle", steps=2, seed=7,
                                     **opts)
        else:
            data = semcodec.compress(seed_image(), bpp=2.0, profile="resulic")
        c = parse_container(data, max_pixels=None)
        forged = Container(w, h, c.profile_id, c.config_hash, list(c.streams)).to_bytes()
        semcodec.decompress(data, **opts)
        budget = None
        if args.uncapped:
            resulic_profile.TAEF2_MAX_PIXELS = diffusion_budget.MAX_AREA_FACTOR = 10**12
            budget = 1e12
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.process_time()
        try:
            out = semcodec.pipeline.decode(forged, max_pixels=40_000_000, work_budget=budget, **opts).image
            result = f"pixels {hashlib.sha256(out.tobytes()).hexdigest()[:16]}"
        except semcodec.SemcodecError as e:
            result = f"refused: {type(e).__name__}: {e}"
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{args.profile} {w}x{h}{' uncapped' if args.uncapped else ''} file={len(forged)}B: loaded {r0:.0f} MB,"
              f" peak {r:.0f} MB (+{r - r0:.0f}), decode CPU {time.process_time() - t0:.2f} s, {result}")


if __name__ == "__main__":
    main()
