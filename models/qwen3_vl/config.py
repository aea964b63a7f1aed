"""`Qwen3VLConfig`: the validated architecture + runtime options of the Flax Qwen3-VL port.

Built from a dict of Hugging Face `config.json` fields (`configs/model_sizes.py`, or a checkpoint
folder's config.json, in either the legacy `rope_scaling` + `rope_theta` spelling or the 5.x
`rope_parameters` one) plus runtime options that HF does not have (dtypes, layer scan, remat
policy, logical sharding rules). Every field is checked up front so a wrong config fails with a
message naming the field and the fix, never deep inside a jit trace. This module must never
import the model code or anything outside jax/numpy (it is read by the converter and trainers).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from models.sharding import DEFAULT_RULES, Rules, validate_rules

# `jax.checkpoint` policies selectable by name (`remat` option); "none" disables remat.
REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}
# Text attention in training / prefill without a cache: "xla" (masked softmax by XLA, in query
# chunks), "splash" (the fused Pallas splash-attention kernel on TPU backends, XLA elsewhere).
ATTENTION_IMPLS = ("xla", "splash")
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


class ConfigError(ValueError):
    """A config field is missing or wrong; the message names the field and the fix."""


def _field(section: Mapping[str, Any], where: str, name: str, kind: type | tuple[type, ...],
           default: Any = dataclasses.MISSING) -> Any:
    if name not in section or section[name] is None:
        if default is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name} is missing. Fix: add it to the config "
                              f"(see configs/model_sizes.py for real values).")
        return default
    value = section[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{name}={value!r} must be {kind}, not a bool.")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{name}={value!r} has type {type(value).__name__}; "
                          f"expected {kind}. Fix the value in the config.")
    return value


def _positive(where: str, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{name}={value} must be > 0.")


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """The Qwen3 decoder (HF `text_config`)."""
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    mrope_section: tuple[int, int, int]
    max_position_embeddings: int
    initializer_range: float = 0.02
    hidden_act: str = "silu"

    @property
    def num_kv_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], top: Mapping[str, Any]) -> "TextConfig":
        w = "text_config"
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        if not isinstance(rope, Mapping):
            raise ConfigError(f"{w}.rope_parameters must be a dict, got {rope!r}.")
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", "mrope"):
            raise ConfigError(f"{w}.rope_parameters.rope_type={rope_type!r} is not supported "
                              f"(Qwen3-VL uses 'default'). Fix: set it to 'default'.")
        theta = rope.get("rope_theta", d.get("rope_theta", top.get("rope_theta")))
        if theta is None:
            raise ConfigError(f"{w}.rope_parameters.rope_theta is missing (legacy configs put "
                              f"it at {w}.rope_theta). Fix: add it (5000000.0 for Qwen3-VL).")
        section = tuple(rope.get("mrope_section", (24, 20, 20)))
        cfg = cls(
            vocab_size=_field(d, w, "vocab_size", int),
            hidden_size=_field(d, w, "hidden_size", int),
            intermediate_size=_field(d, w, "intermediate_size", int),
            num_hidden_layers=_field(d, w, "num_hidden_layers", int),
            num_attention_heads=_field(d, w, "num_attention_heads", int),
            num_key_value_heads=_field(d, w, "num_key_value_heads", int),
            head_dim=_field(d, w, "head_dim", int),
            rms_norm_eps=_field(d, w, "rms_norm_eps", float),
            rope_theta=float(theta),
            mrope_section=section,  # type: ignore[arg-type]
            max_position_embeddings=_field(d, w, "max_position_embeddings", int),
            initializer_range=_field(d, w, "initializer_range", float, 0.02),
            hidden_act=_field(d, w, "hidden_act", str, "silu"),
        )
        cfg._validate(d)
        return cfg

    def _validate(self, d: Mapping[str, Any]) -> None:
        w = "text_config"
        _positive(w, vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                  intermediate_size=self.intermediate_size,
                  num_hidden_layers=self.num_hidden_layers,
                  num_attention_heads=self.num_attention_heads,
                  num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
                  rms_norm_eps=self.rms_norm_eps, rope_theta=self.rope_theta)
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"{w}.num_attention_heads={self.num_attention_heads} must be a "
                              f"multiple of num_key_value_heads={self.num_key_value_heads} (GQA).")
        if self.head_dim % 2:
            raise ConfigError(f"{w}.head_dim={self.head_dim} must be even (rotary embedding).")
        if (len(self.mrope_section) != 3
                or not all(isinstance(s, int) and s >= 0 for s in self.mrope_section)
                or sum(self.mrope_section) != self.head_dim // 2):
            raise ConfigError(
                f"{w}.rope_parameters.mrope_section={list(self.mrope_section)} must be three "
                f"non-negative ints (T, H, W) summing to head_dim/2={self.head_dim // 2}.")
        if self.hidden_act != "silu":
            raise ConfigError(f"{w}.hidden_act={self.hidden_act!r}: only 'silu' is supported.")
        if d.get("attention_bias"):
            raise ConfigError(f"{w}.attention_bias=true is not supported (Qwen3 has no "
                              f"attention biases). Fix: set it to false.")

    def to_hf_dict(self) -> dict[str, Any]:
        return dict(
            model_type="qwen3_vl_text", vocab_size=self.vocab_size,
            hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
            hidden_act=self.hidden_act, rms_norm_eps=self.rms_norm_eps,
            max_position_embeddings=self.max_position_embeddings,
            initializer_range=self.initializer_range, attention_bias=False,
            attention_dropout=0.0,
            rope_parameters=dict(rope_type="default", rope_theta=self.rope_theta,
                                 mrope_section=list(self.mrope_section),
                                 mrope_interleaved=True))


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """The ViT tower with its patch merger and DeepStack mergers (HF `vision_config`)."""
    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    in_channels: int
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    out_hidden_size: int
    num_position_embeddings: int
    deepstack_visual_indexes: tuple[int, ...]
    rope_theta: float = 10000.0
    initializer_range: float = 0.02
    hidden_act: str = "gelu_pytorch_tanh"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        """Length of one packed pixel row: C * T * P * P."""
        return self.in_channels * self.temporal_patch_size * self.patch_size ** 2

    @property
    def merge_unit(self) -> int:
        """Patches merged into one LLM token."""
        return self.spatial_merge_size ** 2

    @property
    def merged_size(self) -> int:
        return self.hidden_size * self.merge_unit

    @property
    def grid_side(self) -> int:
        """Side of the square learned position table."""
        return math.isqrt(self.num_position_embeddings)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VisionConfig":
        w = "vision_config"
        rope = d.get("rope_parameters") or {}
        taps = d.get("deepstack_visual_indexes")
        if not isinstance(taps, Sequence) or not all(isinstance(i, int) for i in taps):
            raise ConfigError(f"{w}.deepstack_visual_indexes={taps!r} must be a list of ints "
                              f"(vision block indices, e.g. [8, 16, 24]).")
        cfg = cls(
            depth=_field(d, w, "depth", int),
            hidden_size=_field(d, w, "hidden_size", int),
            intermediate_size=_field(d, w, "intermediate_size", int),
            num_heads=_field(d, w, "num_heads", int),
            in_channels=_field(d, w, "in_channels", int),
            patch_size=_field(d, w, "patch_size", int),
            temporal_patch_size=_field(d, w, "temporal_patch_size", int),
            spatial_merge_size=_field(d, w, "spatial_merge_size", int),
            out_hidden_size=_field(d, w, "out_hidden_size", int),
            num_position_embeddings=_field(d, w, "num_position_embeddings", int),
            deepstack_visual_indexes=tuple(taps),
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            initializer_range=_field(d, w, "initializer_range", float, 0.02),
            hidden_act=_field(d, w, "hidden_act", str, "gelu_pytorch_tanh"),
        )
        cfg._validate(rope)
        return cfg

    def _validate(self, rope: Mapping[str, Any]) -> None:
        w = "vision_config"
        _positive(w, depth=self.depth, hidden_size=self.hidden_size,
                  intermediate_size=self.intermediate_size, num_heads=self.num_heads,
                  in_channels=self.in_channels, patch_size=self.patch_size,
                  temporal_patch_size=self.temporal_patch_size,
                  spatial_merge_size=self.spatial_merge_size,
                  out_hidden_size=self.out_hidden_size,
                  num_position_embeddings=self.num_position_embeddings)
        if self.hidden_size % self.num_heads or self.head_dim % 4:
            raise ConfigError(f"{w}.hidden_size={self.hidden_size} / num_heads={self.num_heads} "
                              f"must give an integer head_dim divisible by 4 (2D rotary).")
        if self.grid_side ** 2 != self.num_position_embeddings:
            raise ConfigError(f"{w}.num_position_embeddings={self.num_position_embeddings} must "
                              f"be a perfect square (a learned square grid, e.g. 2304 = 48^2).")
        taps = self.deepstack_visual_indexes
        if list(taps) != sorted(set(taps)) or any(not 0 <= i < self.depth for i in taps):
            raise ConfigError(f"{w}.deepstack_visual_indexes={list(taps)} must be increasing, "
                              f"unique block indices in [0, depth={self.depth}).")
        if rope.get("rope_type", "axial") != "axial":
            raise ConfigError(f"{w}.rope_parameters.rope_type={rope.get('rope_type')!r}: only "
                              f"'axial' is supported.")
        if self.hidden_act != "gelu_pytorch_tanh":
            raise ConfigError(f"{w}.hidden_act={self.hidden_act!r}: only 'gelu_pytorch_tanh' "
                              f"is supported.")

    def to_hf_dict(self) -> dict[str, Any]:
        return dict(
            model_type="qwen3_vl_vision", depth=self.depth, hidden_size=self.hidden_size,
            hidden_act=self.hidden_act, intermediate_size=self.intermediate_size,
            num_heads=self.num_heads, in_channels=self.in_channels, patch_size=self.patch_size,
            temporal_patch_size=self.temporal_patch_size,
            spatial_merge_size=self.spatial_merge_size, out_hidden_size=self.out_hidden_size,
            num_position_embeddings=self.num_position_embeddings,
            deepstack_visual_indexes=list(self.deepstack_visual_indexes),
            initializer_range=self.initializer_range,
            rope_parameters=dict(rope_type="axial", rope_theta=self.rope_theta))


@dataclasses.dataclass(frozen=True)
class Qwen3VLConfig:
    """Architecture (`text`, `vision`, token ids, head tying) plus runtime options.

    Runtime options: `param_dtype` (master weights, e.g. float32), `dtype` (compute, e.g.
    bfloat16), `scan_layers` (run the stacked layers with `lax.scan` instead of unrolled),
    `remat` (a name in REMAT_POLICIES, applied per layer), `attention_query_chunk` (queries per
    attention chunk, 0 = all at once; bounds the score memory of long sequences and big images),
    `attention_impl` (ATTENTION_IMPLS: the text decoder's attention without a KV cache),
    `sharding_rules` (logical axis -> mesh axes, see models/sharding.py). Parameters are stored
    stacked per layer either way, so checkpoints do not depend on the runtime options.
    """
    text: TextConfig
    vision: VisionConfig
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    tie_word_embeddings: bool
    param_dtype: str = "float32"
    dtype: str = "float32"
    scan_layers: bool = False
    remat: str = "none"
    attention_query_chunk: int = 0
    attention_impl: str = "xla"
    sharding_rules: Rules = DEFAULT_RULES

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **runtime: Any) -> "Qwen3VLConfig":
        """From HF config.json fields (a dict or ConfigDict) plus runtime keyword options."""
        if hasattr(d, "to_dict"):
            d = d.to_dict()
        for part in ("text_config", "vision_config"):
            if not isinstance(d.get(part), Mapping):
                raise ConfigError(f"{part} is missing or not a dict. Fix: give the HF "
                                  f"Qwen3-VL config layout (see configs/model_sizes.py).")
        text = TextConfig.from_dict(d["text_config"], d)
        vision = VisionConfig.from_dict(d["vision_config"])
        tie = d.get("tie_word_embeddings", d["text_config"].get("tie_word_embeddings"))
        if not isinstance(tie, bool):
            raise ConfigError(f"tie_word_embeddings={tie!r} must be true or false (8B/32B: "
                              f"false, 2B/4B: true). Fix: set it at the top level.")
        cfg = cls(
            text=text, vision=vision,
            image_token_id=_field(d, "config", "image_token_id", int),
            video_token_id=_field(d, "config", "video_token_id", int),
            vision_start_token_id=_field(d, "config", "vision_start_token_id", int),
            vision_end_token_id=_field(d, "config", "vision_end_token_id", int),
            tie_word_embeddings=tie, **runtime)
        cfg.validate()
        return cfg

    @classmethod
    def from_json_file(cls, path: str, **runtime: Any) -> "Qwen3VLConfig":
        """From a checkpoint's config.json (a file, or the folder holding it)."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No config.json at {path}. Fix: point at a Qwen3-VL "
                                    f"checkpoint folder (HF layout).")
        with open(path) as f:
            d = json.load(f)
        if d.get("model_type") not in (None, "qwen3_vl"):
            raise ConfigError(f"{path}: model_type={d.get('model_type')!r}, expected "
                              f"'qwen3_vl'. Fix: use a Qwen3-VL (dense) checkpoint.")
        return cls.from_dict(d, **runtime)

    def replace(self, **changes: Any) -> "Qwen3VLConfig":
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        if self.vision.out_hidden_size != self.text.hidden_size:
            raise ConfigError(f"vision_config.out_hidden_size={self.vision.out_hidden_size} must "
                              f"equal text_config.hidden_size={self.text.hidden_size}.")
        if len(self.vision.deepstack_visual_indexes) > self.text.num_hidden_layers:
            raise ConfigError("vision_config.deepstack_visual_indexes has more taps than the "
                              "decoder has layers (feature k is added after decoder layer k).")
        ids = dict(image_token_id=self.image_token_id, video_token_id=self.video_token_id,
                   vision_start_token_id=self.vision_start_token_id,
                   vision_end_token_id=self.vision_end_token_id)
        for name, value in ids.items():
            if not 0 <= value < self.text.vocab_size:
                raise ConfigError(f"{name}={value} is outside the vocabulary "
                                  f"[0, {self.text.vocab_size}).")
        for name in ("param_dtype", "dtype"):
            if getattr(self, name) not in _DTYPES:
                raise ConfigError(f"{name}={getattr(self, name)!r}: use one of {sorted(_DTYPES)}.")
        if self.remat not in REMAT_POLICIES:
            raise ConfigError(f"remat={self.remat!r}: use one of {sorted(REMAT_POLICIES)}.")
        if not isinstance(self.scan_layers, bool):
            raise ConfigError(f"scan_layers={self.scan_layers!r} must be true or false.")
        if not isinstance(self.attention_query_chunk, int) or self.attention_query_chunk < 0:
            raise ConfigError(f"attention_query_chunk={self.attention_query_chunk!r} must be an "
                              f"int >= 0 (0 = no chunking).")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ConfigError(f"attention_impl={self.attention_impl!r}: use one of "
                              f"{list(ATTENTION_IMPLS)}.")
        validate_rules(self.sharding_rules)

    @property
    def jnp_param_dtype(self) -> jnp.dtype:
        return jnp.dtype(_DTYPES[self.param_dtype])

    @property
    def jnp_dtype(self) -> jnp.dtype:
        return jnp.dtype(_DTYPES[self.dtype])

    @property
    def remat_policy(self):
        return REMAT_POLICIES[self.remat]

    def to_hf_dict(self) -> dict[str, Any]:
        """The HF config.json content (architecture only; runtime options are not HF fields)."""
        text = self.text.to_hf_dict()
        text["tie_word_embeddings"] = self.tie_word_embeddings
        return dict(
            architectures=["Qwen3VLForConditionalGeneration"], model_type="qwen3_vl",
            text_config=text, vision_config=self.vision.to_hf_dict(),
            image_token_id=self.image_token_id, video_token_id=self.video_token_id,
            vision_start_token_id=self.vision_start_token_id,
            vision_end_token_id=self.vision_end_token_id,
            tie_word_embeddings=self.tie_word_embeddings)
