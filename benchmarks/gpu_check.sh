#!/usr/bin/env bash
# The GPU check: run once on a GPU machine (no internet; torch is there, other wheels are
# carried in .whl/). Under 8 minutes: the GPU-marked tests, one short lesson on CUDA in bf16
# end to end through the real worker, the data-path benchmark, then the training-step
# benchmark (DataLoader, eager, graphed, grouped x3); a short table at the end.
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh   # a dry run of the script on a CPU
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
STEPS="${GPU_CHECK_STEPS:-300}"  # timed steps per data pipeline
OUTDIR="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUTDIR"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 CNN_TUI_LAB=off CNN_TUI_HOME="$OUTDIR/home"
declare -A RESULT

echo "== machine"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

echo "== GPU-marked tests"
if "$PY" -m pytest -q -m gpu tests/unit/test_cuda.py -p no:cacheprovider 2>&1 | tee "$OUTDIR/tests.log" | tail -3; then
  RESULT[tests]="$(tail -1 "$OUTDIR/tests.log")"
else
  RESULT[tests]="FAILED: $(tail -1 "$OUTDIR/tests.log")"
fi

# On a GPU the lesson's 3 seeds per variant train together (grouped); a CPU dry run keeps 1.
REPEATS=3; [ "$DEVICE" = cpu ] && REPEATS=1
echo "== one short lesson end to end (batch_norm, 2 variants x $REPEATS seeds x 3 epochs, synthetic)"
t0=$(date +%s%N)
"$PY" -m trainer run --preset batch_norm --repeats "$REPEATS" --epochs 3 --dataset synthetic \
  --device "$DEVICE" --csv "$OUTDIR/lesson.csv" 2>&1 | tee "$OUTDIR/lesson.log" | tail -25
code=${PIPESTATUS[0]}
t1=$(date +%s%N)
RESULT[lesson]="exit $code, $(( (t1 - t0) / 1000000 )) ms wall (worker start and data included)"
RESULT[s_per_epoch]="$("$PY" - "$OUTDIR/lesson.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(", ".join(f"{r['variant']}: {float(r['seconds_per_epoch']):.2f} s/epoch on {r['device']}"
                for r in rows if r.get('seconds_per_epoch')))
PY
)"

echo "== data path: this loop vs torchvision DataLoader (batch 64)"
"$PY" benchmarks/bench_loader.py --device "$DEVICE" --batch-size 64 --steps "$STEPS" --rounds 3 \
  2>&1 | tee "$OUTDIR/loader.log" | tail -6
RESULT[loader]="$(grep -iE 'ratio|×' "$OUTDIR/loader.log" | tail -1)"

echo "== training step: DataLoader, eager, graphed, grouped x3 (batch 64)"
ROUNDS=3; [ "$DEVICE" = cpu ] && ROUNDS=1  # a dry run on a CPU stays within minutes
"$PY" benchmarks/bench_steps.py --device "$DEVICE" --batch-size 64 --steps "$STEPS" \
  --rounds "$ROUNDS" --group 3 2>&1 | tee "$OUTDIR/steps.log" | tail -7
RESULT[steps]="$(grep -E 'grouped x?×3 vs' "$OUTDIR/steps.log" | tail -1 | sed 's/^ *//')"
RESULT[graphed]="$(grep -E 'this loop, graphed' "$OUTDIR/steps.log" | tail -1 | sed 's/^ *//')"

echo
echo "== summary ($DEVICE)"
printf '| %-12s | %s |\n' "check" "result"
for k in tests lesson s_per_epoch loader steps graphed; do
  printf '| %-12s | %s |\n' "$k" "${RESULT[$k]:-}"
done
