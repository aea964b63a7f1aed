"""Checkpoint conversion: HF save_pretrained -> hf-to-flax -> flax-to-hf -> transformers loads it
with identical weights and logits (untied, tied, bf16, sharded files); bad checkpoints fail
with errors that name the tensors."""
from __future__ import annotations

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import qwen3vl_tiny as tiny
from models.qwen3_vl.convert import (CheckpointError, DictSource, SafetensorsSource,
                                     load_flax_checkpoint, load_hf_checkpoint, load_params, main)
from models.qwen3_vl.tokenizer import bundled_tokenizer_dir

torch = pytest.importorskip("torch")
import transformers  # noqa: E402  (after the torch skip)


def _save_hf(model, folder) -> str:
    model.save_pretrained(folder)
    for name in os.listdir(bundled_tokenizer_dir()):
        shutil.copy(os.path.join(bundled_tokenizer_dir(), name), folder)
    return str(folder)


def _hf_logits(model, batch) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()


def _tensors(folder) -> dict[str, np.ndarray]:
    source = SafetensorsSource(folder)
    return {name: source.read(name) for name in source.shapes()}


def _round_trip(hf_model, tmp_path, *extra_args: str) -> tuple[str, str, str]:
    """(HF folder, converted Flax folder, HF folder exported back)."""
    src = _save_hf(hf_model, tmp_path / "hf")
    flax_dir, out = str(tmp_path / "flax"), str(tmp_path / "hf_again")
    assert main(["hf-to-flax", src, flax_dir]) == 0
    assert main(["flax-to-hf", flax_dir, out, *extra_args]) == 0
    return src, flax_dir, out


def test_round_trip_untied_sharded_files_loads_in_transformers(tmp_path):
    hf, _ = tiny.hf_tiny_model()
    src, flax_dir, out = _round_trip(hf, tmp_path, "--max-shard-gb", "0.0002")
    for name in ("config.json", "tokenizer.json", "vocab.json", "params"):
        assert os.path.exists(os.path.join(flax_dir, name)), f"flax folder lacks {name}"
    assert os.path.exists(os.path.join(out, "model.safetensors.index.json"))
    assert len([f for f in os.listdir(out) if f.endswith(".safetensors")]) > 1
    assert os.path.exists(os.path.join(out, "tokenizer.json"))
    original, again = _tensors(src), _tensors(out)
    assert original.keys() == again.keys()
    for name in original:
        np.testing.assert_array_equal(again[name], original[name], err_msg=name)
    reloaded = transformers.Qwen3VLForConditionalGeneration.from_pretrained(
        out, attn_implementation="eager").eval()
    batch = tiny.image_batch(tiny.tiny_config())
    np.testing.assert_array_equal(_hf_logits(reloaded, batch), _hf_logits(hf, batch))
    _, from_shards = load_hf_checkpoint(out)  # the sharded + index path of the loader
    _, from_flax = load_flax_checkpoint(flax_dir)
    for ours, theirs in zip(jax_leaves(from_shards), jax_leaves(from_flax)):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_round_trip_tied_head(tmp_path):
    hf = tiny.build_hf_model(tiny.tiny_dict(tie_word_embeddings=True), seed=3)
    src, flax_dir, out = _round_trip(hf, tmp_path)
    assert "lm_head.weight" not in _tensors(src), "transformers omits a tied head"
    config, ours = load_flax_checkpoint(flax_dir)
    assert config.tie_word_embeddings and ours.lm_head is None
    np.testing.assert_array_equal(np.asarray(ours.lm_head_matrix()),
                                  np.asarray(ours.language_model.embed_tokens.table[...]).T)
    assert "lm_head.weight" not in _tensors(out)
    reloaded = transformers.Qwen3VLForConditionalGeneration.from_pretrained(
        out, attn_implementation="eager").eval()
    batch = tiny.image_batch(config)
    np.testing.assert_array_equal(_hf_logits(reloaded, batch), _hf_logits(hf, batch))


def test_bf16_checkpoint_round_trips_bit_exactly_and_loads_as_fp32(tmp_path):
    hf = tiny.build_hf_model(tiny.tiny_dict(), seed=4).to(torch.bfloat16)
    src, flax_dir, out = _round_trip(hf, tmp_path)
    with open(os.path.join(flax_dir, "config.json")) as f:
        assert json.load(f)["dtype"] == "bfloat16"
    _, as_fp32 = load_flax_checkpoint(flax_dir, param_dtype="float32")
    assert {v.dtype for v in jax_leaves(as_fp32)} == {jnp.dtype(jnp.float32)}
    original, again = _tensors(src), _tensors(out)
    for name in original:
        assert again[name].dtype == original[name].dtype, name
        np.testing.assert_array_equal(again[name].view(np.uint16),
                                      original[name].view(np.uint16), err_msg=name)


def jax_leaves(model):
    return [v.get_value() for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param))]


@pytest.fixture(scope="module")
def state_dict():
    return tiny.hf_tiny_model()[1]


def _load_error(state_dict: dict, **runtime) -> str:
    with pytest.raises(CheckpointError) as err:
        load_params(tiny.tiny_config(**runtime), DictSource(state_dict))
    return str(err.value)


def test_missing_tensor_is_named(state_dict):
    broken = {k: v for k, v in state_dict.items() if k != "model.visual.blocks.1.attn.qkv.bias"}
    message = _load_error(broken)
    assert "missing tensors: model.visual.blocks.1.attn.qkv.bias" in message


def test_extra_tensor_is_named(state_dict):
    message = _load_error({**state_dict, "model.visual.extra.weight": np.zeros(3)})
    assert "unexpected tensors: model.visual.extra.weight" in message


def test_mis_shaped_tensor_is_named(state_dict):
    name = "model.language_model.layers.2.self_attn.q_proj.weight"
    message = _load_error({**state_dict, name: np.zeros((64, 64), np.float32)})
    assert f"{name} (64, 64) (expected (128, 64))" in message


def test_missing_untied_head_points_at_the_config(state_dict, tmp_path):
    broken = {k: v for k, v in state_dict.items() if k != "lm_head.weight"}
    assert "tie_word_embeddings=false" in _load_error(broken)


def test_cli_refuses_a_non_empty_destination(tmp_path):
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        main(["hf-to-flax", str(tmp_path), str(tmp_path / "dst")])


def test_missing_folders_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hf-to-flax"):
        load_flax_checkpoint(str(tmp_path))
