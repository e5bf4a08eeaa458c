#!/usr/bin/env bash
# Every number of BENCHMARKS.md `## Lossless`: Kodak bpsp of the classical codecs and the lossless
# profile (one shard per core), then a fresh-process decode of every saved .smc with 1 and 2 torch threads.
# usage: scripts/bench_lossless.sh OUTDIR [WEIGHTS_DIR]   (needs ../shared/data or SEMCODEC_DATA; ~20 min on 2 cores)
set -euo pipefail
out=${1:?usage: scripts/bench_lossless.sh OUTDIR [WEIGHTS_DIR]}
kodak=${SEMCODEC_DATA:-../shared/data}/kodak
weights=(); [[ -n ${2:-} ]] && weights=(--weights "$2")
shards=${SHARDS:-2}
mkdir -p "$out/smc"
pids=()
for k in $(seq 1 "$shards"); do
  semcodec lossless-bench --data "$kodak" "${weights[@]}" --shard "$k/$shards" --json-out "$out/shard$k.json" \
    --save-dir "$out/smc" > "$out/shard$k.log" 2> "$out/shard$k.err" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
semcodec lossless-bench --merge "$out"/shard*.json --json-out "$out/bench.json" | tee "$out/bench.md"
for threads in 1 2; do  # fresh processes, each shard with the same thread count
  pids=()
  for k in $(seq 1 "$shards"); do
    semcodec lossless-bench --data "$kodak" "${weights[@]}" --verify "$out/smc" --threads "$threads" \
      --shard "$k/$shards" > "$out/verify_t${threads}_$k.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  tail -n 1 "$out"/verify_t"${threads}"_*.log
done
