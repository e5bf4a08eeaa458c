#!/usr/bin/env bash
# Quick A/B of the encoder-side latent refinement of lic / lic-msssim (issue 17): 6 Kodak images at 0.02 and
# 0.05 bpp, every variant (steps:lr:method) against refine_steps=0 of the same profile, measured in one eval run.
# Usage: scripts/lic_refine_ab.sh [KODAK_DIR] [OUT_DIR] [PROFILE]
set -euo pipefail
data=${1:-../shared/data/kodak}
out=${2:-${SEMCODEC_RUNS:-runs}/lic-refine-ab}
p=${3:-lic-msssim}
variants="$p:refine_steps=0"
for v in "2:0.01:ste" "2:0.02:ste" "4:0.005:ste" "4:0.01:ste" "4:0.01:sga" "4:0.03:sga" "8:0.01:ste"; do
  IFS=: read -r steps lr method <<<"$v"
  variants+=",$p:refine_steps=$steps:refine_lr=$lr:refine_method=$method"
done
nice -n 10 semcodec eval --data "$data" --limit 6 --profile "$variants" --bpp 0.02,0.05 \
  --anchor "$p:refine_steps=0" --metrics psnr,ms-ssim --workers 1 --no-save-decoded --out "$out/$p"
