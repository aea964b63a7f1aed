"""The rollout engine: G samples per prompt for a batch of multimodal prompts, in one jitted call.

    sampler = Sampler(SamplerConfig(group_size=8, max_new_tokens=1024,
                                    sampling=Sampling(1.0, 0, 1.0)), tokenizer, mesh=mesh)
    rollouts = sampler(model, [Prompt.from_chat(i, processor(messages)) for i, messages in ...],
                       key=jax.random.key(step))

What happens on device (one `jax.jit`, under the training mesh when one is given):
  1. Prefill once per prompt: the prompts, left-padded to a length bucket, with their images as
     a batch of image slots (one per image, vision_inputs.py), go through `Qwen3VL.prefill` into
     a cache sized to the prompt.
  2. Share: each prompt's cache rows (and its next-token logits) are repeated G times into a
     cache of capacity prompt bucket + max_new_tokens; rows are prompt-major (row = prompt * G +
     sample). Nothing is prefilled twice.
  3. Decode in `jax.lax.while_loop`: choose a token per row (sampling.py), record it, feed it
     through `Qwen3VL.decode_step`; stop when every row has hit one of its stop tokens or its
     budget. Finished rows keep running (static shapes) but record nothing. Long budgets run in
     stages of `decode_chunk` steps, the cache growing by that many slots per stage, because
     every step attends over (reads) the whole cache: a 4096-token budget would otherwise pay
     for 4096 slots from its first token.
On the CPU backend (by default; `SamplerConfig.decode_layout`) the program first copies the
decoder weights into per-layer arrays, keeps the cache per layer and copies an untied LM head to
[vocab, hidden] (`Qwen3VL.with_decode_layout`): XLA:CPU copies whatever a loop iteration slices
out of a stacked array (every layer's weights and cache, every step), and reads the head faster
in that layout. This holds a second copy of the decoder weights and the head while it runs.
Randomness: row (prompt p, sample g) draws step t from fold_in(fold_in(fold_in(key, p), g), t),
where p is the caller's prompt id, so a rollout does not depend on which batch or slot it is in.
Shapes are static per (prompt-length bucket, patches-per-image bucket, prompt-count bucket):
calls within the same buckets reuse one compiled program (`Sampler.compilations` counts them);
the trainer sets the patch bucket to the largest image its config allows, so image sizes never
compile a new program.
Sharding: with a mesh, parameters are placed by the model's logical axis rules, prompt rows and
sample rows go over the batch axes ("act_batch"), image slots too ("act_images"), the cache over
batch and kv heads (the model's CACHE_AXES constraint). Multi-process runs: every process passes
the same global prompt list (the program is SPMD) and `result()` reads the full results back on
every process.
Returned per row: tokens (a stop token that ended the row is included), three per-token log-probs
(sampling.py documents which), length and finish reason ("stop" or "length").
This module never touches the environments or the trainer.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.kv_cache import BATCH_AXIS, SLOT_AXIS, KVCache, cache_axes
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.processor import ProcessedChat
from models.qwen3_vl.rope_index import rope_index
from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from models.qwen3_vl.vision_inputs import (VisionInputs, abstract_vision_inputs,
                                          prepare_vision_inputs, vision_shardings)
from models.sharding import constrain, logical_to_spec, state_shardings
from sdpo_jax.multihost import to_host
from sdpo_jax.sampling import Sampling, TokenChoice, choose_tokens

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
_ROW = ("act_batch",)
# Token id used on device for prompt padding and after a row finished (valid in every vocabulary;
# masked everywhere). Results show the tokenizer's pad id there instead.
_FILL = 0


class SamplerError(ValueError):
    """A prompt or the sampler config cannot be served; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """What the sampler does (config data; hashable, so it can key the compiled program).

    group_size: G rollouts per prompt (sharing the prompt's prefilled cache).
    max_new_tokens: the static decode budget; a prompt may ask for less, never more.
    sampling: temperature / top-k / top-p (sampling.py); temperature 0 is greedy.
    stop_token_ids: default stop tokens of every row (None: the tokenizer's <|im_end|> and
      <|endoftext|>); a prompt may bring its own, up to max_stop_tokens of them.
    suppress_token_ids: ids never generated (None: the model's <|image_pad|> and <|video_pad|>,
      which a teacher-forced forward would replace by image features); () allows everything.
    prompt_bucket / patch_bucket: prompt lengths and the patches of an image slot are padded up
      to multiples of these, so similar batches share one compiled program (a patch bucket of
      the largest image there will be gives one program for every image size).
    prompt_multiple: the prompt count is padded (with empty rows) up to a multiple of this; the
      batch-sharding size of the mesh is always folded in.
    decode_chunk: decode steps per stage (each stage is one more copy of the decode step in the
      compiled program, so fewer, longer stages compile faster; more, shorter ones read less).
    decode_layout: run prefill and decode on `Qwen3VL.with_decode_layout` (per-layer decoder
      weights, a per-layer cache, a [vocab, hidden] head; module docstring): faster on XLA:CPU,
      one extra copy of the decoder weights and the head in memory, layers unrolled. None: on
      exactly when the program runs on CPU devices.
    """

    group_size: int = 1
    max_new_tokens: int = 256
    sampling: Sampling = Sampling()
    stop_token_ids: tuple[int, ...] | None = None
    max_stop_tokens: int = 4
    suppress_token_ids: tuple[int, ...] | None = None
    prompt_bucket: int = 128
    patch_bucket: int = 1024
    prompt_multiple: int = 1
    decode_chunk: int = 1024
    decode_layout: bool | None = None

    def __post_init__(self):
        for name in ("group_size", "max_new_tokens", "max_stop_tokens", "prompt_bucket",
                     "patch_bucket", "prompt_multiple", "decode_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SamplerError(f"SamplerConfig.{name}={value!r} must be a positive integer.")
        if self.decode_layout not in (None, True, False):
            raise SamplerError(f"SamplerConfig.decode_layout={self.decode_layout!r} must be "
                               f"true, false or None (automatic: on for CPU devices).")
        if not isinstance(self.sampling, Sampling):
            raise SamplerError(f"SamplerConfig.sampling must be a sdpo_jax.sampling.Sampling, "
                               f"got {type(self.sampling).__name__}.")
        for name in ("stop_token_ids", "suppress_token_ids"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))
        if self.stop_token_ids is not None:
            if len(self.stop_token_ids) > self.max_stop_tokens:
                raise SamplerError(f"SamplerConfig.stop_token_ids has {len(self.stop_token_ids)} "
                                   f"ids; raise max_stop_tokens to at least that.")


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One prompt as the processor made it, with the caller's id (it seeds the prompt's keys).

    input_ids [L] (each <|image_pad|> already expanded); pixel_values [patches, C*T*P*P] and
    image_grid_thw [images, 3] for its images (None without images); max_new_tokens and
    stop_token_ids override the sampler's defaults for this prompt's rows.
    """

    prompt_id: int
    input_ids: np.ndarray
    pixel_values: np.ndarray | None = None
    image_grid_thw: np.ndarray | None = None
    max_new_tokens: int | None = None
    stop_token_ids: tuple[int, ...] | None = None

    @classmethod
    def from_chat(cls, prompt_id: int, chat: ProcessedChat, **overrides: Any) -> "Prompt":
        images = len(chat.image_grid_thw) > 0
        return cls(prompt_id=prompt_id, input_ids=chat.input_ids,
                   pixel_values=chat.pixel_values if images else None,
                   image_grid_thw=chat.image_grid_thw if images else None, **overrides)


@dataclasses.dataclass(frozen=True)
class Rollouts:
    """Host-side results, prompt-major: rows [p*G, (p+1)*G) are prompt p's G samples.

    tokens [N, T] int32 (the pad id after each row's length; T = the longest row);
    logprobs / tempered_logprobs / full_logprobs [N, T] float32 (0 after the length);
    lengths [N]; finish_reasons "stop" (a stop token ended the row; it is the last token) or
    "length" (the budget did). The sampler never decodes: the caller reads tokens once
    (sdpo_jax.replies for training, sdpo_jax.generate for a completion).
    """

    prompt_ids: np.ndarray
    sample_index: np.ndarray
    tokens: np.ndarray
    logprobs: np.ndarray
    tempered_logprobs: np.ndarray
    full_logprobs: np.ndarray
    lengths: np.ndarray
    finish_reasons: tuple[str, ...]
    decode_steps: int  # loop iterations run (<= max_new_tokens - 1)

    @property
    def mask(self) -> np.ndarray:
        """[N, T] bool: True on generated tokens."""
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]


@struct.dataclass
class PromptBatch:
    """Device inputs of one call: B prompts left-padded to a bucket length L."""
    input_ids: jax.Array  # [B, L] int32
    positions: jax.Array  # [3, B, L] int32
    mask: jax.Array  # [B, L] bool
    vision: VisionInputs | None
    prompt_ids: jax.Array  # [B] uint32
    budgets: jax.Array  # [B] int32 (0 for padding rows)
    stop_ids: jax.Array  # [B, S] int32, -1 = unused slot


@struct.dataclass
class _Decoding:
    """The while_loop carry: the shared cache plus what has been recorded so far."""
    cache: KVCache
    step: jax.Array
    last: jax.Array  # [R] the token fed next
    tokens: jax.Array  # [R, T]
    logprobs: jax.Array  # [3, R, T]: sampled, tempered, full
    lengths: jax.Array  # [R]
    stopped: jax.Array  # [R] bool
    finished: jax.Array  # [R] bool


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static part of a call (a jit cache key together with the model's graphdef)."""
    sampling: Sampling
    suppress: tuple[int, ...]
    group_size: int
    max_new_tokens: int
    decode_chunk: int
    decode_layout: bool
    mesh: Mesh | None


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _resize_cache(cache: KVCache, copies: int, extra_slots: int, config: Qwen3VLConfig
                  ) -> KVCache:
    """Each row repeated `copies` times (prompt-major), with `extra_slots` empty slots added."""
    def resize(x: jax.Array) -> jax.Array:
        x = jnp.repeat(x, copies, axis=BATCH_AXIS)
        pad = [(0, 0)] * x.ndim
        pad[SLOT_AXIS] = (0, extra_slots)
        return constrain(jnp.pad(x, pad), cache_axes(x), config.sharding_rules)

    return cache.replace(
        keys=jax.tree.map(resize, cache.keys), values=jax.tree.map(resize, cache.values),
        key_mask=jnp.pad(jnp.repeat(cache.key_mask, copies, axis=0), ((0, 0), (0, extra_slots))),
        next_position=jnp.repeat(cache.next_position, copies, axis=0))


def _record(state: _Decoding, choice: TokenChoice, budgets: jax.Array, stop_ids: jax.Array
            ) -> _Decoding:
    """Write step `state.step`'s choices for the rows still running and update who finished.

    Finished rows record _FILL and feed it back: any in-vocabulary id does, since nothing reads
    those rows' cache entries or outputs."""
    active = ~state.finished
    tokens = jnp.where(active, choice.tokens, _FILL)
    logprobs = jnp.stack([choice.logprobs, choice.tempered_logprobs, choice.full_logprobs])
    logprobs = jnp.where(active, logprobs, 0.0)
    hit = active & jnp.any(tokens[:, None] == stop_ids, axis=-1)
    lengths = state.lengths + active
    return state.replace(
        step=state.step + 1, last=tokens,
        tokens=jax.lax.dynamic_update_slice(state.tokens, tokens[:, None], (0, state.step)),
        logprobs=jax.lax.dynamic_update_slice(state.logprobs, logprobs[..., None],
                                              (0, 0, state.step)),
        lengths=lengths, stopped=state.stopped | hit,
        finished=state.finished | hit | (lengths >= budgets))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _rollout(graphdef: nnx.GraphDef, plan: _Plan, state: nnx.State, batch: PromptBatch,
             key: jax.Array) -> dict[str, jax.Array]:
    model = nnx.merge(graphdef, state)
    if plan.decode_layout:
        model = model.with_decode_layout()
    config = model.config
    prompts, prompt_length = batch.input_ids.shape
    copies, budget = plan.group_size, plan.max_new_tokens
    rows = prompts * copies

    cache = KVCache.create(config, batch=prompts, capacity=prompt_length,
                           per_layer=plan.decode_layout)
    logits, cache = model.prefill(cache, batch.input_ids, batch.positions, batch.mask,
                                  batch.vision)
    stage_ends = [*range(plan.decode_chunk, budget, plan.decode_chunk), budget]
    # Step t (> 0) writes slot prompt_length + t - 1, so a stage ending at step e needs e slots.
    cache = _resize_cache(cache, copies, stage_ends[0], config)
    logits = jnp.repeat(logits, copies, axis=0)

    def per_row(x: jax.Array) -> jax.Array:
        return constrain(jnp.repeat(x, copies, axis=0), _ROW + (None,) * (x.ndim - 1),
                         config.sharding_rules)

    prompt_ids, budgets, stop_ids = (per_row(x) for x in (batch.prompt_ids, batch.budgets,
                                                         batch.stop_ids))
    samples = jnp.tile(jnp.arange(copies, dtype=jnp.uint32), prompts)
    row_keys = jax.vmap(lambda p, g: jax.random.fold_in(jax.random.fold_in(key, p), g))(
        prompt_ids, samples)

    def choose(state: _Decoding, logits: jax.Array) -> _Decoding:
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(row_keys, state.step)
        choice = choose_tokens(logits, keys, plan.sampling, plan.suppress)
        return _record(state, choice, budgets, stop_ids)

    start = _Decoding(
        cache=cache, step=jnp.zeros((), jnp.int32), last=jnp.zeros((rows,), jnp.int32),
        tokens=jnp.full((rows, budget), _FILL, jnp.int32),
        logprobs=jnp.zeros((3, rows, budget), jnp.float32),
        lengths=jnp.zeros((rows,), jnp.int32), stopped=jnp.zeros((rows,), bool),
        finished=budgets <= 0)
    first = choose(start, logits)

    def advance(state: _Decoding) -> _Decoding:
        logits, cache = model.decode_step(state.cache, state.last)
        return choose(state.replace(cache=cache), logits)

    final = first
    for stage, end in enumerate(stage_ends):
        if stage:
            grown = _resize_cache(final.cache, 1, end - stage_ends[stage - 1], config)
            final = final.replace(cache=grown)
        final = jax.lax.while_loop(
            lambda state, end=end: (state.step < end) & ~jnp.all(state.finished), advance, final)
    return dict(tokens=final.tokens, logprobs=final.logprobs, lengths=final.lengths,
                stopped=final.stopped, decode_steps=final.step - 1)


@dataclasses.dataclass
class PendingRollouts:
    """A dispatched rollout call: device arrays still computing; `result()` waits for them."""
    outputs: dict[str, jax.Array]
    prompt_ids: np.ndarray  # [P] the real prompts' ids
    group_size: int
    pad_id: int

    def result(self) -> Rollouts:
        host = {name: to_host(value) for name, value in self.outputs.items()}  # all processes
        rows = len(self.prompt_ids) * self.group_size  # padding prompts come last
        lengths = host["lengths"][:rows]
        width = max(int(lengths.max(initial=0)), 1)
        generated = np.arange(width)[None, :] < lengths[:, None]
        tokens = np.where(generated, host["tokens"][:rows, :width], self.pad_id)
        logprobs = host["logprobs"][:, :rows, :width]
        return Rollouts(
            prompt_ids=np.repeat(self.prompt_ids, self.group_size),
            sample_index=np.tile(np.arange(self.group_size), len(self.prompt_ids)),
            tokens=tokens, logprobs=logprobs[0], tempered_logprobs=logprobs[1],
            full_logprobs=logprobs[2], lengths=lengths,
            finish_reasons=tuple(FINISH_STOP if s else FINISH_LENGTH
                                 for s in host["stopped"][:rows]),
            decode_steps=int(host["decode_steps"]))


class Sampler:
    """Batched rollouts for a Qwen3-VL model (see the module docstring)."""

    def __init__(self, config: SamplerConfig, tokenizer: Qwen3Tokenizer, mesh: Mesh | None = None):
        self.config = config
        self.tokenizer = tokenizer
        self.mesh = mesh
        self.stop_token_ids = (tuple(tokenizer.special.eos) if config.stop_token_ids is None
                               else config.stop_token_ids)
        if len(self.stop_token_ids) > config.max_stop_tokens:
            raise SamplerError(f"{len(self.stop_token_ids)} default stop tokens do not fit "
                               f"max_stop_tokens={config.max_stop_tokens}; raise it.")
        self.pad_id = tokenizer.special.pad
        self._programs: dict[tuple, jax.stages.Compiled] = {}

    def __call__(self, model: Qwen3VL, prompts: Sequence[Prompt], key: jax.Array | int
                 ) -> Rollouts:
        return self.launch(model, prompts, key).result()

    def launch(self, model: Qwen3VL, prompts: Sequence[Prompt], key: jax.Array | int
               ) -> PendingRollouts:
        """Dispatch the rollout program and return at once (JAX runs it asynchronously)."""
        if isinstance(key, (int, np.integer)):
            key = jax.random.key(int(key))
        elif not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)  # a legacy uint32 key
        program, arrays = self._program(model, prompts)
        return PendingRollouts(program(*arrays, key), np.array([p.prompt_id for p in prompts]),
                               self.config.group_size, self.pad_id)

    def compile(self, model: Qwen3VL, prompts: Sequence[Prompt]) -> jax.stages.Compiled:
        """The program serving these prompts' buckets (compiled once, shared with `launch`), for
        capacity planning: `.memory_analysis()` gives per-device bytes (KV cache included)."""
        return self._program(model, prompts)[0]

    @property
    def compilations(self) -> int:
        """Programs compiled so far: one per (model structure, buckets, mesh placement)."""
        return len(self._programs)

    def _program(self, model: Qwen3VL, prompts: Sequence[Prompt]
                 ) -> tuple[jax.stages.Compiled, tuple[nnx.State, PromptBatch]]:
        """The compiled program for these inputs and its array arguments (on the mesh if any)."""
        if not prompts:
            raise SamplerError("no prompts were given. Fix: pass at least one Prompt.")
        graphdef, state = nnx.split(model)
        batch = self._batch(model.config, prompts)
        plan = self._plan(model.config)
        if self.mesh is not None:
            state = jax.device_put(state, state_shardings(state, self.mesh,
                                                          model.config.sharding_rules))
            batch = jax.device_put(batch, self._batch_shardings(batch, model.config))
        signature = (graphdef, plan, jax.tree.structure((state, batch)),
                     tuple((x.shape, x.dtype, getattr(x, "sharding", None))
                           for x in jax.tree.leaves((state, batch))))
        if signature not in self._programs:
            with self._mesh_context():
                self._programs[signature] = _rollout.lower(
                    graphdef, plan, state, batch, jax.random.key(0)).compile()
        return self._programs[signature], (state, batch)

    def lower(self, graphdef: nnx.GraphDef, state: nnx.State, prompts: int, prompt_length: int,
              image_slots: int, slot_patches: int) -> jax.stages.Lowered:
        """The rollout program for abstract parameters `state` (ShapeDtypeStructs with shardings)
        and `prompts` prompts of `prompt_length` tokens with one image slot of `slot_patches`
        patches each, lowered without allocating anything (ahead-of-time compilation)."""
        config = nnx.merge(graphdef, state).config
        spec = jax.ShapeDtypeStruct
        count = _round_up(prompts, math.lcm(self.config.prompt_multiple,
                                            self._batch_shards(config)))
        length = _round_up(prompt_length, self.config.prompt_bucket)
        patches = _round_up(slot_patches, math.lcm(self.config.patch_bucket,
                                                   config.vision.merge_unit))
        slots = _round_up(image_slots, count)
        vision = None if not image_slots else abstract_vision_inputs(
            config.vision, slots, patches, slots * patches // config.vision.merge_unit,
            config.jnp_dtype)
        batch = PromptBatch(
            input_ids=spec((count, length), np.int32), positions=spec((3, count, length), np.int32),
            mask=spec((count, length), bool), vision=vision, prompt_ids=spec((count,), np.uint32),
            budgets=spec((count,), np.int32),
            stop_ids=spec((count, self.config.max_stop_tokens), np.int32))
        if self.mesh is not None:
            batch = jax.tree.map(lambda x, sharding: spec(x.shape, x.dtype, sharding=sharding),
                                 batch, self._batch_shardings(batch, config))
        key = jax.eval_shape(lambda: jax.random.key(0))
        with self._mesh_context():
            return _rollout.lower(graphdef, self._plan(config), state, batch, key)

    def _plan(self, config: Qwen3VLConfig) -> _Plan:
        return _Plan(self.config.sampling, self._suppressed(config), self.config.group_size,
                     self.config.max_new_tokens, self.config.decode_chunk, self._decode_layout(),
                     self.mesh)

    def _mesh_context(self) -> contextlib.AbstractContextManager:
        """Activates the model's sharding constraints (no-ops without a mesh)."""
        return contextlib.nullcontext() if self.mesh is None else jax.set_mesh(self.mesh)

    # ------------------------------------------------------------------------------ host side
    def _decode_layout(self) -> bool:
        if self.config.decode_layout is not None:
            return self.config.decode_layout
        devices = jax.devices() if self.mesh is None else self.mesh.devices.flat
        return all(device.platform == "cpu" for device in devices)

    def _suppressed(self, config: Qwen3VLConfig) -> tuple[int, ...]:
        ids = self.config.suppress_token_ids
        ids = (config.image_token_id, config.video_token_id) if ids is None else ids
        bad = [i for i in ids if not 0 <= i < config.text.vocab_size]
        if bad:
            raise SamplerError(f"suppress_token_ids {bad} lie outside the vocabulary "
                               f"[0, {config.text.vocab_size}). Fix the sampler config.")
        return tuple(sorted(set(ids)))

    def _batch_shards(self, config: Qwen3VLConfig) -> int:
        """How many ways the mesh splits the prompt batch (1 without a mesh)."""
        if self.mesh is None:
            return 1
        sizes = dict(zip(self.mesh.axis_names, self.mesh.axis_sizes))
        spec = logical_to_spec(_ROW, config.sharding_rules, sizes)[0]
        axes = (spec,) if isinstance(spec, str) else tuple(spec or ())
        return math.prod(sizes[a] for a in axes)

    def _batch_shardings(self, batch: PromptBatch, config: Qwen3VLConfig) -> PromptBatch:
        sizes = dict(zip(self.mesh.axis_names, self.mesh.axis_sizes))

        def one(x: np.ndarray, row_axis: int) -> NamedSharding:
            names = [None] * x.ndim
            names[row_axis] = _ROW[0]
            return NamedSharding(self.mesh, logical_to_spec(names, config.sharding_rules, sizes,
                                                            x.shape))

        vision = None if batch.vision is None else vision_shardings(batch.vision, self.mesh,
                                                                    config.sharding_rules)
        return PromptBatch(
            input_ids=one(batch.input_ids, 0), positions=one(batch.positions, 1),
            mask=one(batch.mask, 0), vision=vision, prompt_ids=one(batch.prompt_ids, 0),
            budgets=one(batch.budgets, 0), stop_ids=one(batch.stop_ids, 0))

    def _checked(self, config: Qwen3VLConfig, prompt: Prompt) -> tuple[np.ndarray, int,
                                                                         tuple[int, ...]]:
        where = f"prompt {prompt.prompt_id}"
        ids = np.asarray(prompt.input_ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise SamplerError(f"{where}: input_ids must be a non-empty 1-D int array, got "
                               f"shape {ids.shape} dtype {ids.dtype}.")
        vocab = config.text.vocab_size
        if ids.min() < 0 or ids.max() >= vocab:
            raise SamplerError(f"{where}: token ids must lie in [0, {vocab}); got "
                               f"[{ids.min()}, {ids.max()}]. Fix: use this model's tokenizer.")
        if not (isinstance(prompt.prompt_id, (int, np.integer)) and 0 <= prompt.prompt_id < 2**32):
            raise SamplerError(f"{where}: prompt_id must be an int in [0, 2**32) (it seeds the "
                               f"prompt's random keys).")
        budget = self.config.max_new_tokens if prompt.max_new_tokens is None \
            else prompt.max_new_tokens
        if not 1 <= budget <= self.config.max_new_tokens:
            raise SamplerError(f"{where}: max_new_tokens={budget} must be in [1, "
                               f"{self.config.max_new_tokens}] (the sampler's static budget).")
        stops = self.stop_token_ids if prompt.stop_token_ids is None \
            else tuple(prompt.stop_token_ids)
        if len(stops) > self.config.max_stop_tokens:
            raise SamplerError(f"{where}: {len(stops)} stop tokens exceed max_stop_tokens="
                               f"{self.config.max_stop_tokens}; raise it in SamplerConfig.")
        return ids, budget, stops

    def _batch(self, config: Qwen3VLConfig, prompts: Sequence[Prompt]) -> PromptBatch:
        """Left-pad prompts to a bucket, pack their images in row order, pad the prompt count."""
        checked = [self._checked(config, p) for p in prompts]
        count = _round_up(len(prompts), math.lcm(self.config.prompt_multiple,
                                                 self._batch_shards(config)))
        length = _round_up(max(len(ids) for ids, _, _ in checked), self.config.prompt_bucket)
        input_ids = np.full((count, length), _FILL, np.int32)
        positions = np.zeros((3, count, length), np.int32)
        mask = np.zeros((count, length), bool)
        budgets = np.zeros(count, np.int32)
        stop_ids = np.full((count, self.config.max_stop_tokens), -1, np.int32)
        prompt_ids = np.zeros(count, np.uint32)
        pixels, grids = [], []
        for row, (prompt, (ids, budget, stops)) in enumerate(zip(prompts, checked)):
            grid = None if prompt.image_grid_thw is None else np.asarray(prompt.image_grid_thw)
            try:
                row_positions, _ = rope_index(ids[None], config, image_grid_thw=grid)
            except ValueError as err:
                raise SamplerError(f"prompt {prompt.prompt_id}: {err}") from err
            start = length - len(ids)
            input_ids[row, start:] = ids
            positions[:, row, start:] = row_positions[:, 0]
            mask[row, start:] = True
            budgets[row] = budget
            stop_ids[row, :len(stops)] = stops
            prompt_ids[row] = prompt.prompt_id
            if grid is not None:
                if prompt.pixel_values is None:
                    raise SamplerError(f"prompt {prompt.prompt_id}: image_grid_thw is given but "
                                       f"pixel_values is not. Fix: pass both (processor output).")
                pixels.append(np.asarray(prompt.pixel_values, np.float32))
                grids.append(grid)
            elif prompt.pixel_values is not None:
                raise SamplerError(f"prompt {prompt.prompt_id}: pixel_values without "
                                   f"image_grid_thw. Fix: pass both (processor output).")
        mask[len(prompts):, -1] = True  # padding prompts: one pad token, budget 0
        vision = None
        if grids:
            grid = np.concatenate(grids)
            slots = _round_up(len(grid), count)
            slot_patches = _round_up(int(grid.prod(axis=1).max()),
                                     math.lcm(self.config.patch_bucket, config.vision.merge_unit))
            try:
                vision = prepare_vision_inputs(
                    config.vision, pixel_values=np.concatenate(pixels), image_grid_thw=grid,
                    slots=slots, slot_patches=slot_patches,
                    tokens=slots * slot_patches // config.vision.merge_unit,
                    dtype=config.jnp_dtype)
            except ValueError as err:
                raise SamplerError(f"image inputs of prompts "
                                   f"{[p.prompt_id for p in prompts]}: {err}") from err
        return PromptBatch(input_ids=input_ids, positions=positions, mask=mask, vision=vision,
                           prompt_ids=prompt_ids, budgets=budgets, stop_ids=stop_ids)
