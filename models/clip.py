"""CLIP in Flax NNX (ViT image tower, causal text tower, projections), loaded from an HF folder.

    config, model = load_clip(folder)        # config.json + model.safetensors; no downloads
    preprocess = ClipImageProcessor.from_folder(folder)
    embeds = model.image_features(jnp.asarray(preprocess([image])))   # [B, projection_dim]

The layout is transformers' `CLIPModel` as `openai/clip-vit-base-patch32` is published: pre-LN
encoder blocks (q/k/v/out projections with bias, fc1 -> quick_gelu -> fc2), a ViT with a class
token, a learned position table, an extra LayerNorm before the blocks (`pre_layrnorm`, HF's
spelling) and one on the class token after them; the text tower is causal and pools the hidden
state at the end-of-text token. Module and attribute names follow the HF tensor names, so the
loader is a walk over those names. `ClipImageProcessor` is `CLIPImageProcessor`'s PIL path:
shortest edge to `size` (bicubic on uint8, long edge int(size * long / short)), centre crop
(offset floor((h - crop) / 2)), x/255, (x - mean) / std, float32, [B, C, H, W].

Used for Design2Code's CLIP score (sdpo_jax.clip_score). Imports jax, flax, numpy, safetensors
and Pillow only; never torch.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image
from safetensors import safe_open

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_ACTIVATIONS = {
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
}
_IGNORED_SUFFIXES = ("position_ids",)  # buffers older checkpoints carry


class ClipCheckpointError(ValueError):
    """A CLIP folder does not match its config; the message names the tensors and the fix."""


@dataclasses.dataclass(frozen=True)
class TowerConfig:
    """One encoder tower (the text and vision towers share this shape of config)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    # text tower only
    vocab_size: int = 49408
    max_position_embeddings: int = 77
    eos_token_id: int = 49407
    # vision tower only
    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"CLIP hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}; fix config.json")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"CLIP hidden_act {self.hidden_act!r} is not supported; use one of "
                             f"{sorted(_ACTIVATIONS)}")
        if self.image_size % self.patch_size:
            raise ValueError(f"CLIP image_size {self.image_size} is not a multiple of patch_size "
                             f"{self.patch_size}; fix config.json")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_hf(cls, values: dict[str, Any]) -> "TowerConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    text: TowerConfig
    vision: TowerConfig
    projection_dim: int = 512

    @classmethod
    def from_hf(cls, values: dict[str, Any]) -> "ClipConfig":
        """From a transformers CLIPConfig dict (config.json)."""
        if "text_config" not in values or "vision_config" not in values:
            raise ValueError("CLIP config.json needs text_config and vision_config (a CLIPModel "
                             "folder, as saved by transformers' save_pretrained)")
        return cls(text=TowerConfig.from_hf(values["text_config"]),
                   vision=TowerConfig.from_hf(values["vision_config"]),
                   projection_dim=int(values.get("projection_dim", 512)))


# ---------------------------------------------------------------------------------- modules
class Attention(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nnx.Linear(d, d, rngs=rngs) for _ in range(4))

    def __call__(self, x_btd: jax.Array, mask_btt: jax.Array | None) -> jax.Array:
        b, t, d = x_btd.shape
        split = lambda y: y.reshape(b, t, self.heads, d // self.heads)  # noqa: E731
        q, k, v = split(self.q_proj(x_btd)), split(self.k_proj(x_btd)), split(self.v_proj(x_btd))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (d // self.heads) ** -0.5
        if mask_btt is not None:
            logits = jnp.where(mask_btt[:, None], logits, jnp.finfo(logits.dtype).min)
        out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
        return self.out_proj(out.reshape(b, t, d))


class Mlp(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.act = _ACTIVATIONS[c.hidden_act]
        self.fc1 = nnx.Linear(c.hidden_size, c.intermediate_size, rngs=rngs)
        self.fc2 = nnx.Linear(c.intermediate_size, c.hidden_size, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.layer_norm1 = nnx.LayerNorm(c.hidden_size, epsilon=c.layer_norm_eps, rngs=rngs)
        self.self_attn = Attention(c, rngs)
        self.layer_norm2 = nnx.LayerNorm(c.hidden_size, epsilon=c.layer_norm_eps, rngs=rngs)
        self.mlp = Mlp(c, rngs)

    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.layers = nnx.List([EncoderLayer(c, rngs) for _ in range(c.num_hidden_layers)])

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        for layer in self.layers:
            x = layer(x, mask)
        return x


class PatchEmbedding(nnx.Module):
    """HF's bias-free Conv2d with stride = kernel, as a matmul over (C, ph, pw)-ordered patches."""

    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.patch = c.patch_size
        fan_in = c.num_channels * c.patch_size ** 2
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (fan_in, c.hidden_size))
                                * fan_in ** -0.5)

    def __call__(self, pixels_bchw: jax.Array) -> jax.Array:
        b, ch, h, w = pixels_bchw.shape
        p = self.patch
        patches = pixels_bchw.reshape(b, ch, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5)
        return patches.reshape(b, (h // p) * (w // p), ch * p * p) @ self.kernel[...]


class VisionEmbeddings(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.class_embedding = nnx.Param(jax.random.normal(rngs.params(), (c.hidden_size,)))
        self.patch_embedding = PatchEmbedding(c, rngs)
        self.position_embedding = nnx.Embed(c.num_patches + 1, c.hidden_size, rngs=rngs)

    def __call__(self, pixels_bchw: jax.Array) -> jax.Array:
        patches = self.patch_embedding(pixels_bchw)
        cls = jnp.broadcast_to(self.class_embedding[...], (patches.shape[0], 1, patches.shape[2]))
        return jnp.concatenate([cls, patches], axis=1) + self.position_embedding.embedding[...]


class VisionTower(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.config = c
        self.embeddings = VisionEmbeddings(c, rngs)
        self.pre_layrnorm = nnx.LayerNorm(c.hidden_size, epsilon=c.layer_norm_eps, rngs=rngs)
        self.encoder = Encoder(c, rngs)
        self.post_layernorm = nnx.LayerNorm(c.hidden_size, epsilon=c.layer_norm_eps, rngs=rngs)

    def __call__(self, pixels_bchw: jax.Array) -> jax.Array:
        """Pooled output: the class token after the blocks, normalised. [B, hidden]."""
        c = self.config
        if pixels_bchw.shape[1:] != (c.num_channels, c.image_size, c.image_size):
            raise ValueError(f"CLIP pixel_values must be [B, {c.num_channels}, {c.image_size}, "
                             f"{c.image_size}], got {tuple(pixels_bchw.shape)}; preprocess with "
                             f"ClipImageProcessor.from_folder")
        hidden = self.encoder(self.pre_layrnorm(self.embeddings(pixels_bchw)))
        return self.post_layernorm(hidden[:, 0])


class TextEmbeddings(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.token_embedding = nnx.Embed(c.vocab_size, c.hidden_size, rngs=rngs)
        self.position_embedding = nnx.Embed(c.max_position_embeddings, c.hidden_size, rngs=rngs)


class TextTower(nnx.Module):
    def __init__(self, c: TowerConfig, rngs: nnx.Rngs):
        self.config = c
        self.embeddings = TextEmbeddings(c, rngs)
        self.encoder = Encoder(c, rngs)
        self.final_layer_norm = nnx.LayerNorm(c.hidden_size, epsilon=c.layer_norm_eps, rngs=rngs)

    def __call__(self, ids_bt: jax.Array, attention_mask_bt: jax.Array | None = None) -> jax.Array:
        """Pooled output: the hidden state at the end-of-text token (HF's rule). [B, hidden]."""
        b, t = ids_bt.shape
        x = (self.embeddings.token_embedding(ids_bt)
             + self.embeddings.position_embedding.embedding[...][:t])
        mask = jnp.broadcast_to(jnp.tril(jnp.ones((t, t), bool)), (b, t, t))
        if attention_mask_bt is not None:
            mask = mask & attention_mask_bt.astype(bool)[:, None, :]
        hidden = self.final_layer_norm(self.encoder(x, mask))
        eos = self.config.eos_token_id
        # transformers' legacy configs say eos_token_id=2: the end token is then the largest id
        where = ids_bt.argmax(-1) if eos == 2 else (ids_bt == eos).astype(jnp.int32).argmax(-1)
        return hidden[jnp.arange(b), where]


class Clip(nnx.Module):
    """Both towers and their bias-free projections into the shared embedding space."""

    def __init__(self, config: ClipConfig, rngs: nnx.Rngs):
        self.config = config
        self.text_model = TextTower(config.text, rngs)
        self.vision_model = VisionTower(config.vision, rngs)
        self.text_projection = nnx.Linear(config.text.hidden_size, config.projection_dim,
                                          use_bias=False, rngs=rngs)
        self.visual_projection = nnx.Linear(config.vision.hidden_size, config.projection_dim,
                                            use_bias=False, rngs=rngs)
        self.logit_scale = nnx.Param(jnp.asarray(2.6592, jnp.float32))

    def image_features(self, pixels_bchw: jax.Array) -> jax.Array:
        """Projected image embeddings (not normalised), as CLIPModel.get_image_features."""
        return self.visual_projection(self.vision_model(pixels_bchw))

    def text_features(self, ids_bt: jax.Array, attention_mask_bt: jax.Array | None = None
                      ) -> jax.Array:
        """Projected text embeddings (not normalised), as CLIPModel.get_text_features."""
        return self.text_projection(self.text_model(ids_bt, attention_mask_bt))


def normalize(embeds: jax.Array) -> jax.Array:
    return embeds / jnp.linalg.norm(embeds, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------- loading
def _target(model: Clip, name: str) -> tuple[nnx.Variable, Any]:
    """The variable an HF tensor name fills, and how the tensor is laid out for it."""
    *path, leaf = name.split(".")
    node: Any = model
    for part in path:
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    if isinstance(node, nnx.Linear):
        return {"weight": (node.kernel, np.transpose), "bias": (node.bias, None)}[leaf]
    if isinstance(node, nnx.LayerNorm):
        return {"weight": (node.scale, None), "bias": (node.bias, None)}[leaf]
    if isinstance(node, nnx.Embed) and leaf == "weight":
        return node.embedding, None
    if isinstance(node, PatchEmbedding) and leaf == "weight":
        return node.kernel, lambda w: w.reshape(w.shape[0], -1).T
    value = getattr(node, leaf)
    if isinstance(value, nnx.Param):
        return value, None
    raise KeyError(name)


def _weight_files(folder: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if not files:
        raise ClipCheckpointError(f"{folder}: no *.safetensors file. Fix: point at a local CLIP "
                                  f"folder saved by transformers (CLIPModel.save_pretrained) with "
                                  f"config.json and model.safetensors")
    return files


def load_clip(folder: str, dtype: jnp.dtype = jnp.float32) -> tuple[ClipConfig, Clip]:
    """A CLIP model from a local HF folder; every tensor is checked by name and shape first."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise ClipCheckpointError(f"{folder}: no config.json. Fix: point at a local CLIP folder "
                                  f"(e.g. openai/clip-vit-base-patch32 as published)")
    with open(config_path, encoding="utf-8") as f:
        config = ClipConfig.from_hf(json.load(f))
    model = nnx.eval_shape(lambda: Clip(config, rngs=nnx.Rngs(0)))
    filled: set[int] = set()
    unknown, misshaped = [], []
    for path in _weight_files(folder):
        with safe_open(path, framework="numpy") as tensors:
            for name in tensors.keys():
                if name.endswith(_IGNORED_SUFFIXES):
                    continue
                try:
                    variable, layout = _target(model, name)
                except (AttributeError, KeyError, IndexError, ValueError):
                    unknown.append(name)
                    continue
                array = tensors.get_tensor(name)
                array = layout(array) if layout else array
                expected = variable.get_value().shape
                if tuple(array.shape) != tuple(expected):
                    misshaped.append(f"{name} {tuple(array.shape)} != {tuple(expected)}")
                    continue
                variable.set_value(jnp.asarray(array, dtype))
                filled.add(id(variable))
    missing = [".".join(map(str, p)) for p, v in nnx.iter_graph(model)
               if isinstance(v, nnx.Param) and id(v) not in filled]
    if unknown or misshaped or missing:
        raise ClipCheckpointError(
            f"{folder} does not match its config.json: unknown tensors {unknown[:8]}, wrong "
            f"shapes {misshaped[:8]}, missing parameters {missing[:8]}. Fix: use the folder's own "
            f"config.json, saved with the weights by CLIPModel.save_pretrained")
    return config, model


# ---------------------------------------------------------------------------------- images
@dataclasses.dataclass(frozen=True)
class ClipImageProcessor:
    """CLIPImageProcessor's PIL path (see the module docstring); `__call__` -> [B, C, H, W]."""

    shortest_edge: int = 224
    crop_height: int = 224
    crop_width: int = 224
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD
    rescale_factor: float = 1 / 255

    @classmethod
    def from_folder(cls, folder: str) -> "ClipImageProcessor":
        """From preprocessor_config.json, else the defaults sized to the folder's vision tower."""
        path = os.path.join(folder, "preprocessor_config.json")
        if not os.path.isfile(path):
            with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                size = ClipConfig.from_hf(json.load(f)).vision.image_size
            return cls(shortest_edge=size, crop_height=size, crop_width=size)
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        size, crop = values.get("size", {}), values.get("crop_size", {})
        edge = size.get("shortest_edge", 224) if isinstance(size, dict) else int(size)
        crop_h, crop_w = ((crop.get("height", edge), crop.get("width", edge))
                          if isinstance(crop, dict) else (int(crop), int(crop)))
        return cls(shortest_edge=edge, crop_height=crop_h, crop_width=crop_w,
                   mean=tuple(values.get("image_mean", OPENAI_CLIP_MEAN)),
                   std=tuple(values.get("image_std", OPENAI_CLIP_STD)),
                   rescale_factor=float(values.get("rescale_factor", 1 / 255)))

    def resize(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        return image.resize(size, Image.BICUBIC)

    def centre_crop(self, pixels_hwc: np.ndarray) -> np.ndarray:
        h, w = pixels_hwc.shape[:2]
        if h < self.crop_height or w < self.crop_width:  # HF pads with zeros, then crops
            pad_h, pad_w = max(0, self.crop_height - h), max(0, self.crop_width - w)
            pixels_hwc = np.pad(pixels_hwc, ((pad_h // 2, (pad_h + 1) // 2),
                                             (pad_w // 2, (pad_w + 1) // 2), (0, 0)))
            h, w = pixels_hwc.shape[:2]
        top, left = (h - self.crop_height) // 2, (w - self.crop_width) // 2
        return pixels_hwc[top:top + self.crop_height, left:left + self.crop_width]

    def __call__(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        out = []
        for image in images:
            if isinstance(image, np.ndarray):
                image = Image.fromarray(np.asarray(image, np.uint8))
            pixels = np.asarray(self.resize(image.convert("RGB")))
            pixels = self.centre_crop(pixels).astype(np.float32) * np.float32(self.rescale_factor)
            pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
            out.append(pixels.transpose(2, 0, 1))
        return np.stack(out).astype(np.float32)
