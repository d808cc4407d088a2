#!/usr/bin/env bash
# Perplexity per weight format on held-out text (docs/bench.md, "Perplexity per format"):
# the growth experiment's corpus (scripts/experiment-corpus.sh: English fortunes, every 10th
# held out), its model A (specs/experiments/growth-a.tfs, bytes as tokens) trained with the fused
# backend, then `tfc bench accuracy --text` scores all of valid.txt on the naive backend and on
# the fused backend in every weight format. Deterministic at a fixed --threads (2 here).
#   usage: scripts/perplexity-per-format.sh OUT_DIR [TFC]      (TFC: default .build/release/tfc)
set -euo pipefail

out=${1:?usage: scripts/perplexity-per-format.sh OUT_DIR [TFC]}
tfc=${2:-.build/release/tfc}
steps=600
scripts/experiment-corpus.sh "$out/corpus"
if [ ! -s "$out/a$steps/weights.safetensors" ]; then
  "$tfc" train specs/experiments/growth-a.tfs --data "$out/corpus/train.txt" --eval-data "$out/corpus/valid.txt" \
    --steps $steps --batch 8 --seq 128 --lr 3e-3 --warmup 30 --seed 1 --eval-every 100 --eval-windows 64 \
    --backend fused --threads 2 --out "$out/a$steps"
fi
"$tfc" bench accuracy specs/experiments/growth-a.tfs --weights "$out/a$steps/weights.safetensors" --weights-format all \
  --text "$out/corpus/valid.txt" --threads 2 --json "$out/accuracy.json"
