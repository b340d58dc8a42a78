#!/usr/bin/env bash
# The GPU checks, as ONE short prepared script for a session that has a CUDA GPU (none had one so far).
#   bash benchmarks/gpu_check.sh            # ~5 minutes on one modern GPU
# 1) the `gpu`-marked tests: training on CUDA, determinism on CUDA, checkpoints CUDA->CPU and CPU->CUDA,
#    the fused optimizer on CUDA, K runs per GPU;  2) the GPU speed benchmark: LeNet-5 and the MLP,
#    batch 64, ablab against the course-style loop on the same GPU (target >= 5x);  3) startup on this
#    machine. Everything prints to stdout; nothing is written outside a temporary folder and $OUT (if set).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" \
  | tee -a "$OUT/gpu.txt"
echo "== gpu tests"
$PY -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_train_device.py 2>&1 | tee "$OUT/gpu_tests.txt" | tail -15
echo "== speed: ablab vs the course-style loop, both on the GPU"
timeout 400 $PY benchmarks/train_speed.py --device cuda --epochs 2 --eval-repeats 3 2>&1 | tee "$OUT/train_speed_cuda.txt"
echo "== startup"
timeout 120 $PY benchmarks/startup.py --repeats 3 2>&1 | tee "$OUT/startup.txt"
echo "results in $OUT"
