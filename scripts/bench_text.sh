#!/usr/bin/env bash
# Every number of BENCHMARKS.md `## Text channel`: one text-bench run per caption set, one thread.
# usage: scripts/bench_text.sh OUTDIR   (needs ../shared/data or SEMCODEC_DATA; ~30 min on 2 CPU cores)
set -euo pipefail
out=${1:?usage: scripts/bench_text.sh OUTDIR}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { local name=$1; shift; semcodec text-bench "$@" --json "$out/$name.json" 2>/dev/null | grep -v '^  done' > "$out/$name.txt"; cat "$out/$name.txt"; }
run coco_every25 --set coco-val --every 25                       # all coders, 1,001 captions
run long60 --set long60                                          # all coders, 101 descriptions cut to 60 words
run long --set long --coders zlib,brotli,lm-ac-cache,lm-mix      # full ~250-word descriptions
run coco_full --set coco-val --coders raw,zlib,brotli,zstd,huffman,lm-mix   # all 25,014 COCO val2017 captions
