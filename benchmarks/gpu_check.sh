#!/usr/bin/env bash
# One command for a lent H100/H200 with no network, at most 8 minutes; its tables go to OUTDIR/gpu_check.md
# (what the commands printed besides, to OUTDIR/gpu_check.log):
#
#   bash benchmarks/gpu_check.sh OUTDIR              # on the GPU machine
#   bash benchmarks/gpu_check.sh OUTDIR --dry-run    # the plan only (any machine)
#   bash benchmarks/gpu_check.sh OUTDIR --tiny       # the same stages on tiny twins: checks the script on a CPU
#
# Stages, each under its own time limit within the 8 minutes (a stage that runs out is marked TIMED OUT and the
# next one starts; the zoo prints each generator's row as soon as it is measured):
#   1. the `gpu`-marked tests (pytest -m gpu);
#   2. SD image variations: the seed's way (fp32, batch 1), the default, compiled (benchmarks/gpu.py);
#   3. every zoo generator at full architecture size, random weights: images/s, peak memory, batch_size=auto's
#      estimate (ZOO_ONLY="sd35 sdxl" chooses some);
#   4. the out-of-memory path on real memory.
set -u -o pipefail

out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR [--dry-run|--tiny]}
mode=${2:-}
case "$mode" in "" | --dry-run | --tiny) ;; *) echo "unknown option $mode (--dry-run or --tiny)" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && python=.venv/bin/python
mkdir -p "$out"
tables="$out/gpu_check.md"
log="$out/gpu_check.log"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
export AIGEN_CACHE="$out/aigen-cache"
total=480   # seconds: the whole check
reserve=20  # kept back: a stage that overruns is killed 10 s after its limit
started=$SECONDS
tiny=()
sd=(--compile --batch 8 --runs 1)
if [ "$mode" = --tiny ]; then
    tiny=(--tiny)
    sd=(--batch 2 --runs 1 --steps 5) # inductor on a CPU takes minutes: the compiled row is the GPU's
fi
read -r -a zoo_only <<<"${ZOO_ONLY:-}"

{
    echo "# GPU check"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${mode:+, $mode}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
    echo
} >"$tables"
: >"$log"

# stage TITLE BUDGET_SECONDS COMMAND...: runs within its budget and what is left of the 8 minutes.
stage() {
    local title=$1 budget=$2
    shift 2
    local left=$((total - reserve - (SECONDS - started)))
    ((budget > left)) && budget=$left
    echo "## $title" >>"$tables"
    echo >>"$tables"
    echo "\`$*\` (limit ${budget} s)" >>"$tables"
    echo >>"$tables"
    if [ "$mode" = --dry-run ]; then
        echo "(dry run: not run)" >>"$tables"
    elif ((budget < 5)); then
        echo "SKIPPED: the 8 minutes are spent" >>"$tables"
    else
        local begin=$SECONDS status=0
        echo "### $title" >>"$log"
        timeout --kill-after=10 "$budget" "$@" >>"$tables" 2>>"$log" || status=$?
        if ((status == 124 || status == 137)); then
            echo "TIMED OUT after $((SECONDS - begin)) s" >>"$tables"
        elif ((status != 0)); then
            echo "FAILED with exit status $status after $((SECONDS - begin)) s (see gpu_check.log)" >>"$tables"
        else
            echo "done in $((SECONDS - begin)) s" >>"$tables"
        fi
    fi
    echo >>"$tables"
}

stage "gpu-marked tests" 120 "$python" -m pytest -m gpu -v -p no:cacheprovider tests/
stage "SD image variations: the seed's way, the default, compiled" 130 \
    "$python" -m benchmarks.gpu "${tiny[@]}" --no-zoo --no-oom "${sd[@]}"
stage "zoo at full architecture size" 170 \
    "$python" -m benchmarks.gpu "${tiny[@]}" --zoo-only --max-batch 2 ${zoo_only[@]:+--only "${zoo_only[@]}"}
stage "out of memory on real memory" 40 "$python" -m benchmarks.gpu "${tiny[@]}" --oom-only --oom-batch 32

echo "total: $((SECONDS - started)) s of at most $total" >>"$tables"
echo "wrote $tables"
