"""Forward and forward+backward speed of the Flax Qwen3-VL against transformers eager, same
weights and inputs, on a small config with the full 151936-token vocabulary and one image.

    .venv/bin/python benchmarks/model_forward.py [--repeats 3] [--seq_tokens 512]

The input is what training sees: a real chart image in a user turn and a real ChartMimic
program as the assistant turn (teacher forcing), through our chat template and processor
(bit-equal to transformers'). "forward" is the full logits [1, L, V]; "forward+backward" is
the mean next-token cross-entropy and its gradient for every parameter. Baseline:
transformers 5.23.0 `Qwen3VLForConditionalGeneration`, eager attention, torch CPU, float32,
`labels=` loss + `.backward()`. Ours: the jitted Flax NNX model (compile time excluded and
reported separately). Each side runs in its own subprocess so its peak RSS (ru_maxrss) is its
own; the torch side writes the HF checkpoint that the JAX side loads. Medians are quoted, as
wall-clock tokens/s and as tokens per CPU-second of the process (the fair figure when other jobs
share the cores). Ends with one JSON line (headline: forward+backward wall tokens/s; ratio =
ours / baseline).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import peak_rss_mb, run_worker  # noqa: E402
from benchmarks.qwen3vl_bench import Timing, bench_config, timed  # noqa: E402
from envs.data_folder import data_file  # noqa: E402

PROGRAM_ID = "bar_30"  # a median-length bar-chart program (669 tokens)


def bench_inputs(folder: str, seq_tokens: int):
    """The processed chat (image + ChartMimic program), truncated to seq_tokens tokens."""
    import numpy as np

    from models.qwen3_vl.config import Qwen3VLConfig
    from models.qwen3_vl.processor import Qwen3VLProcessor
    from sdpo_jax.generate import render_demo_chart

    with open(data_file("chartmimic_direct_v1.jsonl"), encoding="utf-8") as f:
        program = next(item["code"] for item in map(json.loads, f) if item["id"] == PROGRAM_ID)
    config = Qwen3VLConfig.from_dict(bench_config())
    messages = [
        {"role": "user", "content": [{"type": "image", "image": render_demo_chart(folder)},
                                     {"type": "text", "text": "Write the matplotlib code."}]},
        {"role": "assistant", "content": f"```python\n{program}\n```"}]
    chat = Qwen3VLProcessor(config)(messages, add_generation_prompt=False)
    image_end = int(np.flatnonzero(chat.mm_token_type_ids).max()) + 2  # through <|vision_end|>
    if not image_end <= seq_tokens <= len(chat.input_ids):
        raise SystemExit(f"--seq_tokens={seq_tokens} must lie in [{image_end}, "
                         f"{len(chat.input_ids)}]: the whole image, at most the whole chat.")
    return config, chat, seq_tokens


def run_torch(folder: str, repeats: int, seq_tokens: int) -> dict:
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    config, chat, length = bench_inputs(folder, seq_tokens)
    hf_config = transformers.Qwen3VLConfig(**bench_config())
    hf_config._attn_implementation = "eager"
    hf_config.text_config._attn_implementation = "eager"
    hf_config.vision_config._attn_implementation = "eager"
    model = transformers.Qwen3VLForConditionalGeneration(hf_config)
    model.save_pretrained(os.path.join(folder, "hf"))
    ids = torch.as_tensor(chat.input_ids[None, :length].astype(np.int64))
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                  mm_token_type_ids=torch.as_tensor(chat.mm_token_type_ids[None, :length]),
                  pixel_values=torch.as_tensor(chat.pixel_values),
                  image_grid_thw=torch.as_tensor(chat.image_grid_thw))
    model.eval()
    result = {}
    with torch.no_grad():
        def forward():
            result["logits"] = model(**inputs).logits
        forward_timing = timed(forward, repeats)
    forward_rss = peak_rss_mb()
    model.train()  # dropout is 0 everywhere: train mode only turns on autograd bookkeeping

    def train_step():
        model.zero_grad(set_to_none=True)
        loss = model(**inputs, labels=ids).loss
        loss.backward()
        result["loss"] = float(loss)
    train_timing = timed(train_step, repeats)
    np.save(os.path.join(folder, "torch_logits.npy"), result["logits"][0, -8:].numpy())
    return dict(forward=dataclasses.asdict(forward_timing), train=dataclasses.asdict(train_timing),
                loss=result["loss"],
                forward_rss_mb=forward_rss, train_rss_mb=peak_rss_mb(), tokens=length)


def run_jax(folder: str, repeats: int, seq_tokens: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from models.qwen3_vl.convert import load_hf_checkpoint
    from models.qwen3_vl.vision_inputs import prepare_vision_inputs

    config, chat, length = bench_inputs(folder, seq_tokens)
    _, model = load_hf_checkpoint(os.path.join(folder, "hf"))
    graphdef, params = nnx.split(model, nnx.Param)
    ids = jnp.asarray(chat.input_ids[None, :length])
    positions = jnp.asarray(chat.position_ids[:, None, :length])
    vision = prepare_vision_inputs(config.vision, pixel_values=chat.pixel_values,
                                   image_grid_thw=chat.image_grid_thw)

    # Inputs are arguments, not closed-over constants: XLA would constant-fold the vision tower.
    @jax.jit
    def forward(params, ids, positions, vision):
        return nnx.merge(graphdef, params)(ids, positions, vision=vision)

    def loss_fn(params, ids, positions, vision):
        """Mean next-token cross-entropy, as transformers' `labels=` loss computes it."""
        logits = nnx.merge(graphdef, params)(ids, positions, vision=vision)[0, :-1]
        targets = jnp.take_along_axis(logits, ids[0, 1:, None], axis=-1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - targets)

    train_step = jax.jit(jax.value_and_grad(loss_fn))
    result = {}

    def run_forward():
        result["logits"] = jax.block_until_ready(forward(params, ids, positions, vision))

    def run_train():
        result["loss"], _ = jax.block_until_ready(train_step(params, ids, positions, vision))
    forward_timing = timed(run_forward, repeats)
    forward_rss = peak_rss_mb()
    train_timing = timed(run_train, repeats)
    np.save(os.path.join(folder, "jax_logits.npy"), np.asarray(result["logits"][0, -8:]))
    return dict(forward=dataclasses.asdict(forward_timing), train=dataclasses.asdict(train_timing),
                loss=float(result["loss"]),
                forward_rss_mb=forward_rss, train_rss_mb=peak_rss_mb(), tokens=length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--seq_tokens", type=int, default=512, help="sequence length")
    parser.add_argument("--worker", choices=("torch", "jax"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run = run_torch if args.worker == "torch" else run_jax
        print(json.dumps(run(args.folder, args.repeats, args.seq_tokens)))
        return

    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        argv = [f"--repeats={args.repeats}", f"--seq_tokens={args.seq_tokens}"]
        baseline = run_worker(os.path.abspath(__file__), "torch", folder, argv)
        ours = run_worker(os.path.abspath(__file__), "jax", folder, argv)
        logit_diff = float(np.abs(np.load(os.path.join(folder, "jax_logits.npy"))
                                  - np.load(os.path.join(folder, "torch_logits.npy"))).max())
    tokens = ours["tokens"]
    timings = {side: {phase: Timing(**r[phase]) for phase in ("forward", "train")}
               for side, r in (("ours", ours), ("baseline", baseline))}
    wall = {side: {phase: tokens / t.wall_median for phase, t in by_phase.items()}
            for side, by_phase in timings.items()}
    cpu = {side: {phase: tokens / t.cpu_median for phase, t in by_phase.items()}
           for side, by_phase in timings.items()}
    print(f"Qwen3-VL hidden 512, 8 layers, vocab 151936, one {tokens}-token chat with one image; "
          f"float32 on {os.cpu_count()} CPU cores (load average now {os.getloadavg()[0]:.1f}), "
          f"median of {args.repeats}")
    print(f"parity: max |logit diff| over the last 8 positions {logit_diff:.2e}; "
          f"loss ours {ours['loss']:.6f} vs transformers {baseline['loss']:.6f}")
    for phase, name in (("forward", "forward"), ("train", "forward+backward")):
        print(f"{name:>17}: ours {wall['ours'][phase]:8.1f} tok/s   transformers eager "
              f"{wall['baseline'][phase]:8.1f} tok/s   ratio "
              f"{wall['ours'][phase] / wall['baseline'][phase]:.2f}x   (per CPU-second: ours "
              f"{cpu['ours'][phase]:.1f}, transformers {cpu['baseline'][phase]:.1f}, ratio "
              f"{cpu['ours'][phase] / cpu['baseline'][phase]:.2f}x)   peak RSS ours "
              f"{ours[phase + '_rss_mb']:.0f} MB, transformers {baseline[phase + '_rss_mb']:.0f} MB")
    print(f"ours: first call (compile) forward {timings['ours']['forward'].first_s:.1f}s, "
          f"forward+backward {timings['ours']['train'].first_s:.1f}s")
    print(json.dumps({
        "benchmark": "model_forward", "ours": round(wall["ours"]["train"], 1),
        "baseline": round(wall["baseline"]["train"], 1),
        "ratio": round(wall["ours"]["train"] / wall["baseline"]["train"], 3),
        "unit": "tokens/s (forward+backward)",
        "baseline_name": "transformers 5.23.0 eager, torch CPU float32",
        "forward_ours": round(wall["ours"]["forward"], 1),
        "forward_baseline": round(wall["baseline"]["forward"], 1),
        "forward_ratio": round(wall["ours"]["forward"] / wall["baseline"]["forward"], 3),
        "cpu_ratio": round(cpu["ours"]["train"] / cpu["baseline"]["train"], 3),
        "forward_cpu_ratio": round(cpu["ours"]["forward"] / cpu["baseline"]["forward"], 3),
        "peak_rss_mb_ours": round(ours["train_rss_mb"]),
        "peak_rss_mb_baseline": round(baseline["train_rss_mb"]),
        "compile_s_ours": round(timings["ours"]["train"].first_s, 1),
        "max_logit_diff": logit_diff, "tokens": tokens}))


if __name__ == "__main__":
    main()
