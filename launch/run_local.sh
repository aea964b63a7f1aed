#!/usr/bin/env bash
# Set everything up (idempotent) and run the main job on the built-in tiny default:
# the toy Qwen3-VL trained by Visual-SDPO on the built-in synthetic chart tasks, rendered by the
# real chart environment, for a few steps, leaving checkpoints, metrics (TensorBoard + JSONL),
# plots, evaluations and the exported policy in runs/tiny.
# Extra arguments go to the program, e.g. `bash launch/run_local.sh --config.train.num_steps=2`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/launch/setup.sh" test
cd "$ROOT"
# The test extra installs libtpu (for compile-only TPU checks); off a TPU VM keep JAX on the CPU
# rather than let libtpu probe for chips that are not there.
if [ ! -e /dev/accel0 ] && [ ! -d /dev/vfio ]; then export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"; fi
exec .venv/bin/python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny "$@"
