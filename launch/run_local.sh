#!/usr/bin/env bash
# Set everything up (idempotent) and run the main job on the built-in tiny default:
# a tiny random Qwen3-VL trained by Visual-SDPO on the real chart environment for a few steps,
# leaving a checkpoint, metrics (TensorBoard + JSONL) and plots in runs/tiny.
# Extra arguments go to the program, e.g. `bash launch/run_local.sh --config.train.num_steps=2`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh" test
cd "$ROOT"
exec .venv/bin/python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny "$@"
