#!/usr/bin/env bash
# Encoder-side latent refinement on all 24 Kodak images (issue 17): lic and lic-msssim with the default
# refine_steps and with refinement off, avif measured as the anchor in the same run.
# Usage: scripts/lic_refine_eval.sh [KODAK_DIR] [OUT_DIR]
set -euo pipefail
data=${1:-../shared/data/kodak}
out=${2:-${SEMCODEC_RUNS:-runs}/lic-refine-eval}
nice -n 10 semcodec eval --data "$data" \
  --profile lic-msssim,lic-msssim:refine_steps=0,lic,lic:refine_steps=0,avif \
  --bpp 0.01,0.02,0.05,0.1 --anchor avif --metrics psnr,ms-ssim --workers 1 --no-save-decoded --out "$out"
