#!/usr/bin/env bash
# Today's CoTT against step-following variants, 3 seeds each, at the grid's budgets, then experiments.following on
# every run (val and test). Runs go JOBS at a time (one GPU takes many of these small runs at once).
#
#   CLINC=../shared/data/clinc150 CONLL=../shared/data/conll04/derived_tacred_style RUNS=runs/following \
#     RECORDS=runs/following/records JOBS=12 bash experiments/following_grid.sh
#
# ONLY=REGEX keeps the queue's lines ("TASK NAME SEED FLAGS") that match it.
# Each run leaves RECORDS/NAME.json: experiments.following's record with the training run's metrics.json beside it.
set -uo pipefail
: "${CLINC:?}" "${CONLL:?}" "${RUNS:?}" "${RECORDS:?}" "${JOBS:=4}" "${SEEDS:=0 1 2}"
mkdir -p "$RUNS" "$RECORDS"
source "$(dirname "$0")/queue.sh"
WARM="--method cott --mlm-warmup-steps 100 --soft-verbalizer --freeze-embeddings --save-weights delta --save-dtype float16"
CLINC_BUDGET=${CLINC_BUDGET:-"--epochs 2 --max-length 48 --lr 1e-4 --head-lr 5e-4 --eval-every 157 --max-eval-examples 600"}
CONLL_BUDGET=${CONLL_BUDGET:-"--epochs 1 --max-length 64 --lr 1.5e-4 --head-lr 5e-4 --eval-every 125 --max-eval-examples 600"}
FOLLOWING_FLAGS=${FOLLOWING_FLAGS:-"--max-val-examples 1000"}
# name|task|variant flags, in the order they are run (the comparison first)
VARIANTS_CLINC=(
  "cott|"
  "follow-set-1|--step-following 1"
  "follow-distill-1|--step-following 1 --step-following-form distill"
  "follow-set-1-warmup-0.5|--step-following 1 --step-following-warmup 0.5"
  "follow-set-0.3|--step-following 0.3"
)
VARIANTS_CONLL=("cott|" "follow-set-1|--step-following 1" "follow-distill-1|--step-following 1 --step-following-form distill")

one() {  # one line of the queue: task name seed flags...
  local task=$1 name=$2 seed=$3; shift 3
  local data budget extra=""
  if [[ $task == clinc150 ]]; then data=$CLINC; budget=$CLINC_BUDGET; extra="--out-of-scope"
  else data=$CONLL; budget=$CONLL_BUDGET; fi
  local dir="$RUNS/$task-$name-seed$seed"
  train_run "$dir" --task "$task" --data "$data" --seed "$seed" --eval-test $WARM $budget "$@" || return 0
  python -m experiments.following --checkpoints "$dir/best" --name "$task $name seed $seed" --data "$data" \
    --output "$dir.following.jsonl" $extra $FOLLOWING_FLAGS >>"$dir.log" 2>&1 || { echo "FAILED following $dir"; tail -5 "$dir.log"; return 0; }
  python - "$dir" "$RECORDS/$task-$name-seed$seed.json" <<'EOF'
import json, sys
run, out = sys.argv[1], sys.argv[2]
record = json.loads(open(run + ".following.jsonl").read().splitlines()[-1])
record["train"] = {k: v for k, v in json.load(open(run + "/metrics.json")).items() if k != "test"}
record["train"]["command"] = json.load(open(run + "/best/cott.json"))["training"]["command"]
open(out, "w").write(json.dumps(record))
EOF
  echo "done $dir"
}
export -f one
export CLINC CONLL RUNS RECORDS WARM CLINC_BUDGET CONLL_BUDGET FOLLOWING_FLAGS

item() { local line="$1 ${2%%|*} $3 ${2#*|}"; echo "${line% }"; }  # no trailing blank: xargs would join lines

queue() {
  for seed in $SEEDS; do
    for v in "${VARIANTS_CLINC[@]:0:3}"; do item clinc150 "$v" "$seed"; done
    for v in "${VARIANTS_CONLL[@]}"; do item conll04 "$v" "$seed"; done
  done
  for seed in $SEEDS; do
    for v in "${VARIANTS_CLINC[@]:3}"; do item clinc150 "$v" "$seed"; done
  done
}
queue | run_queue
