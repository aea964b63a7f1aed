"""`python -m sdpo_jax.aot`: accelerator names map to libtpu topologies, and a small config's
train step, rollout and decode step compile for a small TPU slice (libtpu's compile-only
devices, on this CPU host) through the CLI's own code path, with a complete report."""
from __future__ import annotations

import numpy as np
import pytest

from configs import default
from models.qwen3_vl.vision_inputs import prepare_vision_inputs
from models.sharding import make_mesh
from sdpo_jax.aot import (
    PROGRAMS,
    TopologyError,
    compile_only_devices,
    extrapolated_costs,
    libtpu_topology,
    lower_train_step,
    run,
)
from sdpo_jax.hlo_costs import program_costs
from sdpo_jax.model_loading import architecture, size_config
from sdpo_jax.run_config import RunConfig
from sdpo_jax.sequences import abstract_sequences

pytest.importorskip("libtpu", reason="the tpu or test extra installs libtpu")


@pytest.mark.parametrize("name, expected", [
    ("v5p-8", "v5p:2x2x1"), ("v5p-64", "v5p:2x4x4"), ("v5p-128", "v5p:4x4x4"),
    ("v4-32", "v4:2x2x4"), ("v5e-16", "v5e:4x4"), ("v6e-32", "v6e:4x8"), ("v6e-8", "v6e:2x4"),
    ("v5p:2x2x1", "v5p:2x2x1")])
def test_accelerator_types_name_standard_slice_shapes(name, expected):
    assert libtpu_topology(name)[1] == expected


@pytest.mark.parametrize("name", ["v5p-48", "v3-8", "tpu", "v5e-x"])
def test_unknown_topologies_are_refused_with_the_accepted_forms(name):
    with pytest.raises(TopologyError, match="v5p-64"):
        libtpu_topology(name)


def _small_config(**model):
    """The toy model's run config on a 4-chip mesh, its attention in query chunks."""
    config = default.get_config()
    config.mesh.update(dict(data=1, fsdp=-1, tensor=1))
    config.rollout.update(dict(max_new_tokens=16, max_prompt_tokens=64, prompts_per_step=4))
    config.context.max_prompt_tokens = 96
    config.eval.max_prompt_tokens = 64
    config.model.update(dict(dtype="bfloat16", attention_query_chunk=32, **model))
    return config


@pytest.mark.slow  # three TPU compilations: ~1 min on a quiet 2-core host, minutes under load
def test_small_config_compiles_for_a_small_tpu_slice():
    report = run(_small_config(), "v5p:2x2x1", log=lambda line: None)
    assert report["chips"] == report["devices"] == 4 and report["mesh"]["fsdp"] == 4
    assert set(report["programs"]) == set(PROGRAMS)
    for name, program in report["programs"].items():
        assert program["fits"] and 0 < program["headroom"] < 1, f"{name}: {program}"
        assert program["total_bytes"] > program["argument_bytes"] > 0, f"{name}: no bytes"
        assert program["flops"] > 0 and program["roofline_s"] > 0, f"{name}: no costs"
    assert 0 < report["mfu"] < 1 and report["train_step_s"] > 0 and report["rollout_s"] > 0
    assert report["model_flops"] > 0 and report["fits"] and report["costs"] == "loops"
    step = report["programs"]["train_step"]
    assert step["cost_method"] == "loops" and not step["uncounted_loops"]
    assert step["flops"] > step["xla_flops"], "the layer and chunk loops were counted once"
    parts = step["loops"]  # the program's own loops and what runs outside them add up
    assert sum(p["flops"] for p in parts) == pytest.approx(step["flops"], rel=1e-6)
    assert report["programs"]["rollout"]["uncounted_loops"], "decoding stops on data"


@pytest.mark.slow  # five TPU compilations: several minutes
def test_costs_with_loops_counted_and_extrapolated_from_depth_match_the_unrolled_step():
    """The train step's FLOPs and bytes three ways, on a toy made deeper (6 decoder layers, 4
    vision blocks, scanned, remat, loss in chunks): the scanned program with its loops counted
    (`--costs=loops`), and the unrolled step at 2-3 layers per tower extrapolated (`depth`), each
    against the step compiled unrolled at full depth. Scanning does not change the FLOPs; it
    moves more bytes (slicing the stacked weights, stacking the saved activations)."""
    config = _small_config(scan_layers=True, remat="full", overrides={
        "text_config": {"num_hidden_layers": 6}, "vision_config": {"depth": 4}})
    config.loss.update({"chunk_size": 8, "vocab_chunk_size": 512})
    rc = RunConfig.from_config(config)
    mesh = make_mesh(data=1, fsdp=-1, tensor=1, devices=compile_only_devices("v5p:2x2x1"))
    model = architecture(rc)
    unrolled = program_costs(lower_train_step(rc, model.replace(scan_layers=False), mesh)
                             .compile()).total
    scanned = program_costs(lower_train_step(rc, model, mesh).compile()).total
    depth = extrapolated_costs(rc, model, mesh)
    assert depth.flops == pytest.approx(unrolled.flops, rel=0.01)
    assert depth.bytes_accessed == pytest.approx(unrolled.bytes_accessed, rel=0.05)
    assert scanned.flops == pytest.approx(unrolled.flops, rel=0.01)
    assert scanned.bytes_accessed == pytest.approx(unrolled.bytes_accessed, rel=0.15)


def test_abstract_sequences_describe_what_pack_sequences_builds():
    """The shapes the AOT tool compiles are the ones the trainer feeds (here through the
    vision packer, in the compute dtype)."""
    config = size_config("tiny", real_tokenizer=False, dtype="bfloat16")
    abstract = abstract_sequences(config, 4, prompt_length=16, response_length=8, image_slots=3,
                                  slot_patches=32)
    grid = np.array([[1, 4, 4]])
    vision = prepare_vision_inputs(config.vision, pixel_values=np.ones((16, 1536), np.float32),
                                   image_grid_thw=grid, slots=3, slot_patches=32,
                                   token_slots=[0, 0], tokens=4 * 16, dtype=config.jnp_dtype)
    for name in ("pixel_values", "pos_indices", "pos_weights", "rowcol", "segment_ids",
                 "token_rows", "num_image_tokens"):
        ours, theirs = getattr(abstract.vision, name), getattr(vision, name)
        assert (ours.shape, ours.dtype) == (theirs.shape, theirs.dtype), name
    assert vision.pixel_values.dtype == config.jnp_dtype, "pixels are not in the compute dtype"
