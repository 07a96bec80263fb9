#!/usr/bin/env bash
# Usage: bash benchmarks/same_bytes.sh CHECKOUT OUT
# Makes a dataset with every tiny twin and both controls, each with pairing.geometry=symmetric and =direct, from the
# checkout CHECKOUT (its own code, this project's .venv), and writes OUT/hashes.txt: the SHA-256 of every image and
# manifest and each dataset's fingerprint. Run it on two checkouts (e.g. before and after a refactor, via
# `git worktree add`) and compare the two hashes.txt with diff: the same config must make the same bytes.
set -euo pipefail
CHECKOUT=$(realpath "$1")
OUT=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYTHON="$HERE/.venv/bin/python"
rm -rf "$OUT"
mkdir -p "$OUT"
export AIGEN_CACHE="$OUT/cache" HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 WANDB_MODE=disabled
# Ten JPEG crops of the bundled photos (sides 72-160) with their lossless twins: the same corpus for every checkout.
(cd "$HERE" && "$PYTHON" -c "
from pathlib import Path
from aigen.corpus import build_corpus
build_corpus(Path('$OUT/corpus'), 10, seed=3, min_side=72, max_side=160)
")
cd "$CHECKOUT"
for generator in sd_tiny vae_tiny img2img_tiny inpaint_tiny unclip_tiny kandinsky_tiny identity lossless_twin; do
  for geometry in symmetric direct; do
    extra=()
    [ "$generator" = lossless_twin ] && extra+=("generator.twins=$OUT/corpus/lossless")
    if [ "$generator" = identity ] || [ "$generator" = lossless_twin ]; then extra+=("generator.gen_size=96"); fi
    PYTHONPATH="$CHECKOUT" "$PYTHON" run.py source=folder "source.root=$OUT/corpus/jpeg" "generator=$generator" \
      "${extra[@]}" size=64 "pairing.geometry=$geometry" logger=none "dataset_dir=$OUT/$generator-$geometry" \
      "hydra.run.dir=$OUT/runs/$generator-$geometry" > "$OUT/$generator-$geometry.log" 2>&1 \
      || { echo "FAILED $generator $geometry (see $OUT/$generator-$geometry.log)"; exit 1; }
  done
done
cd "$OUT"
for dataset in */; do
  case "$dataset" in runs/|corpus/|cache/) continue ;; esac
  find "$dataset" \( -path '*/original/*' -o -path '*/ai/*' \) -type f -print0 | sort -z | xargs -0 sha256sum
  for manifest in "$dataset"manifest*.jsonl; do echo "$(sha256sum < "$manifest" | cut -d' ' -f1)  $manifest"; done
  echo "fingerprint $("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["fingerprint"])' "${dataset}dataset.json")  $dataset"
done > hashes.txt
echo "$(wc -l < hashes.txt) hashes in $OUT/hashes.txt"
