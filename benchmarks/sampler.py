"""Rollout throughput: our sampler (sdpo_jax/sampler.py) against transformers' `generate`, on
the same weights, prompts and lengths, in one run.

    .venv/bin/python benchmarks/sampler.py [--prompts 4] [--samples 4] [--new_tokens 64]
        [--repeats 3] [--mode sample|greedy]

Model: Qwen3-VL-8B's architecture shrunk to hidden 512, 8 decoder layers (8 q / 4 kv heads) and a
4-block vision tower, keeping the full 151936-token vocabulary; random weights (transformers'
init, saved with `save_pretrained`, loaded by our converter). Prompts: `--prompts` chats, each a
real matplotlib chart image plus an instruction of a different length (so the batch is
left-padded), `--samples` rollouts each, every row forced to run its full `--new_tokens` budget
(no stop tokens) so both sides produce exactly the same number of tokens. `--mode sample` is
RL rollout sampling (temperature 1, no truncation); `--mode greedy` also checks that both sides
produce the same tokens.

Baseline: transformers 5.23.0 `Qwen3VLForConditionalGeneration.generate` (eager attention, torch
CPU float32, each prompt repeated G times as `num_return_sequences` does: it prefills every
copy). Ours: `Sampler` (float32, compile time excluded and reported; its CPU default
`decode_layout` holds one extra copy of the decoder weights and of the LM head, ~96 + 311 MB
here, made in every call and so inside the prefill time). Prefill time = a run with
max_new_tokens=1; decode time = full run - prefill run (medians of `--repeats`).
Decode tokens/s counts rows x (new_tokens - 1); prefill tokens/s counts the prompts' tokens once.
Each side runs in its own subprocess so its peak RSS is its own; ours also reports the compiled
program's per-device scratch bytes (KV cache included). Ends with one JSON line (headline: decode
tokens/s; ratio = ours / baseline).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import first_and_median, peak_rss_mb, run_worker  # noqa: E402
from benchmarks.qwen3vl_bench import bench_config  # noqa: E402

INSTRUCTIONS = [
    "Write the matplotlib code that reproduces this chart.",
    "You are an expert Python developer. Write a complete, self-contained matplotlib program "
    "that reproduces this chart exactly: the same chart type, data, texts, layout and colours.",
    "Reproduce the figure with matplotlib. Return only code.",
    "Look at the chart carefully and write Python code using matplotlib that draws the same bars, "
    "labels and title; keep every element inside the figure and do not let texts overlap.",
]


def bench_chats(folder: str, count: int):
    """`count` processed chats: one rendered chart, instructions of different lengths."""
    from models.qwen3_vl.config import Qwen3VLConfig
    from models.qwen3_vl.processor import Qwen3VLProcessor
    from sdpo_jax.generate import chat_messages, render_demo_chart

    chart = render_demo_chart(folder)
    processor = Qwen3VLProcessor(Qwen3VLConfig.from_dict(bench_config()))
    return [processor(chat_messages(INSTRUCTIONS[i % len(INSTRUCTIONS)], [chart]))
            for i in range(count)]


def run_torch(folder: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    # Each prompt repeated G times (prompt-major, like our rows), which is what
    # `num_return_sequences` does before prefill; greedy generate refuses that argument.
    chats = [c for c in bench_chats(folder, args.prompts) for _ in range(args.samples)]
    hf_config = transformers.Qwen3VLConfig(**bench_config())
    for part in (hf_config, hf_config.text_config, hf_config.vision_config):
        part._attn_implementation = "eager"
    model = transformers.Qwen3VLForConditionalGeneration(hf_config).eval()
    model.save_pretrained(os.path.join(folder, "hf"))
    length = max(len(c.input_ids) for c in chats)
    ids = np.zeros((len(chats), length), np.int64)  # left-padded, like our sampler
    mask = np.zeros_like(ids)
    for row, chat in enumerate(chats):
        ids[row, length - len(chat.input_ids):] = chat.input_ids
        mask[row, length - len(chat.input_ids):] = 1
    inputs = dict(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                  mm_token_type_ids=torch.from_numpy((ids == hf_config.image_token_id).astype(
                      np.int64)),
                  pixel_values=torch.from_numpy(np.concatenate([c.pixel_values for c in chats])),
                  image_grid_thw=torch.from_numpy(np.concatenate([c.image_grid_thw
                                                                  for c in chats])))
    options = dict(do_sample=args.mode == "sample", eos_token_id=None, pad_token_id=151643)
    if args.mode == "sample":
        options.update(temperature=1.0, top_k=0, top_p=1.0)
    result = {}

    def generate(new_tokens: int):
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 **options)
        result["tokens"] = out[:, length:].numpy()

    _, prefill = first_and_median(lambda: generate(1), args.repeats)
    _, full = first_and_median(lambda: generate(args.new_tokens), args.repeats)
    assert result["tokens"].shape == (args.prompts * args.samples, args.new_tokens)
    np.save(os.path.join(folder, "torch_tokens.npy"), result["tokens"])
    return dict(prefill_s=prefill, full_s=full, rss_mb=peak_rss_mb(),
                prompt_tokens=int(sum(len(c.input_ids) for c in chats[::args.samples])))


def run_jax(folder: str, args: argparse.Namespace) -> dict:
    import numpy as np

    from models.qwen3_vl.convert import load_hf_checkpoint
    from models.qwen3_vl.tokenizer import Qwen3Tokenizer
    from sdpo_jax.sampler import Prompt, Sampler, SamplerConfig
    from sdpo_jax.sampling import Sampling

    chats = bench_chats(folder, args.prompts)
    _, model = load_hf_checkpoint(os.path.join(folder, "hf"))
    prompts = [Prompt.from_chat(i, chat) for i, chat in enumerate(chats)]
    sampling = Sampling(1.0, 0, 1.0) if args.mode == "sample" else Sampling(temperature=0)
    tokenizer = Qwen3Tokenizer.load()

    def sampler(new_tokens: int) -> Sampler:
        return Sampler(SamplerConfig(group_size=args.samples, max_new_tokens=new_tokens,
                                     sampling=sampling, stop_token_ids=(), suppress_token_ids=(),
                                     prompt_bucket=64, patch_bucket=256), tokenizer)

    short, long = sampler(1), sampler(args.new_tokens)
    result = {}

    def run(which: Sampler):
        result["rollouts"] = which(model, prompts, key=0)

    prefill_first, prefill = first_and_median(lambda: run(short), args.repeats)
    full_first, full = first_and_median(lambda: run(long), args.repeats)
    rollouts = result["rollouts"]
    assert rollouts.tokens.shape == (args.prompts * args.samples, args.new_tokens)
    np.save(os.path.join(folder, "jax_tokens.npy"), rollouts.tokens)
    memory = long.compile(model, prompts).memory_analysis()
    return dict(prefill_s=prefill, full_s=full, rss_mb=peak_rss_mb(),
                compile_s=prefill_first - prefill + full_first - full,
                temp_mb=memory.temp_size_in_bytes / 2**20,
                prompt_tokens=int(sum(len(c.input_ids) for c in chats)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4, help="rollouts per prompt (G)")
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--mode", choices=("sample", "greedy"), default="sample")
    parser.add_argument("--worker", choices=("torch", "jax"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.prompts, args.samples, args.repeats) < 1 or args.new_tokens < 2:
        parser.error("--prompts, --samples and --repeats must be >= 1, --new_tokens >= 2.")
    if args.worker:
        run = run_torch if args.worker == "torch" else run_jax
        print(json.dumps(run(args.folder, args)))
        return

    import numpy as np

    argv = [f"--prompts={args.prompts}", f"--samples={args.samples}",
            f"--new_tokens={args.new_tokens}", f"--repeats={args.repeats}", f"--mode={args.mode}"]
    with tempfile.TemporaryDirectory() as folder:
        baseline = run_worker(os.path.abspath(__file__), "torch", folder, argv)
        ours = run_worker(os.path.abspath(__file__), "jax", folder, argv)
        same = np.load(os.path.join(folder, "jax_tokens.npy")) == np.load(
            os.path.join(folder, "torch_tokens.npy"))
    rows = args.prompts * args.samples
    rate = {}
    for side, r in (("ours", ours), ("baseline", baseline)):
        rate[side] = dict(decode=rows * (args.new_tokens - 1) / (r["full_s"] - r["prefill_s"]),
                          prefill=r["prompt_tokens"] / r["prefill_s"])
    print(f"Qwen3-VL hidden 512, 8 layers, vocab 151936; {args.prompts} chart prompts "
          f"({ours['prompt_tokens']} prompt tokens) x {args.samples} samples x "
          f"{args.new_tokens} new tokens, mode {args.mode}; float32 on {os.cpu_count()} CPU "
          f"cores, median of {args.repeats}")
    for phase in ("decode", "prefill"):
        print(f"{phase:>8}: ours {rate['ours'][phase]:8.1f} tok/s   transformers generate "
              f"{rate['baseline'][phase]:8.1f} tok/s   ratio "
              f"{rate['ours'][phase] / rate['baseline'][phase]:.2f}x")
    print(f"whole rollout: ours {ours['full_s']:.2f}s, transformers {baseline['full_s']:.2f}s; "
          f"peak RSS ours {ours['rss_mb']:.0f} MB, transformers {baseline['rss_mb']:.0f} MB; "
          f"our program's scratch {ours['temp_mb']:.0f} MB; our compile {ours['compile_s']:.1f}s")
    if args.mode == "greedy":
        print(f"greedy tokens equal to transformers': {same.mean():.1%} of positions, "
              f"{same.all(axis=1).mean():.0%} of rows")
    print(json.dumps({
        "benchmark": "sampler_decode", "ours": round(rate["ours"]["decode"], 1),
        "baseline": round(rate["baseline"]["decode"], 1),
        "ratio": round(rate["ours"]["decode"] / rate["baseline"]["decode"], 3),
        "unit": "decode tokens/s",
        "baseline_name": "transformers 5.23.0 generate, eager, torch CPU float32",
        "prefill_ours": round(rate["ours"]["prefill"], 1),
        "prefill_baseline": round(rate["baseline"]["prefill"], 1),
        "prefill_ratio": round(rate["ours"]["prefill"] / rate["baseline"]["prefill"], 3),
        "rollout_s_ours": round(ours["full_s"], 3), "rollout_s_baseline": round(baseline["full_s"], 3),
        "peak_rss_mb_ours": round(ours["rss_mb"]), "peak_rss_mb_baseline": round(baseline["rss_mb"]),
        "mode": args.mode, "rows": rows, "new_tokens": args.new_tokens,
        "greedy_rows_equal": float(same.all(axis=1).mean()) if args.mode == "greedy" else None}))


if __name__ == "__main__":
    main()
