#!/usr/bin/env python3
"""Peak RSS and CPU of decoding a header-forged ``lic`` file (issue 20), one-pass or strip synthesis.

The file is a real lic stream of a 64×64 crop with its header edited to claim ``--size``² pixels and
its PARAMS to ``--scale``. Run each measurement in a fresh process (peak RSS is per process):

    python scripts/lic_decode_memory.py new 1 --image kodim01.png
    python scripts/lic_decode_memory.py old 1 --image kodim01.png    # the decoder before strips
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time

import numpy as np
import torch
from PIL import Image

import semcodec
from semcodec.container import Container, Stream, StreamKind, pack_params, parse_container, unpack_params
from semcodec.image.learned import coding
from semcodec.image.learned.profile import PARAMS_SCHEMA


def one_pass(self: coding.LicCoder, y: torch.Tensor, scale: int, width: int, height: int,
             rows: int | None = None) -> np.ndarray:
    x = self.model.upsample(self.model.g_s(y.contiguous(memory_format=torch.channels_last)), scale)
    return coding.to_uint8(x[..., :height, :width])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("old", "new"))
    ap.add_argument("scale", type=int)
    ap.add_argument("--image", required=True, help="any RGB image; its top-left 64×64 is coded")
    ap.add_argument("--size", type=int, default=6324)
    args = ap.parse_args()
    img = np.asarray(Image.open(args.image).convert("RGB"))[:64, :64]
    data = semcodec.compress(img, profile="lic", quality=0.2, scale=1)
    c = parse_container(data, max_pixels=None)
    streams = list(c.streams)
    p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
    p["scale"] = args.scale
    streams[0] = Stream(StreamKind.PARAMS, pack_params(PARAMS_SCHEMA, p))
    forged = Container(args.size, args.size, c.profile_id, c.config_hash, streams).to_bytes()
    semcodec.decompress(data)
    if args.mode == "old":
        coding.LicCoder.synthesize = one_pass
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.process_time()
    out = semcodec.decompress(forged, max_pixels=40_000_000)
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.mode} {args.size}x{args.size} scale {args.scale} file={len(forged)}B: loaded {r0:.0f} MB,"
          f" peak {r:.0f} MB (+{r - r0:.0f}), decode CPU {time.process_time() - t0:.1f} s,"
          f" pixels {hashlib.sha256(out.tobytes()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
