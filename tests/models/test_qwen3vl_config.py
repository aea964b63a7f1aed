"""Qwen3VLConfig: real sizes, both HF rope spellings, and errors that name the field."""
from __future__ import annotations

import copy
import json

import pytest

from configs import model_sizes
from models.qwen3_vl.config import ConfigError, Qwen3VLConfig
from models.sharding import ShardingError


@pytest.mark.parametrize("size", sorted(model_sizes.SIZES))
def test_every_size_builds_and_round_trips_through_the_hf_dict(size):
    config = Qwen3VLConfig.from_dict(model_sizes.get_config(size))
    assert Qwen3VLConfig.from_dict(config.to_hf_dict()) == config


def test_8b_values():
    c = Qwen3VLConfig.from_dict(model_sizes.get_config("8b"))
    assert (c.text.hidden_size, c.text.num_hidden_layers, c.text.num_attention_heads,
            c.text.num_key_value_heads, c.text.head_dim, c.text.intermediate_size) == \
        (4096, 36, 32, 8, 128, 12288)
    assert c.text.rope_theta == 5e6 and c.text.mrope_section == (24, 20, 20)
    assert (c.vision.depth, c.vision.hidden_size, c.vision.head_dim) == (27, 1152, 72)
    assert c.vision.deepstack_visual_indexes == (8, 16, 24) and not c.tie_word_embeddings


def test_legacy_rope_scaling_spelling_equals_rope_parameters(tmp_path):
    """Published checkpoints say rope_scaling + rope_theta; transformers 5 writes rope_parameters."""
    legacy = model_sizes.get_config("8b").to_dict()
    rope = legacy["text_config"].pop("rope_parameters")
    legacy["text_config"]["rope_theta"] = rope.pop("rope_theta")
    legacy["text_config"]["rope_scaling"] = rope
    legacy["vision_config"]["model_type"] = "qwen3_vl"  # old checkpoints' vision model_type
    legacy["model_type"] = "qwen3_vl"
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    assert Qwen3VLConfig.from_json_file(str(tmp_path)) == \
        Qwen3VLConfig.from_dict(model_sizes.get_config("8b"))


def test_transformers_reads_our_hf_dict():
    transformers = pytest.importorskip("transformers")
    ours = Qwen3VLConfig.from_dict(model_sizes.get_config("tiny"))
    theirs = transformers.Qwen3VLConfig(**ours.to_hf_dict())
    assert Qwen3VLConfig.from_dict(theirs.to_dict()) == ours


def _broken(edit) -> str:
    d = copy.deepcopy(model_sizes.get_config("tiny").to_dict())
    edit(d)
    with pytest.raises((ConfigError, ShardingError)) as err:
        Qwen3VLConfig.from_dict(d)
    return str(err.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["text_config"].pop("num_hidden_layers"), "text_config.num_hidden_layers is missing"),
    (lambda d: d["text_config"].update(num_key_value_heads=3), "multiple of num_key_value_heads=3"),
    (lambda d: d["text_config"]["rope_parameters"].update(mrope_section=[6, 5, 4]),
     "mrope_section=[6, 5, 4]"),
    (lambda d: d["text_config"].update(hidden_size="64"), "text_config.hidden_size='64'"),
    (lambda d: d["vision_config"].update(out_hidden_size=32), "out_hidden_size=32 must equal"),
    (lambda d: d["vision_config"].update(deepstack_visual_indexes=[0, 5]), "deepstack_visual_indexes"),
    (lambda d: d["vision_config"].update(num_position_embeddings=15), "perfect square"),
    (lambda d: d["vision_config"].update(hidden_act="gelu"), "hidden_act='gelu'"),
    (lambda d: d.update(image_token_id=500), "image_token_id=500 is outside the vocabulary"),
    (lambda d: [d.pop("tie_word_embeddings"), d["text_config"].pop("tie_word_embeddings")],
     "tie_word_embeddings=None must be true or false"),
    (lambda d: d.pop("vision_config"), "vision_config is missing"),
])
def test_config_errors_name_the_field(edit, expected):
    assert expected in _broken(edit)


@pytest.mark.parametrize("runtime, expected", [
    (dict(remat="sometimes"), "remat='sometimes'"),
    (dict(dtype="float8"), "dtype='float8'"),
    (dict(sharding_rules=(("embed",),)), "sharding rule"),
])
def test_runtime_option_errors(runtime, expected):
    with pytest.raises((ConfigError, ShardingError)) as err:
        Qwen3VLConfig.from_dict(model_sizes.get_config("tiny"), **runtime)
    assert expected in str(err.value)


def test_unknown_size_is_named():
    with pytest.raises(ValueError, match="Unknown Qwen3-VL size 'huge'"):
        model_sizes.get_config("huge")
