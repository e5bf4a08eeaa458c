#!/usr/bin/env bash
# Every number of BENCHMARKS.md `## Text channel`: one text-bench run per caption set, one thread.
# usage: scripts/bench_text.sh OUTDIR [PART,...]   (needs ../shared/data or SEMCODEC_DATA; ~1 h on one core)
# parts: coco_every25 long60 long coco_full coco_full_rest (default all; run two part lists side by side on 2 cores)
set -euo pipefail
out=${1:?usage: scripts/bench_text.sh OUTDIR [PART,...]}
parts=",${2:-coco_every25,long60,long,coco_full,coco_full_rest},"
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { local name=$1; shift; [[ $parts == *",$name,"* ]] || return 0; semcodec text-bench "$@" --json-out "$out/$name.json" 2>/dev/null | grep -v '^  done' > "$out/$name.txt"; cat "$out/$name.txt"; }
run coco_every25 --set coco-val --every 25                       # all coders, 1,001 captions
run long60 --set long60                                          # all coders, 101 descriptions cut to 60 words
run long --set long --coders zlib,brotli,lm-ac-cache,lm-mix      # full ~250-word descriptions
run coco_full --set coco-val --coders raw,zlib,brotli,zstd,huffman,lm-mix   # all 25,014 COCO val2017 captions
run coco_full_rest --set coco-val --coders clip-index,lm-ac,lm-rank,lm-ac-cache  # the other coders on all of them
