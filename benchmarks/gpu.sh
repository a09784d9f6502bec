#!/usr/bin/env bash
# The GPU benchmarks in one prepared run, for the device machine (about 15 minutes of device time per issue, start-up
# included; see ../shared/DESIGN.md): the walk-forward backtest in one program and the models-per-program sweep up to
# 1,000 models (issue 11's GPU target: 1,000 models in at most 2x the wall time of one), the tutorial fit against
# PyTorch, and layer throughput. Each step has its own time limit, so one slow step cannot eat the others' time.
#
#   bash benchmarks/gpu.sh                 # on the device: results in benchmarks/results/<gpu>/ and copied to $OUT
#   QUICK=1 JAXLSTM_BENCH_RESULTS=/tmp/trial bash benchmarks/gpu.sh   # a tiny trial of every step, on any machine
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
python=${PYTHON:-python}
results=${JAXLSTM_BENCH_RESULTS:-benchmarks/results}
if [ -n "${QUICK:-}" ]; then
  backtest=(--folds 2 --seeds 2 --epochs 2 --sweep 1,4 --sweep-epochs 1)
  fit=(--epochs 2 --repeats 1)
  throughput=(--hidden 50 --time 60 --batch 32 --repeats 1)
else
  backtest=(--folds 20 --seeds 5 --epochs 100 --sweep 1,16,64,256,1000 --sweep-epochs 10)
  fit=(--repeats 2)
  throughput=(--hidden 50,256,1024 --time 60,256 --batch 32,256 --repeats 3)
fi
"$python" -c "import jax; print('# devices:', jax.devices())"
marker=$(mktemp)
status=0
step() {  # step SECONDS COMMAND...: run it under a time limit, report, go on
  local limit=$1; shift
  echo "=== $* (limit ${limit} s)"
  timeout "$limit" "$@" || { echo "=== exit $? from: $*"; status=1; }
}
step 300 "$python" benchmarks/backtest.py --skip b,c "${backtest[@]}"
step 200 "$python" benchmarks/seed_vs_keras.py --archs stacked --implementations jaxlstm,jaxlstm-warm,torch "${fit[@]}"
step 200 "$python" benchmarks/throughput.py "${throughput[@]}"
if [ -n "${OUT:-}" ]; then  # what this run wrote, with its folders
  (cd "$results" && find . -type f -newer "$marker" -exec cp --parents {} "$OUT"/ \;)
fi
exit $status
