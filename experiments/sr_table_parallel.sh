#!/usr/bin/env bash
# Run `python -m evals.sr_table run` for several models side by side on a machine with many cores or a GPU.
#
# Per model: the first seed runs first (validation fit with early stopping, then its test-fold refit); the
# other seeds start as soon as that validated epoch count is recorded and refit for that many epochs, as the
# sequential `sr_table run --seed 0 --seed 1 --seed 2` would. The numbers are the same kind; only the wall
# time differs. Logs go to OUT/logs/.
#
#   experiments/sr_table_parallel.sh runs/sr_models gru4rec gru4rec-semi msgat
#   PARAMS="lr=0.001 dropout=0.3" TAG=+lr1e-3 experiments/sr_table_parallel.sh runs/tuning niser-semf
#
# Environment: SEEDS (default "0 1 2"), PARAMS (KEY=VALUE hyper-parameter overrides), TAG (row-name suffix,
# needed with PARAMS), EXTRA (more `sr_table run` flags, e.g. --progress), DATASET (default amazon-beauty).
set -u
out=$1
shift
seeds=(${SEEDS:-0 1 2})
params=()
for pair in ${PARAMS:-}; do params+=(--param "$pair"); done
tag=${TAG:-}
extra=(${EXTRA:-})
dataset=${DATASET:-amazon-beauty}
mkdir -p "$out/logs"

run_seed() {  # model seed [flags...]
    local model=$1 seed=$2
    shift 2
    python -m evals.sr_table run --model "$model" --seed "$seed" --out "$out" --dataset "$dataset" \
        --tag "$tag" "${params[@]}" "${extra[@]}" "$@" >"$out/logs/$model$tag.seed$seed.log" 2>&1
}

run_model() {
    local model=$1 record pid seed
    record=$(python -m evals.sr_table record --model "$model" --dataset "$dataset" "${params[@]}") || return 1
    run_seed "$model" "${seeds[0]}" &
    pid=$!
    if ((${#seeds[@]} > 1)); then
        until [[ -e $record ]]; do
            kill -0 "$pid" 2>/dev/null || { echo "$model$tag: seed ${seeds[0]} ended without a record" >&2; return 1; }
            sleep 5
        done
        for seed in "${seeds[@]:1}"; do
            run_seed "$model" "$seed" --skip-validation &
        done
    fi
    wait
}

for model in "$@"; do
    run_model "$model" &
done
wait
