#!/usr/bin/env bash
# Issue 17, deliverable 2: does a checkerboard context model pay over the mean-scale hyperprior?
# Both arms warm-start from the shipped lic weights (the context correction is zero-initialised, so both
# start as the same model) and train the same steps with the same loss, data and seed; then their RD
# curves (estimated rates) are compared on BSDS500 val.
#   usage: scripts/lic_context_ab.sh OUT_DIR [STEPS]      (session 6: STEPS=1000, one thread per arm)
set -euo pipefail
out=${1:?usage: scripts/lic_context_ab.sh OUT_DIR [STEPS]}
steps=${2:-1000}
data=${SEMCODEC_DATA:-../shared/data}
arm() {  # name model
  nice -n 15 python -m semcodec.train.lic --out "$out/$1" --model "$2" --terms mse=0.5,ms-ssim=0.5 \
    --lam-min 0.15 --lam-max 16 --scales 1,2,4 --scale-probs 0.1,0.45,0.45 --crop 256 --crop-per-scale 128 \
    --batch 4 --iters "$steps" --decay-at 0.85 --lr 1e-4 --clip-grad 0 --val-every 250 --ckpt-every 100 \
    --threads 1 --train-splits train,test --train-dirs "$data/imagenet_samples" --s1-downsample 2 \
    --init-from src/semcodec/weights/lic --quiet
}
arm base lic-small & arm ctx lic-checkerboard & wait
python scripts/compare_lic_models.py src/semcodec/weights/lic "$out/base/last.pt" "$out/ctx/last.pt" \
  --images 48 > "$out/compare_48.json"
python - "$out/compare_48.json" <<'PY'
import json, sys
from semcodec.eval.bdrate import bd_rate
d = json.load(open(sys.argv[1]))
base, ctx = list(d["curves"].values())[1:]
for s in base:
    for m in ("psnr", "ms_ssim"):
        print(f"x{s} {m}: ctx vs base BD-rate (estimated rates) "
              f"{bd_rate(base[s]['bpp_est'], base[s][m], ctx[s]['bpp_est'], ctx[s][m]).value:+.2f} %")
PY
