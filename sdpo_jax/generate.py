"""Chat completion with a Qwen3-VL checkpoint, from the command line or from Python.

    python -m sdpo_jax.generate --checkpoint DIR --prompt TEXT [--image PATH]... [--system TEXT]
        [--max_new_tokens N] [--temperature T] [--top_p P] [--top_k K] [--seed S]
    python -m sdpo_jax.generate --demo      # a tiny RANDOM-weight model on a real chart image

DIR is a Hugging Face folder (config.json + safetensors) or a Flax checkpoint written by
`models.qwen3_vl.convert`. The prompt goes through the Qwen3-VL chat template and processor;
decoding runs a jitted prefill into the KV cache, then one jitted step per token, and stops at
`<|im_end|>` / `<|endoftext|>`. `--temperature 0` is greedy and reproduces transformers' greedy
`generate` token for token. This is the one-prompt path for people; batched rollouts for
training belong to the sampler. Must never touch the environments or the trainer.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import (
    PARAMS_DIR, DictSource, hf_shapes, load_flax_checkpoint, load_hf_checkpoint, load_params)
from models.qwen3_vl.kv_cache import KVCache
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.processor import ProcessedChat, Qwen3VLProcessor
from models.qwen3_vl.vision_inputs import prepare_vision_inputs

# Prompt lengths and patch counts are padded up to these multiples so that prompts of similar
# size share one compiled prefill.
_TOKEN_BUCKET = 64
_PATCH_BUCKET = 64


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How the next token is chosen (Qwen3-VL-Instruct's generation_config by default).

    temperature 0 means greedy (argmax); top_k 0 and top_p 1 switch those filters off.
    """

    temperature: float = 0.7
    top_k: int = 20
    top_p: float = 0.8

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 = greedy).")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be >= 0 (0 = no top-k filter).")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1] (1 = no nucleus filter).")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def sampling_candidates(logits: jax.Array, sampling: Sampling
                        ) -> tuple[jax.Array, jax.Array]:
    """The tokens a non-greedy draw may pick, as (logits [B, K], token ids [B, K]); filtered-out
    entries hold -inf. Same filters, in the same order, as transformers' warpers: temperature,
    top-k (exactly k: ties at the k-th logit are cut arbitrarily, where transformers keeps them),
    then top-p (the smallest most-likely set whose mass reaches top_p, at least one token).
    Top-k first keeps the nucleus sort to k entries instead of the whole vocabulary."""
    logits = logits / sampling.temperature
    vocab = logits.shape[-1]
    if 0 < sampling.top_k < vocab:
        candidates, token_ids = jax.lax.top_k(logits, sampling.top_k)
    elif sampling.top_p < 1:
        token_ids = jnp.argsort(-logits, axis=-1)
        candidates = jnp.take_along_axis(logits, token_ids, axis=-1)
    else:
        return logits, jnp.broadcast_to(jnp.arange(vocab), logits.shape)
    if sampling.top_p < 1:  # candidates are sorted, most likely first
        probs = jax.nn.softmax(candidates, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        keep = (mass_before < sampling.top_p).at[:, 0].set(True)
        candidates = jnp.where(keep, candidates, -jnp.inf)
    return candidates, token_ids


def choose_tokens(logits: jax.Array, key: jax.Array, sampling: Sampling) -> jax.Array:
    """Next token per row [B] from float32 logits [B, V]: argmax when greedy, else a draw
    from `sampling_candidates`."""
    if sampling.greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    candidates, token_ids = sampling_candidates(logits, sampling)
    choice = jax.random.categorical(key, candidates, axis=-1)
    return jnp.take_along_axis(token_ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Completion:
    token_ids: list[int]  # generated tokens, the stop token included when one was produced
    text: str  # decoded, special tokens skipped
    stopped: bool  # True if a stop token ended it, False if max_new_tokens did
    prompt_tokens: int
    seconds: float


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# Module-level so that models of one architecture (equal graphdefs) share the compiled code.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _prefill(graphdef: nnx.GraphDef, sampling: Sampling, state: nnx.State, cache: KVCache,
             input_ids, positions, mask, vision, key) -> tuple[jax.Array, KVCache]:
    logits, cache = nnx.merge(graphdef, state).prefill(cache, input_ids, positions, mask, vision)
    return choose_tokens(logits, key, sampling), cache


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=(3,))
def _decode_step(graphdef: nnx.GraphDef, sampling: Sampling, state: nnx.State, cache: KVCache,
                 tokens, key) -> tuple[jax.Array, KVCache]:
    logits, cache = nnx.merge(graphdef, state).decode_step(cache, tokens)
    return choose_tokens(logits, key, sampling), cache


class Generator:
    """A model + its processor; prompts run through the jitted prefill and decode step."""

    def __init__(self, model: Qwen3VL, processor: Qwen3VLProcessor):
        self.config: Qwen3VLConfig = model.config
        self.processor = processor
        self._graphdef, self._state = nnx.split(model)
        self.stop_ids = tuple(processor.tokenizer.special.eos)

    @classmethod
    def from_checkpoint(cls, folder: str, dtype: str = "float32") -> "Generator":
        config, model = load_checkpoint(folder, dtype)
        return cls(model, Qwen3VLProcessor.load(folder, config=config))

    def _prompt_arrays(self, prompt: ProcessedChat):
        """Right-padded [1, bucket] ids, mask, positions, and bucket-padded vision inputs."""
        length = len(prompt.input_ids)
        padded = _round_up(length, _TOKEN_BUCKET)
        ids = np.zeros((1, padded), np.int32)
        ids[0, :length] = prompt.input_ids
        mask = np.arange(padded)[None] < length
        positions = np.zeros((3, 1, padded), np.int32)
        positions[:, 0, :length] = prompt.position_ids
        vision = None
        if len(prompt.image_grid_thw):
            vision = prepare_vision_inputs(
                self.config.vision, pixel_values=prompt.pixel_values,
                image_grid_thw=prompt.image_grid_thw,
                pad_to=_round_up(len(prompt.pixel_values), _PATCH_BUCKET))
        return ids, mask, positions, vision

    def __call__(self, messages: Sequence[Mapping], *, max_new_tokens: int = 256,
                 sampling: Sampling = Sampling(), seed: int = 0) -> Completion:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1.")
        start = time.perf_counter()
        prompt = self.processor(messages, add_generation_prompt=True)
        ids, mask, positions, vision = self._prompt_arrays(prompt)
        capacity = _round_up(ids.shape[1] + max_new_tokens, _TOKEN_BUCKET)
        cache = KVCache.create(self.config, batch=1, capacity=capacity)
        key = jax.random.key(seed)
        tokens, cache = _prefill(self._graphdef, sampling, self._state, cache, ids, positions,
                                 mask, vision, jax.random.fold_in(key, 0))
        # Decoding continues after the padded prompt; padded slots stay masked out.
        generated = [int(tokens[0])]
        while generated[-1] not in self.stop_ids and len(generated) < max_new_tokens:
            tokens, cache = _decode_step(self._graphdef, sampling, self._state, cache, tokens,
                                         jax.random.fold_in(key, len(generated)))
            generated.append(int(tokens[0]))
        return Completion(
            token_ids=generated,
            text=self.processor.tokenizer.decode(generated, skip_special_tokens=True),
            stopped=generated[-1] in self.stop_ids, prompt_tokens=len(prompt.input_ids),
            seconds=time.perf_counter() - start)


def load_checkpoint(folder: str, dtype: str = "float32") -> tuple[Qwen3VLConfig, Qwen3VL]:
    """An HF folder or a Flax checkpoint folder, told apart by the `params/` orbax folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Checkpoint folder not found: {folder}. Fix: pass a Hugging Face Qwen3-VL folder "
            f"(config.json + *.safetensors) or a Flax checkpoint made by "
            f"`python -m models.qwen3_vl.convert hf-to-flax`.")
    if os.path.isdir(os.path.join(folder, PARAMS_DIR)):
        return load_flax_checkpoint(folder, dtype=dtype, param_dtype=dtype)
    return load_hf_checkpoint(folder, dtype=dtype, param_dtype=dtype)


def chat_messages(prompt: str, images: Sequence[str] = (), system: str | None = None
                  ) -> list[dict]:
    """A single user turn: the images first, then the prompt text (Qwen's usual order)."""
    missing = [path for path in images if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"Image file(s) not found: {', '.join(missing)}. "
                                f"Fix: check the --image paths.")
    content = [{"type": "image", "image": path} for path in images]
    content.append({"type": "text", "text": prompt})
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": content}]


# ------------------------------------------------------------------------------------ the demo
def demo_config() -> Qwen3VLConfig:
    """configs/model_sizes.py's tiny architecture widened to the real Qwen3 vocabulary and
    token ids, so the real tokenizer and processor drive it."""
    from configs import model_sizes

    tiny = model_sizes.get_config("tiny").to_dict()
    real = model_sizes.get_config("8b").to_dict()
    tiny["text_config"]["vocab_size"] = real["text_config"]["vocab_size"]
    for name in ("image_token_id", "video_token_id", "vision_start_token_id",
                 "vision_end_token_id"):
        tiny[name] = real[name]
    return Qwen3VLConfig.from_dict(tiny)


def render_demo_chart(folder: str) -> str:
    """A real matplotlib bar chart saved as PNG (what the chart task feeds the policy)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=50)
    ax.bar(["Q1", "Q2", "Q3", "Q4"], [3.1, 4.7, 2.2, 5.9], color="#4c72b0")
    ax.set_title("Revenue by quarter")
    ax.set_ylabel("USD (millions)")
    path = os.path.join(folder, "demo_chart.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def random_model(config: Qwen3VLConfig, seed: int = 0) -> Qwen3VL:
    """Random weights drawn like transformers' init (matrices N(0, initializer_range), norm
    scales 1, biases 0) in numpy, loaded through the checkpoint path: much faster on CPU than
    initialising the module eagerly op by op."""
    rng = np.random.default_rng(seed)
    std = config.text.initializer_range
    tensors = {}
    for name, shape in hf_shapes(config).items():
        if len(shape) > 1:
            tensors[name] = rng.normal(0.0, std, shape).astype(np.float32)
        else:  # every 1-D `.weight` is a norm scale, every `.bias` a bias
            tensors[name] = np.full(shape, float(name.endswith(".weight")), np.float32)
    return load_params(config, DictSource(tensors))


def run_demo(max_new_tokens: int = 24, seed: int = 0) -> Completion:
    """Generate from a freshly drawn tiny random model: exercises the whole path (chat
    template, image processor, vision tower, MRoPE, KV cache, sampling) in seconds."""
    config = demo_config()
    model = random_model(config, seed)
    generator = Generator(model, Qwen3VLProcessor(config))
    with tempfile.TemporaryDirectory() as folder:
        messages = chat_messages("Write the matplotlib code that reproduces this chart.",
                                 [render_demo_chart(folder)])
        return generator(messages, max_new_tokens=max_new_tokens, sampling=Sampling(), seed=seed)


# -------------------------------------------------------------------------------------- the CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sdpo_jax.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="HF folder or Flax checkpoint folder")
    parser.add_argument("--prompt", help="the user message")
    parser.add_argument("--image", action="append", default=[], help="image file (repeatable)")
    parser.add_argument("--system", default=None, help="optional system message")
    parser.add_argument("--max_new_tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=Sampling.temperature,
                        help="0 = greedy")
    parser.add_argument("--top_p", type=float, default=Sampling.top_p)
    parser.add_argument("--top_k", type=int, default=Sampling.top_k, help="0 = off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="parameter and compute dtype")
    parser.add_argument("--demo", action="store_true",
                        help="run a tiny RANDOM-weight model on a rendered chart (no checkpoint)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.demo:
            print("[demo] tiny random-weight Qwen3-VL (not a trained model: the text is noise); "
                  "real tokenizer, chat template, image processor and decoding.", file=sys.stderr)
            completion = run_demo(seed=args.seed)
        else:
            if not args.checkpoint or args.prompt is None:
                parser.error("--checkpoint and --prompt are required (or use --demo).")
            messages = chat_messages(args.prompt, args.image, args.system)
            sampling = Sampling(args.temperature, args.top_k, args.top_p)
            loaded = time.perf_counter()
            generator = Generator.from_checkpoint(args.checkpoint, args.dtype)
            print(f"[generate] loaded {args.checkpoint} in {time.perf_counter() - loaded:.1f}s",
                  file=sys.stderr)
            completion = generator(messages, max_new_tokens=args.max_new_tokens,
                                   sampling=sampling, seed=args.seed)
    except (OSError, ValueError) as err:  # incl. ConfigError, CheckpointError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(completion.text)
    ending = "stop token" if completion.stopped else "max_new_tokens"
    print(f"[generate] prompt {completion.prompt_tokens} tokens, generated "
          f"{len(completion.token_ids)} ({ending}) in {completion.seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
