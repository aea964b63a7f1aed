"""The train state and step on a mesh: optimizer moments and the EMA teacher live on their
parameters' shardings (not one whole copy per device), the step runs under the mesh (its
activation constraints bind) with its batch rows and image slots sharded, and the run config
reaches the model's attention query chunking."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from configs import chart_8b, default, pod_8b, slide_8b, web_8b  # noqa: F401 (pod_8b: shared)
from models.qwen3_vl.convert import abstract_model
from sdpo_jax.model_loading import architecture
from sdpo_jax.run_config import RunConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def sharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    script = os.path.join(os.path.dirname(__file__), "sharded_train_state.py")
    out = subprocess.run([sys.executable, script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, f"sharded run failed:\n{out.stderr[-4000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_optimizer_moments_and_teacher_live_on_their_parameters_shardings(sharded):
    assert sharded["devices"] == 8
    assert not sharded["misplaced"], f"placed unlike their parameters: {sharded['misplaced'][:5]}"
    assert not sharded["after_step_misplaced"], "the step moved optimizer state off its sharding"
    # Adam's two moments are 2x the parameters per device, not 2x the whole model.
    for key in ("opt_bytes", "opt_bytes_after"):
        assert sharded[key] <= 2.1 * sharded["param_bytes"], (
            f"{key}: device 0 holds {sharded[key]} bytes of optimizer state for "
            f"{sharded['param_bytes']} of parameters: the moments are replicated")


def test_train_step_runs_under_the_mesh_with_sharded_rows_and_images(sharded):
    assert sharded["loss"] == sharded["loss"], "the sharded step gave a NaN loss"
    assert sharded["sharding_constraints"] > 0, (
        "the model's activation constraints did not bind: the step was traced without the mesh")
    for key in ("input_rows_spec", "image_slots_spec", "batch_rows_spec"):
        assert "fsdp" in sharded[key], f"{key} = {sharded[key]}: rows are not split over devices"


def test_the_run_config_reaches_attention_query_chunking():
    config = default.get_config()
    config.model.attention_query_chunk = 64
    model = abstract_model(architecture(RunConfig.from_config(config)))
    assert model.language_model.layers.self_attn.query_chunk == 64
    assert model.visual.blocks.attn.query_chunk == 64
    for pod in (chart_8b, web_8b, slide_8b):
        chunk = architecture(RunConfig.from_config(pod.get_config())).attention_query_chunk
        assert chunk > 0, f"{pod.__name__} attends over whole 6-8k token prompts at once"
