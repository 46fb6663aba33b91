#!/usr/bin/env bash
# CoTT against both baselines where the step is hard to learn (issue 31): CoNLL04 and three variants of it built by
# experiments.hard_steps, at the README's relation recipe (the defaults of python -m train), 3 seeds.
#
#   CONLL=../shared/data/conll04/derived_tacred_style RUNS=runs/hard JOBS=16 bash experiments/hard_steps_grid.sh
#
# Variants (training split cut to 4,000 pairs of whole sentences, 3 epochs; validation and test whole):
#   few    CoNLL04's own types;   noisy  half the mentions given another type (every split);
#   hard   noisy, and each sentence joined with its neighbours (long inputs).
# CoNLL04 itself trains on all 12k pairs for 1 epoch (the results grid's budget).
# Methods: finetune, prompt, cott, and CoTT with one change each: cott-alpha (α = 0.25 on L_I), cott-nocc (λ = 0).
# A rerun skips the runs already recorded. ONLY=REGEX keeps the queue's lines ("DATA METHOD SEED FLAGS") that match it. Each run leaves RUNS/records/NAME.json:
# the run's metrics.json (test: every answer mode) with the selected checkpoint's validation reading beside it.
set -uo pipefail
: "${CONLL:?}" "${RUNS:?}" "${JOBS:=4}" "${SEEDS:=0 1 2}"
mkdir -p "$RUNS/records" "$RUNS/data"
source "$(dirname "$0")/queue.sh"
COMMON=${COMMON:-"--max-eval-examples 1000 --eval-test --save-weights delta --save-dtype float16"}
for v in "few --train-pairs 4000" "noisy --train-pairs 4000 --noise 0.5" "hard --train-pairs 4000 --noise 0.5 --longer 1"; do
  set -- $v
  [[ -f $RUNS/data/$1/variant.json ]] || python -m experiments.hard_steps --data "$CONLL" --output "$RUNS/data/$1" "${@:2}" >/dev/null
done
METHODS=("prompt|--method prompt" "cott|" "cott-alpha|--step-loss-weight 0.25" "cott-nocc|--no-contrastive" "finetune|--method finetune")

one() {  # one line of the queue: data method seed flags...
  local data=$1 name=$2 seed=$3; shift 3
  local folder="$RUNS/data/$data" budget=""
  [[ $data == conll04 ]] && folder=$CONLL budget="--epochs 1"
  local dir="$RUNS/$data-$name-seed$seed"
  [[ -f $RUNS/records/$data-$name-seed$seed.json ]] && return 0  # recorded by an earlier, cut-off grid
  train_run "$dir" --task conll04 --data "$folder" --seed "$seed" $COMMON $budget "$@" || return 0
  python - "$dir" "$RUNS/records/$data-$name-seed$seed.json" "$data" "$name" "$seed" <<'EOF'
import json, sys
run, out, data, method, seed = sys.argv[1:]
metrics = json.load(open(run + "/metrics.json"))
config = json.load(open(run + "/best/cott.json"))
record = {"data": data, "method": method, "seed": int(seed), "val": config["metrics"]["val"],
          "test": metrics["test"], "answer_mode": config["answer_mode"], "max_length": config["max_length"],
          "train_seconds": metrics["train_seconds"], "best_iteration": metrics["best_iteration"], "iterations": metrics["iterations"],
          "command": config["training"]["command"]}
open(out, "w").write(json.dumps(record))
EOF
  echo "done $dir"
}
export -f one
export CONLL RUNS COMMON

queue() {  # the hardest condition first: a cut-off grid still answers the main question
  for data in hard noisy conll04 few; do
    for seed in $SEEDS; do
      for m in "${METHODS[@]}"; do echo "$data ${m%%|*} $seed ${m#*|}" | sed 's/ *$//'; done
    done
  done
}
queue | run_queue
