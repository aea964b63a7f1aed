"""Qwen3-VL model sizes as config data, in Hugging Face `config.json` field names.

`get_config("8b")` returns the architecture of Qwen3-VL-8B-Instruct; `tiny` is a small random-weight
model for tests (every feature of the real ones: GQA, head_dim != hidden/heads, a T-only MRoPE
tail, DeepStack taps that are not consecutive, untied head); `toy` is the smallest model meant to
learn (synthetic chart tasks, with the sentencepiece tokenizer whose ids it carries). `models.qwen3_vl.config` turns these
dicts (or a checkpoint's config.json) into a validated `Qwen3VLConfig`. This file holds data only:
it must never import jax, flax or anything from the project.
"""
import copy

import ml_collections

# Special token ids of the real Qwen3 tokenizer (151669 entries; embedding rows up to 151935 are padding).
_REAL_TOKENS = dict(image_token_id=151655, video_token_id=151656,
                    vision_start_token_id=151652, vision_end_token_id=151653)
_REAL_TEXT_COMMON = dict(
    vocab_size=151936, head_dim=128, hidden_act="silu", rms_norm_eps=1e-6,
    max_position_embeddings=262144, attention_bias=False, attention_dropout=0.0,
    initializer_range=0.02, bos_token_id=151643, eos_token_id=151645,
    rope_parameters=dict(rope_type="default", rope_theta=5_000_000.0,
                         mrope_section=[24, 20, 20], mrope_interleaved=True))
_REAL_VISION_COMMON = dict(
    hidden_act="gelu_pytorch_tanh", num_heads=16, in_channels=3, patch_size=16,
    temporal_patch_size=2, spatial_merge_size=2, num_position_embeddings=2304,
    initializer_range=0.02, rope_parameters=dict(rope_type="axial", rope_theta=10000.0))
# The two vision towers used by the family: 24 x 1024 (2B/4B) and 27 x 1152 (8B/32B).
_SMALL_VIT = dict(depth=24, hidden_size=1024, intermediate_size=4096,
                  deepstack_visual_indexes=[5, 11, 17])
_LARGE_VIT = dict(depth=27, hidden_size=1152, intermediate_size=4304,
                  deepstack_visual_indexes=[8, 16, 24])


def _real(text: dict, vit: dict, tie_word_embeddings: bool) -> dict:
    return dict(
        text_config=dict(_REAL_TEXT_COMMON, **text, tie_word_embeddings=tie_word_embeddings),
        vision_config=dict(_REAL_VISION_COMMON, **vit, out_hidden_size=text["hidden_size"]),
        tie_word_embeddings=tie_word_embeddings, **_REAL_TOKENS)


SIZES: dict[str, dict] = {
    "tiny": dict(
        text_config=dict(
            vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, hidden_act="silu",
            rms_norm_eps=1e-6, max_position_embeddings=1024, attention_bias=False,
            attention_dropout=0.0, initializer_range=0.02, tie_word_embeddings=False,
            rope_parameters=dict(rope_type="default", rope_theta=5_000_000.0,
                                 mrope_section=[6, 5, 5], mrope_interleaved=True)),
        vision_config=dict(
            depth=3, hidden_size=32, hidden_act="gelu_pytorch_tanh", intermediate_size=64,
            num_heads=2, in_channels=3, patch_size=16, temporal_patch_size=2,
            spatial_merge_size=2, out_hidden_size=64, num_position_embeddings=16,
            deepstack_visual_indexes=[0, 2], initializer_range=0.02,
            rope_parameters=dict(rope_type="axial", rope_theta=10000.0)),
        image_token_id=62, video_token_id=63, vision_start_token_id=60,
        vision_end_token_id=61, tie_word_embeddings=False),
    "2b": _real(dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=8), _SMALL_VIT, True),
    "4b": _real(dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8), _SMALL_VIT, True),
    "8b": _real(dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8), _LARGE_VIT, False),
    "32b": _real(dict(hidden_size=5120, intermediate_size=25600, num_hidden_layers=64,
                      num_attention_heads=64, num_key_value_heads=8), _LARGE_VIT, False),
    # Learnable at small scale with the sentencepiece tokenizer `synthetic_charts`
    # (models/tokenizers): its 2048 tokens, and its control-token ids (<unk> is 0, then
    # <|im_start|> 1, <|im_end|> 2, <|endoftext|> 3, <|vision_start|> 4, <|vision_end|> 5,
    # <|image_pad|> 6, <|video_pad|> 7).
    "toy": dict(
        text_config=dict(
            vocab_size=2048, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, head_dim=64, hidden_act="silu",
            rms_norm_eps=1e-6, max_position_embeddings=4096, attention_bias=False,
            attention_dropout=0.0, initializer_range=0.02, tie_word_embeddings=True,
            rope_parameters=dict(rope_type="default", rope_theta=1_000_000.0,
                                 mrope_section=[12, 10, 10], mrope_interleaved=True)),
        vision_config=dict(
            depth=2, hidden_size=128, hidden_act="gelu_pytorch_tanh", intermediate_size=256,
            num_heads=2, in_channels=3, patch_size=16, temporal_patch_size=2,
            spatial_merge_size=2, out_hidden_size=256, num_position_embeddings=256,
            deepstack_visual_indexes=[0, 1], initializer_range=0.02,
            rope_parameters=dict(rope_type="axial", rope_theta=10000.0)),
        image_token_id=6, video_token_id=7, vision_start_token_id=4,
        vision_end_token_id=5, tie_word_embeddings=True),
}


def get_config(size: str = "tiny") -> ml_collections.ConfigDict:
    """The architecture named `size` (one of SIZES) as a ConfigDict of HF config.json fields."""
    if size not in SIZES:
        raise ValueError(f"Unknown Qwen3-VL size {size!r}. Fix: use one of {sorted(SIZES)}.")
    return ml_collections.ConfigDict(copy.deepcopy(SIZES[size]))
