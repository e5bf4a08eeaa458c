#!/usr/bin/env bash
# Cross-check of lossless-bench's baseline settings against the command-line tools (BENCHMARKS.md,
# `## Lossless`): cjxl at its default effort (7) and cwebp -lossless -z 9, bpsp on a few Kodak images,
# printed beside the library numbers at the settings lossless-bench uses.
# usage: scripts/check_lossless_baseline_tools.sh [kodim03 kodim13 kodim23]   (needs cjxl, cwebp: apt-get install libjxl-tools webp)
set -euo pipefail
kodak=${SEMCODEC_DATA:-../shared/data}/kodak
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "cjxl: $(cjxl --version 2>&1 | head -1); cwebp: $(cwebp -version)"
for name in "${@:-kodim03 kodim13 kodim23}"; do
  for n in $name; do
    f=$kodak/$n.png
    cjxl -q 100 "$f" "$tmp/$n.jxl" >/dev/null 2>&1
    cwebp -quiet -lossless -z 9 "$f" -o "$tmp/$n.webp"
    python - "$f" "$tmp/$n.jxl" "$tmp/$n.webp" <<'PY'
import os, sys
import numpy as np
from PIL import Image
from semcodec.bench.lossless import _baseline
src, jxl, webp = sys.argv[1:]
x = np.asarray(Image.open(src).convert("RGB"))
lib = {k: 8 * len(_baseline(k, x)[0]) / x.size for k in ("JPEG-XL-e7", "WebP-lossless")}
print(f"{os.path.basename(src)}: cjxl {8 * os.path.getsize(jxl) / x.size:.3f} vs libjxl e7 {lib['JPEG-XL-e7']:.3f};"
      f" cwebp -z 9 {8 * os.path.getsize(webp) / x.size:.3f} vs libwebp m6 q100 {lib['WebP-lossless']:.3f}")
PY
  done
done
