"""`Qwen3VL`: the Flax NNX port of transformers' `Qwen3VLForConditionalGeneration`.

Inputs are device arrays prepared on the host: token ids [B, L], 3-row MRoPE positions
[3, B, L] (rope_index.py), an attention mask [B, L] (1 = real token, 0 = padding) and
optionally `VisionInputs` (a batch of image slots + metadata, vision_inputs.py). Image/video
features replace the <|image_pad|>/<|video_pad|> embeddings in order (images first, then videos,
like transformers; `VisionInputs.token_rows` maps the k-th visual token to its feature row, so
rows can share one encoded image), and DeepStack feature k is added at those positions after
decoder layer k. The text attention is causal plus key padding, image tokens included; with
`segment_ids` [B, L] (several sequences packed in one row) a token attends only within its segment.

Public API (stable; the sampler, losses and trainer build on it):
  model(input_ids, positions, attention_mask=None, vision=None) -> float32 logits [B, L, V]
  model.hidden_states(...same..., segment_ids=None) -> final hidden states [B, L, D] (after the
      final norm, no logits computed; the fused loss pairs them with `model.lm_head_matrix()`
      [D, V])
  model.lm_head_matrix() -> the output head as [hidden, vocab] (embedding.T when tied)
  model.encode_vision(vision) -> (merged tokens [S*P/4, D], DeepStack features
      [taps, S*P/4, D]), slot-major; `vision.token_rows` picks the text's rows from them
  model.prefill(cache, ...) / model.decode_step(cache, tokens) -> (logits [B, V], cache)
      incremental decoding through a preallocated KVCache (kv_cache.py documents the contract).
  model.with_decode_layout() -> the same model with per-layer decoder weights and a
      vocabulary-major LM head, for decode loops on XLA:CPU (pair it with a `per_layer`
      KVCache; see the method).
  init_model(config, seed=0, mesh=None) -> a randomly initialised model, created directly on
      its shardings (checkpoints load through convert.py instead).
All of these are pure functions of (parameters, inputs) and jit/while_loop friendly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.kv_cache import KVCache
from models.qwen3_vl.layers import Linear, Segments, packed_segments
from models.qwen3_vl.rope import text_rope
from models.qwen3_vl.stack import unstack
from models.qwen3_vl.text import CacheWrite, DeepStack, TextModel
from models.qwen3_vl.vision import VisionModel
from models.qwen3_vl.vision_inputs import VisionInputs
from models.sharding import constrain, state_shardings


class Qwen3VL(nnx.Module):
    """Vision tower + DeepStack + Qwen3 decoder + LM head (untied, or tied to the embedding)."""

    def __init__(self, config: Qwen3VLConfig, *, rngs: nnx.Rngs):
        config.validate()
        self.config = config
        self.visual = VisionModel(config, rngs)
        self.language_model = TextModel(config, rngs)
        t = config.text
        self.lm_head = None if config.tie_word_embeddings else Linear(
            [t.hidden_size], [t.vocab_size], ["embed"], ["vocab"], use_bias=False,
            std=t.initializer_range, dtype=config.jnp_dtype,
            param_dtype=config.jnp_param_dtype, rngs=rngs)
        # [vocab, hidden] copy of an untied head, set only by `with_decode_layout`.
        self.decode_head: nnx.Variable | None = nnx.data(None)

    # ----------------------------------------------------------------------------- heads
    def lm_head_matrix(self) -> jax.Array:
        """The output head as [hidden, vocab] in the parameter dtype (tied: embedding.T)."""
        if self.lm_head is None:
            return self.language_model.embed_tokens.table[...].T
        return self.lm_head.kernel[...]

    def _logits(self, hidden: jax.Array) -> jax.Array:
        # [vocab, hidden]; XLA folds the transpose of lm_head_matrix() into the dot.
        head = self.lm_head_matrix().T if self.decode_head is None else self.decode_head[...]
        logits = jnp.einsum("...d,vd->...v", hidden, head.astype(hidden.dtype),
                            preferred_element_type=jnp.float32)
        axes = ("act_batch", "act_seq", "act_vocab") if logits.ndim == 3 else \
            ("act_batch", "act_vocab")
        return constrain(logits, axes, self.config.sharding_rules)

    # ----------------------------------------------------------------------------- forward
    def encode_vision(self, vision: VisionInputs) -> tuple[jax.Array, jax.Array]:
        """Merged visual tokens [S*P/4, D] and DeepStack features [taps, S*P/4, D]."""
        return self.visual(vision)

    def _embed(self, input_ids: jax.Array, vision: VisionInputs | None
               ) -> tuple[jax.Array, DeepStack | None]:
        h = self.language_model.embed_tokens(input_ids)
        if vision is None or vision.num_patches == 0:
            return h, None
        merged, deepstack = self.encode_vision(vision)
        rules = self.config.sharding_rules
        merged = constrain(merged, ("act_images", "act_embed"), rules)
        deepstack = constrain(deepstack, (None, "act_images", "act_embed"), rules)
        is_image = input_ids == self.config.image_token_id
        is_video = input_ids == self.config.video_token_id
        # Row-major running counts, like torch's masked_scatter over the whole batch.
        image_rank = jnp.cumsum(is_image.ravel()).reshape(is_image.shape) - 1
        video_rank = jnp.cumsum(is_video.ravel()).reshape(is_video.shape) - 1
        rank = jnp.where(is_image, image_rank,
                         jnp.where(is_video, vision.num_image_tokens + video_rank, 0))
        index = jnp.asarray(vision.token_rows)[jnp.clip(rank, 0, vision.token_rows.shape[0] - 1)]
        visual = is_image | is_video
        h = jnp.where(visual[..., None], merged[index].astype(h.dtype), h)
        return h, DeepStack(features=deepstack, token_index=index, visual_mask=visual)

    def _decode(self, input_ids: jax.Array, positions: jax.Array, mask: jax.Array,
                vision: VisionInputs | None, cache: CacheWrite | None,
                segments: Segments | None = None) -> tuple[jax.Array, CacheWrite | None]:
        t = self.config.text
        h, deepstack = self._embed(input_ids, vision)
        cos, sin = text_rope(positions, t.head_dim, t.rope_theta, t.mrope_section, h.dtype)
        return self.language_model(h, cos, sin, mask, deepstack, cache, segments)

    def hidden_states(self, input_ids: jax.Array, positions: jax.Array,
                      attention_mask: jax.Array | None = None,
                      vision: VisionInputs | None = None,
                      segment_ids: jax.Array | None = None) -> jax.Array:
        """Final hidden states [B, L, D] (after the final RMSNorm), without the LM head.
        `segment_ids` [B, L]: packed rows, attention stays within equal ids."""
        valid = _valid(input_ids, attention_mask)
        length = input_ids.shape[1]
        causal = jnp.tril(jnp.ones((length, length), bool))
        mask = causal[None] & valid[:, None, :]
        if segment_ids is not None:
            mask &= segment_ids[:, :, None] == segment_ids[:, None, :]
        segments = packed_segments(valid, segment_ids) \
            if self.config.attention_impl == "splash" else None
        hidden, _ = self._decode(input_ids, positions, mask, vision, None, segments)
        return hidden

    def __call__(self, input_ids: jax.Array, positions: jax.Array,
                 attention_mask: jax.Array | None = None,
                 vision: VisionInputs | None = None) -> jax.Array:
        """float32 logits [B, L, V]. Logits at padded positions are meaningless."""
        return self._logits(self.hidden_states(input_ids, positions, attention_mask, vision))

    # ----------------------------------------------------------------------------- decoding
    def with_decode_layout(self) -> "Qwen3VL":
        """A view of this model laid out for decode loops on XLA:CPU (same outputs).

        Two copies, made once when built inside the jitted program, outside the loop:
        * per-layer decoder modules (stack.unstack): XLA:CPU copies a stacked layer's weights
          every time a loop iteration slices them; the layers then run unrolled whatever
          `scan_layers` says.
        * an untied LM head as [vocab, hidden]: for a few rows, XLA:CPU's dot reads the head
          ~25% faster in this layout than as [hidden, vocab], and the head is most of a decode
          step (a tied head is the [vocab, hidden] embedding already; no copy).
        Costs one more copy of the decoder weights and of the head for the program's lifetime.
        On TPU a stacked slice is free and the layout is the compiler's choice: don't use it.
        """
        graphdef, state = nnx.split(self)
        view = nnx.merge(graphdef, state)
        view.language_model.layers = unstack(view.language_model.layers)
        if view.lm_head is not None:
            head = jnp.copy(view.lm_head.kernel[...].T)
            view.decode_head = nnx.Variable(constrain(head, ("vocab", "embed"),
                                                      self.config.sharding_rules))
        return view

    def prefill(self, cache: KVCache, input_ids: jax.Array, positions: jax.Array,
                attention_mask: jax.Array | None = None,
                vision: VisionInputs | None = None) -> tuple[jax.Array, KVCache]:
        """Write a prompt chunk [B, L] into the cache at slot `cache.end`.

        Returns float32 logits [B, V] at each row's last real token (the next-token
        distribution) and the updated cache (see kv_cache.py for positions and padding).
        """
        valid = _valid(input_ids, attention_mask)
        hidden, cache = self._cached(cache, input_ids, positions, valid, vision)
        last = input_ids.shape[1] - 1 - jnp.argmax(valid[:, ::-1], axis=1)
        return self._logits(jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0]), cache

    def decode_step(self, cache: KVCache, tokens: jax.Array) -> tuple[jax.Array, KVCache]:
        """Feed one token per row [B]; returns float32 next-token logits [B, V] and the cache."""
        positions = jnp.broadcast_to(cache.next_position[None, :, None], (3, tokens.shape[0], 1))
        hidden, cache = self._cached(cache, tokens[:, None], positions,
                                     jnp.ones((tokens.shape[0], 1), bool), None)
        return self._logits(hidden[:, 0]), cache

    def _cached(self, cache: KVCache, input_ids: jax.Array, positions: jax.Array,
                valid: jax.Array, vision: VisionInputs | None) -> tuple[jax.Array, KVCache]:
        length = input_ids.shape[1]
        key_mask = jax.lax.dynamic_update_slice(cache.key_mask, valid, (0, cache.end))
        query_slot = cache.end + jnp.arange(length)
        causal = jnp.arange(cache.capacity)[None, :] <= query_slot[:, None]
        mask = causal[None] & key_mask[:, None, :]
        write = CacheWrite(keys=cache.keys, values=cache.values, index=cache.end)
        hidden, write = self._decode(input_ids, positions, mask, vision, write)
        chunk_max = jnp.max(jnp.where(valid, positions.max(axis=0), -1), axis=1)
        next_position = jnp.where(valid.any(axis=1), chunk_max + 1, cache.next_position)
        return hidden, cache.replace(keys=write.keys, values=write.values, key_mask=key_mask,
                                     end=cache.end + length,
                                     next_position=next_position.astype(jnp.int32))


def _valid(input_ids: jax.Array, attention_mask: jax.Array | None) -> jax.Array:
    if attention_mask is None:
        return jnp.ones(input_ids.shape, bool)
    return attention_mask.astype(bool)


def init_model(config: Qwen3VLConfig, seed: int = 0, mesh: Mesh | None = None) -> Qwen3VL:
    """A randomly initialised model from one compiled init.

    With a mesh, every parameter is produced directly on its sharding (by the logical axis
    rules), so no device ever holds the whole model; eager `Qwen3VL(config, rngs=...)` would
    build it on one device first.
    """
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Qwen3VL(config, rngs=nnx.Rngs(seed))))
    shardings = None if mesh is None else state_shardings(abstract, mesh, config.sharding_rules)

    @jax.jit
    def init() -> nnx.State:
        state = nnx.state(Qwen3VL(config, rngs=nnx.Rngs(seed)))
        return state if shardings is None else jax.lax.with_sharding_constraint(state, shardings)

    return nnx.merge(graphdef, init())
