"""Chat completion with a Qwen3-VL checkpoint, from the command line or from Python.

    python -m sdpo_jax.generate --checkpoint DIR --prompt TEXT [--image PATH]... [--system TEXT]
        [--max_new_tokens N] [--temperature T] [--top_p P] [--top_k K] [--seed S]
    python -m sdpo_jax.generate --demo      # a tiny RANDOM-weight model on a real chart image

DIR is a Hugging Face folder (config.json + safetensors) or a Flax checkpoint written by
`models.qwen3_vl.convert`. The prompt goes through the Qwen3-VL chat template and processor,
then through the rollout sampler (sdpo_jax/sampler.py: jitted prefill into the KV cache and a
jitted decode loop) with one sample, stopping at `<|im_end|>` / `<|endoftext|>`.
`--temperature 0` is greedy and reproduces transformers' greedy `generate` token for token.
This is the one-prompt path for people; it must never touch the environments or the trainer.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

import numpy as np

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import DictSource, hf_shapes, load_params
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.processor import Qwen3VLProcessor
from sdpo_jax.model_loading import load_model, size_config
from sdpo_jax.sampler import FINISH_STOP, Prompt, Sampler, SamplerConfig
from sdpo_jax.sampling import Sampling

_DEFAULT_NEW_TOKENS = 256
_DEMO_NEW_TOKENS = 24


@dataclasses.dataclass(frozen=True)
class Completion:
    token_ids: list[int]  # generated tokens, the stop token included when one was produced
    text: str  # decoded, special tokens skipped
    stopped: bool  # True if a stop token ended it, False if max_new_tokens did
    prompt_tokens: int
    seconds: float


class Generator:
    """A model + its processor: one chat in, one completion out, through the rollout sampler."""

    def __init__(self, model: Qwen3VL, processor: Qwen3VLProcessor):
        self.model = model
        self.processor = processor

    @classmethod
    def from_checkpoint(cls, folder: str, dtype: str = "float32") -> "Generator":
        config, model = load_model(folder, dtype=dtype, param_dtype=dtype)
        return cls(model, Qwen3VLProcessor.load(folder, config=config))

    def __call__(self, messages: Sequence[Mapping], *, max_new_tokens: int = _DEFAULT_NEW_TOKENS,
                 sampling: Sampling = Sampling(), seed: int = 0) -> Completion:
        start = time.perf_counter()
        chat = self.processor(messages, add_generation_prompt=True)
        sampler = Sampler(SamplerConfig(max_new_tokens=max_new_tokens, sampling=sampling),
                          self.processor.tokenizer)
        rollouts = sampler(self.model, [Prompt.from_chat(0, chat)], key=seed)
        length = int(rollouts.lengths[0])
        return Completion(
            token_ids=rollouts.tokens[0, :length].tolist(),
            text=self.processor.tokenizer.decode(rollouts.tokens[0, :length],
                                                 skip_special_tokens=True),
            stopped=rollouts.finish_reasons[0] == FINISH_STOP,
            prompt_tokens=len(chat.input_ids), seconds=time.perf_counter() - start)


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


def run_demo(max_new_tokens: int = _DEMO_NEW_TOKENS, sampling: Sampling = Sampling(),
             seed: int = 0) -> Completion:
    """Generate from a freshly drawn tiny random model: exercises the whole path (chat
    template, image processor, vision tower, MRoPE, KV cache, sampling) in seconds."""
    config = size_config("tiny")  # real vocabulary and token ids
    model = random_model(config, seed)
    generator = Generator(model, Qwen3VLProcessor(config))
    with tempfile.TemporaryDirectory() as folder:
        messages = chat_messages("Write the matplotlib code that reproduces this chart.",
                                 [render_demo_chart(folder)])
        return generator(messages, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed)


# -------------------------------------------------------------------------------------- the CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sdpo_jax.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="HF folder or Flax checkpoint folder")
    parser.add_argument("--prompt", help="the user message")
    parser.add_argument("--image", action="append", default=[], help="image file (repeatable)")
    parser.add_argument("--system", default=None, help="optional system message")
    parser.add_argument("--max_new_tokens", type=int, default=None,
                        help=f"generation budget (default {_DEFAULT_NEW_TOKENS}; "
                             f"{_DEMO_NEW_TOKENS} for --demo)")
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
    if not args.demo and (not args.checkpoint or args.prompt is None):
        parser.error("--checkpoint and --prompt are required (or use --demo).")
    budget = args.max_new_tokens
    if budget is None:
        budget = _DEMO_NEW_TOKENS if args.demo else _DEFAULT_NEW_TOKENS
    try:
        if budget < 1:
            raise ValueError(f"--max_new_tokens={budget} must be >= 1.")
        sampling = Sampling(args.temperature, args.top_k, args.top_p)
        if args.demo:
            print("[demo] tiny random-weight Qwen3-VL (not a trained model: the text is noise); "
                  "real tokenizer, chat template, image processor and decoding.", file=sys.stderr)
            completion = run_demo(max_new_tokens=budget, sampling=sampling, seed=args.seed)
        else:
            messages = chat_messages(args.prompt, args.image, args.system)
            loaded = time.perf_counter()
            generator = Generator.from_checkpoint(args.checkpoint, args.dtype)
            print(f"[generate] loaded {args.checkpoint} in {time.perf_counter() - loaded:.1f}s",
                  file=sys.stderr)
            completion = generator(messages, max_new_tokens=budget, sampling=sampling,
                                   seed=args.seed)
    except (OSError, ValueError) as err:  # incl. ConfigError, CheckpointError, SamplerError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(completion.text)
    ending = "stop token" if completion.stopped else "max_new_tokens"
    print(f"[generate] prompt {completion.prompt_tokens} tokens, generated "
          f"{len(completion.token_ids)} ({ending}) in {completion.seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
