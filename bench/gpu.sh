#!/usr/bin/env bash
# The GPU benchmark on a one-GPU (H200-class) machine with Python 3.12 and PyTorch already installed, no
# internet: the project's other dependencies come from a wheelhouse carried with it, weights from
# BENCH_MODEL_ROOT. Finishes in under 8 minutes (each phase is bounded; the whole run is cut at 7.5).
#
#   WHEELS=/path/to/wheelhouse BENCH_MODEL_ROOT=/path/to/models bash bench/gpu.sh
#
# Make the wheelhouse on a machine with the same Python and platform:
#   pip download -d wheelhouse -r requirements.lock   (then drop torch/torchvision: the GPU host has them)
# and the weights with `recall models pull openclip_vitb32@2025-08 insightface_buffalo_l@2023-01
# florence2_base@2024-06 gpt-oss-20b@2025-08`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
: "${WHEELS:?set WHEELS to the carried wheelhouse}"
: "${BENCH_MODEL_ROOT:?set BENCH_MODEL_ROOT to the directory holding the production model versions}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
PY="${PYTHON:-python3}"
if [ ! -x .venv-gpu/bin/python ]; then
  # System site packages: the host's CUDA build of PyTorch, which is not carried.
  "$PY" -m venv --system-site-packages .venv-gpu
fi
.venv-gpu/bin/python -m pip install -q --no-index --find-links "$WHEELS" -e ".[gpu]"
export MODEL_PROFILE=gpu PYTHONUNBUFFERED=1
for v in openclip_vitb32@2025-08 insightface_buffalo_l@2023-01 florence2_base@2024-06 gpt-oss-20b@2025-08; do
  MODEL_ROOT="$BENCH_MODEL_ROOT" .venv-gpu/bin/recall models verify "$v"
done
timeout 450 .venv-gpu/bin/python -m bench.gpu "$@"
