"""Sharded execution on 8 fake CPU devices equals one device, for two (data, fsdp, tensor) mesh
shapes; parameters stream from an HF folder straight onto their shardings. Runs
qwen3vl_sharding_check.py in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8, since the device count is fixed at jax start."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run_check(*args: str) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "qwen3vl_sharding_check.py"), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"sharding check failed:\n{proc.stderr[-4000:]}"
    assert "Involuntary full rematerialization" not in proc.stderr, (
        "XLA had to replicate and re-split an activation; a sharding constraint is missing:\n"
        + proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_meshes(result: dict, key: str) -> None:
    assert set(result["meshes"]) == {"1x2x4", "2x2x2"}
    for mesh, r in result["meshes"].items():
        assert r[key] <= 1e-5, f"mesh {mesh}: {key} = {r[key]:.2e} vs the single device"
        assert r["params_on_their_shardings"], f"mesh {mesh}: loader ignored the shardings"
        for name in ("language_model/layers/mlp/gate_proj/kernel", "lm_head/kernel",
                     "language_model/embed_tokens/table", "visual/blocks/mlp/linear_fc1/kernel"):
            assert name in r["split_params"], f"mesh {mesh}: {name} is not split across devices"


def test_sharded_forward_equals_single_device():
    result = _run_check()
    _check_meshes(result, "forward_err")
    assert "tensor" in result["meshes"]["1x2x4"]["logits_spec"], "logits not vocab-sharded"


@pytest.mark.slow
def test_sharded_prefill_decode_and_init_equal_single_device():
    result = _run_check("--decode", "--init")
    _check_meshes(result, "cached_err")
    for mesh, r in result["meshes"].items():
        assert r["init_on_shardings"], f"mesh {mesh}: init_model ignored the shardings"
        assert r["init_vs_one_device"] == 0.0, f"mesh {mesh}: init_model values differ"
