#!/usr/bin/env bash
# The GPU benchmarks in one prepared run, for the device machine (about 15 minutes of device time per issue, start-up
# included; see ../shared/DESIGN.md), planned to take at most 10.5 minutes on one H200 and to write at most 10 files
# (JSON + PNG for each of five steps). Each step has its own time limit, so one slow step cannot eat the others' time,
# and each script rewrites its JSON after every measurement, so a step stopped at its limit keeps what it measured (the
# PNG is drawn at the end). The sizes and limits of steps 1-4 come from the first H200 run
# (benchmarks/results/gpu-nvidia-h200/), in which all four steps overran limits planned without a GPU:
#   1. the walk-forward backtest, with models per program N = 1..1024 in float32 and bfloat16 (backtest.json/png);
#   2. the ensemble: N tutorial models in one program against N sequential fits (ensemble.json/png);
#   3. the tutorial pipeline: jaxlstm against PyTorch nn.LSTM (cuDNN), and Keras on its JAX backend when it is
#      importable (seed_vs_keras.json/png), on 230 rows of the bundled GOOG prices (2012-02-01..2012-12-31: the
#      tutorial's length; the Yahoo files of ../shared/data are not on the device);
#   4. layer throughput for H = 50 and 1024, B = 32 and 1024, T = 60 against PyTorch (cuDNN), Flax and
#      jax.experimental.rnn (cuDNN), each in fp32, tf32 and bf16 (throughput-float32-tf32-bfloat16.json/png);
#   5. layer throughput in fp16 against the strongest cuDNN PyTorch picks: nn.LSTM with float16 weights and inputs,
#      in the shapes where PyTorch's rule (get_algo in aten/src/ATen/native/cudnn/RNN.cpp) asks for cuDNN's
#      persistent kernel on an H200 (one layer, one direction, H and the input size multiples of 128 up to 1024,
#      batch a multiple of 8 up to 128): H = 256, 512 and 1024, B = 32 and 128, T = 60, jaxlstm's fused path in
#      float16 (float32 weights and cell state) against it (throughput-float16.json/png). Every PyTorch row of
#      steps 4 and 5 records the algorithm that rule picks for it, forward and backward, and the dtype cuDNN saw.
#
#   bash benchmarks/gpu.sh OUTDIR            # on the device: results in OUTDIR/<gpu>/ (default: benchmarks/results)
#   bash benchmarks/gpu.sh --smoke OUTDIR    # the same code at tiny sizes, on any machine (CI runs it)
set -uo pipefail
smoke=""
out=""
for argument in "$@"; do
  case $argument in
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "gpu.sh: unknown option $argument; use --smoke and an output folder" >&2; exit 2 ;;
    *) out=$argument ;;
  esac
done
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
export JAXLSTM_BENCH_RESULTS="${out:-${JAXLSTM_BENCH_RESULTS:-$PWD/benchmarks/results}}"
python=${PYTHON:-python}
peers=jaxlstm,jaxlstm-warm,torch
if KERAS_BACKEND=jax "$python" -c "import keras" 2>/dev/null; then peers=$peers,keras-jax-warm; fi
if [ -n "$smoke" ]; then
  backtest=(--folds 2 --seeds 2 --epochs 1 --sweep 2 --sweep-epochs 1 --sweep-precision float32,bfloat16)
  ensemble=(--sizes 2 --epochs 1 --sequential 1)
  fit=(--epochs 1 --repeats 1 --implementations jaxlstm)
  throughput=(--hidden 8 --time 6 --batch 4 --models layer --repeats 1 --precision float32,bfloat16)
  half=(--hidden 8 --time 6 --batch 4 --models layer --repeats 1 --precision float16)
  limit=300
else
  backtest=(--folds 20 --seeds 5 --epochs 100 --sweep 1,16,64,256,1024 --sweep-epochs 3 --sweep-precision float32,bfloat16)
  ensemble=(--sizes 1,8,64,512 --epochs 5)
  fit=(--repeats 1 --implementations "$peers")
  throughput=(--hidden 50,1024 --time 60 --batch 32,1024 --models layer --repeats 3
    --precision float32,tf32,bfloat16)
  half=(--hidden 256,512,1024 --time 60 --batch 32,128 --models layer --repeats 3 --precision float16)
  limit=""
fi
"$python" -c "import jax; print('# devices:', jax.devices())"
status=0
step() {  # step SECONDS COMMAND...: run it under a time limit (the smoke run's own, if set), report, go on
  local seconds=${limit:-$1}; shift
  echo "=== $* (limit ${seconds} s)"
  timeout "$seconds" "$@" || { echo "=== exit $? from: $*"; status=1; }
}
step 180 "$python" benchmarks/backtest.py --skip b,c "${backtest[@]}"
step 75 "$python" benchmarks/ensemble.py "${ensemble[@]}"
tutorial=(--csv data/GOOG.csv --start 2012-02-01 --end 2012-12-31)
step 130 "$python" benchmarks/seed_vs_keras.py --archs stacked "${tutorial[@]}" "${fit[@]}"
step 150 "$python" benchmarks/throughput.py "${throughput[@]}"
step 90 "$python" benchmarks/throughput.py "${half[@]}" --implementations jaxlstm-fused,torch-nn.LSTM
exit $status
