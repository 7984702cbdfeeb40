#!/usr/bin/env bash
# The GPU path in one short script (under 8 minutes on one CUDA GPU), for a machine that has one:
#   1. train on CUDA with bf16-mixed; meta.json names the device
#   2. kill -9 mid-run and rerun, deterministic mode, on the GPU: equal to an uninterrupted run
#   3. a CIFAR-10-shaped synthetic data set (no download) through configs/cnn_full.gin for two epochs:
#      the second epoch's seconds and images/s
#   4. a 4-run sweep on the one GPU through runbatch -j 4
# Usage: bench/gpu.sh [WORK_DIR]   (default: a fresh temporary folder, kept, printed at the end)
# Exit 0 when every check holds, 1 when one fails (it says which), 2 without a CUDA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY="${PYTHON:-$REPO/.venv/bin/python}"
WORK="${1:-$(mktemp -d /tmp/runkit-gpu.XXXXXX)}"
export PYTHONPATH="$REPO/lib${PYTHONPATH:+:$PYTHONPATH}" RESULTS_DIR="$WORK/results" DATA_DIR="$WORK/data"
export CUBLAS_WORKSPACE_CONFIG=:4096:8   # deterministic cuBLAS (torch.use_deterministic_algorithms)
mkdir -p "$RESULTS_DIR" "$DATA_DIR" "$WORK/bin"
for t in train runbatch; do   # the tools of this checkout, as the tests run them
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$PY" "$REPO/tools/$t" >"$WORK/bin/$t"
    chmod +x "$WORK/bin/$t"
done
export PATH="$WORK/bin:$PATH"

say() { echo "gpu.sh: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    { say "no CUDA GPU visible to torch: run this on a machine with one"; exit 2; }
"$PY" -c 'import torch; print("gpu.sh: device", torch.cuda.get_device_name(0), "torch", torch.__version__)' >&2

GPU="trainer.accelerator='gpu'#trainer.devices=1"
CNN="$REPO/configs/digits_cnn.gin"

# 1. bf16-mixed on CUDA
start=$SECONDS
train "$RESULTS_DIR/bf16" "$CNN" -b "$GPU#trainer.precision='bf16-mixed'#training_loop.n_epochs=3" >/dev/null
"$PY" - "$RESULTS_DIR/bf16" <<'EOF' || fail "1: meta.json does not name a CUDA device"
import json, sys
meta = json.load(open(f"{sys.argv[1]}/meta.json"))
print(f"gpu.sh: 1. bf16-mixed ok: device {meta['device']} ({meta.get('device_name')})", file=sys.stderr)
assert "cuda" in str(meta["device"]) and meta.get("device_name")
EOF
say "1. took $((SECONDS - start)) s"

# 2. kill -9 and rerun in deterministic mode, against an uninterrupted run
start=$SECONDS
DET="$GPU#trainer.deterministic=True#training_loop.n_epochs=6#cnn.n_filters=32#training_loop.checkpoint_every_n_steps=10"
train "$RESULTS_DIR/det_straight" "$CNN" -b "$DET" >/dev/null
train "$RESULTS_DIR/det_killed" "$CNN" -b "$DET" >/dev/null 2>"$WORK/killed.err" &
pid=$!
until [ "$(wc -l <"$RESULTS_DIR/det_killed/history.csv" 2>/dev/null || echo 0)" -ge 3 ]; do  # header + 2 epochs
    kill -0 "$pid" 2>/dev/null || fail "2: the run to kill ended first (see $WORK/killed.err)"
    sleep 0.05
done
sleep 0.3   # into epoch 3, past a mid-epoch checkpoint
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
train "$RESULTS_DIR/det_killed" "$CNN" -b "$DET" >/dev/null 2>>"$WORK/killed.err"
"$PY" - "$RESULTS_DIR/det_straight" "$RESULTS_DIR/det_killed" <<'EOF' || fail "2: the rerun differs"
import sys, torch
from runkit.rundir import runs
a, b = sys.argv[1:]
strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
assert strip(runs.read_history(a)) == strip(runs.read_history(b)), "history"
wa, wb = (torch.load(runs.checkpoint_path(r), weights_only=True)["state_dict"] for r in (a, b))
assert all(wa[k].equal(wb[k]) for k in wa), "weights"
print("gpu.sh: 2. kill -9 and rerun on the GPU: history and weights equal the uninterrupted run's", file=sys.stderr)
EOF
say "2. took $((SECONDS - start)) s"

# 3. CIFAR-10-shaped synthetic images through cnn_full.gin, two epochs
start=$SECONDS
"$PY" -c "import sys; sys.path.insert(0, '$REPO/tests'); from cifar_archive import write_cifar_archive; \
write_cifar_archive('$DATA_DIR', per_batch=10000)"
train "$RESULTS_DIR/cifar" "$REPO/configs/cnn_full.gin" \
    -b "$GPU#trainer.precision='bf16-mixed'#training_loop.n_epochs=2#cifar10.download=False" >/dev/null
"$PY" - "$RESULTS_DIR/cifar" <<'EOF' || fail "3: no second epoch"
import sys
from runkit.rundir import runs
rows = runs.read_history(sys.argv[1])
seconds = rows[1]["time"] - rows[0]["time"]
print(f"gpu.sh: 3. cnn_full.gin, 45000 synthetic 32x32 images, epoch 2: {seconds:.2f} s, "
      f"{45000 / seconds:.0f} images/s", file=sys.stderr)
EOF
say "3. took $((SECONDS - start)) s"

# 4. a 4-run sweep on the one GPU
start=$SECONDS
for lr in 0.01 0.03 0.1 0.3; do
    printf '{"name": "lr%s", "run_dir": "%s/sweep/lr%s", "argv": ["train", "%s/sweep/lr%s", "%s", "-b", "%s#optimizer.lr=%s#training_loop.n_epochs=3"]}\n' \
        "$lr" "$RESULTS_DIR" "$lr" "$RESULTS_DIR" "$lr" "$CNN" "$GPU" "$lr"
done >"$WORK/sweep.jsonl"
CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" runbatch -j 4 --progress never "$WORK/sweep.jsonl" >/dev/null
finished=$(find "$RESULTS_DIR/sweep" -name FINISHED | wc -l)
[ "$finished" = 4 ] || fail "4: $finished of 4 sweep runs finished"
say "4. a 4-run sweep through runbatch -j 4: 4 finished in $((SECONDS - start)) s"
say "all checks held; results in $WORK"
