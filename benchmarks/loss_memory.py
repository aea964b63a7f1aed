"""Memory and time of the fused SDPO + GRPO loss against the naive full-logits one (same run).

1. Memory at Qwen3-VL-8B shapes (hidden 4096, vocab 151936, 4 x 1024 = 4096 response tokens):
   the compiler's own accounting (`jax.jit(...).lower(...).compile().memory_analysis()`) of
   loss + gradient (w.r.t. hidden states and LM head), lowered from ShapeDtypeStructs so nothing
   is allocated. Rows: every distillation support with bf16 hidden states and head, and the full
   divergence with a float32 (master-weight) head, as the model's default param_dtype keeps it.
   Headline target: one chip of a TPU slice (`--tpu v5p-8`, libtpu's compile-only devices, as
   `python -m sdpo_jax.aot` uses), where the loss runs; the same rows on XLA:CPU follow, labelled
   (XLA:CPU has no bf16 slicing and converts a sliced bf16 head to a whole float32 copy).
2. Time at a size that fits this machine (real vocabulary, smaller hidden and token count), the
   two implementations alternating so load from other processes hits both alike; median of N.

    python benchmarks/loss_memory.py [--repeats 5] [--time-tokens 2x64] [--time-hidden 512]

Ends with one JSON line; "ours"/"baseline" are the TPU-target 8B bf16 temp bytes of the
full-vocabulary JSD + GRPO objective (SDPO's default divergence), "time_ratio" fused / naive
seconds for it ("timings" has every support; "cpu_rows" the XLA:CPU memory rows).
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import SingleDeviceSharding

from sdpo_jax.aot import compile_only_devices, libtpu_topology
from sdpo_jax.losses import LossBatch, LossConfig, reference_loss, sdpo_loss

IMPLEMENTATIONS = {"fused": sdpo_loss, "naive": reference_loss}
HIDDEN_8B, VOCAB = 4096, 151936


def config_for(support: str, **changes) -> LossConfig:
    """The benchmarked objective: a distillation support + beta * GRPO with an IS clip."""
    return LossConfig(distill_support=support, distill_alpha=1.0 if support == "sampled_token" else 0.5,
                      beta=0.1, distill_is_clip=2.0, topk=100, **changes)


def loss_and_grads(impl: str, config: LossConfig):
    loss_fn = IMPLEMENTATIONS[impl]

    def run(student, teacher, head, batch):
        grad_fn = jax.value_and_grad(lambda s, h: loss_fn(s, teacher, h, batch, config),
                                     argnums=(0, 1), has_aux=True)
        return grad_fn(student, head)
    return jax.jit(run)


def abstract_inputs(batch_size: int, length: int, hidden: int, vocab: int, act_dtype, head_dtype,
                    sharding=None):
    spec = functools.partial(jax.ShapeDtypeStruct, sharding=sharding)
    per_token = lambda dtype=jnp.float32: spec((batch_size, length), dtype)
    batch = LossBatch(tokens=per_token(jnp.int32), mask=per_token(), credit=per_token(),
                      old_logprobs=per_token(), rewards=spec((batch_size,), jnp.float32),
                      group_ids=spec((batch_size,), jnp.int32))
    return (spec((batch_size, length, hidden), act_dtype), spec((batch_size, length, hidden), act_dtype),
            spec((hidden, vocab), head_dtype), batch)


def compiled_bytes(impl: str, config: LossConfig, inputs) -> dict[str, int]:
    compiled = loss_and_grads(impl, config).lower(*inputs).compile()
    analysis = compiled.memory_analysis()
    hidden, vocab = inputs[2].shape
    # XLA:CPU has no bf16 slicing: it converts a sliced bf16 head to a whole float32 copy.
    upcast = inputs[2].dtype == jnp.bfloat16 and f"f32[{hidden},{vocab}]" in compiled.as_text()
    return {"temp": analysis.temp_size_in_bytes, "peak": analysis.temp_size_in_bytes
            + analysis.argument_size_in_bytes + analysis.output_size_in_bytes,
            "head_upcast_bytes": hidden * vocab * 4 if upcast else 0}


def memory_rows(chunk_size: int, vocab_chunk_size: int, target: str, device=None) -> list[dict]:
    """Fused vs naive compiled bytes on `device` (None: this host's CPU)."""
    rows = []
    sharding = None if device is None else SingleDeviceSharding(device)
    settings = [(s, jnp.bfloat16) for s in ("full", "topk", "sampled_token")] + [("full", jnp.float32)]
    for support, head_dtype in settings:
        config = config_for(support, chunk_size=chunk_size, vocab_chunk_size=vocab_chunk_size)
        inputs = abstract_inputs(4, 1024, HIDDEN_8B, VOCAB, jnp.bfloat16, head_dtype, sharding)
        fused, naive = (compiled_bytes(impl, config, inputs) for impl in ("fused", "naive"))
        rows.append({"support": support, "head": jnp.dtype(head_dtype).name, "fused": fused,
                     "naive": naive, "ratio": fused["temp"] / naive["temp"]})
        upcast = (f"; of fused temp, {fused['head_upcast_bytes'] / 2**30:.2f} GiB is a float32 "
                  f"copy of the bf16 head" if fused["head_upcast_bytes"] else "")
        print(f"{target} 8B {support:>13} bf16 hidden, {jnp.dtype(head_dtype).name:>8} head: temp fused "
              f"{fused['temp'] / 2**30:6.2f} GiB  naive {naive['temp'] / 2**30:6.2f} GiB  "
              f"ratio {rows[-1]['ratio']:.4f} (1/{1 / rows[-1]['ratio']:.1f}); peak incl. args+outputs "
              f"fused {fused['peak'] / 2**30:.2f} GiB naive {naive['peak'] / 2**30:.2f} GiB{upcast}",
              flush=True)
    return rows


def real_inputs(batch_size: int, length: int, hidden: int, vocab: int):
    rng = np.random.default_rng(0)
    normal = lambda *shape, scale=1.0: jnp.asarray(rng.standard_normal(shape) * scale, jnp.float32)
    batch = LossBatch(
        tokens=jnp.asarray(rng.integers(0, vocab, (batch_size, length)), jnp.int32),
        mask=jnp.ones((batch_size, length)), credit=jnp.asarray(rng.uniform(0.5, 2, (batch_size, length)),
                                                                jnp.float32),
        old_logprobs=jnp.full((batch_size, length), -np.log(vocab), jnp.float32),
        rewards=jnp.asarray(rng.random(batch_size), jnp.float32),
        group_ids=jnp.zeros(batch_size, jnp.int32))
    return (normal(batch_size, length, hidden), normal(batch_size, length, hidden),
            normal(hidden, vocab, scale=1 / np.sqrt(hidden)), batch)


def time_both(config: LossConfig, inputs, repeats: int) -> dict[str, dict]:
    functions = {impl: loss_and_grads(impl, config) for impl in IMPLEMENTATIONS}
    results = {impl: {"seconds": []} for impl in IMPLEMENTATIONS}
    for impl, fn in functions.items():
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*inputs))
        results[impl]["compile_and_first_s"] = time.perf_counter() - start
        results[impl]["loss"] = float(out[0][0])
        results[impl]["peak"] = compiled_bytes(impl, config, inputs)["peak"]
    for _ in range(repeats):
        for impl, fn in functions.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*inputs))
            results[impl]["seconds"].append(time.perf_counter() - start)
    for impl, result in results.items():
        result["median_s"] = statistics.median(result["seconds"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--time-tokens", default="2x64", help="BATCHxLENGTH for the timing runs")
    parser.add_argument("--time-supports", default="full,topk,sampled_token")
    parser.add_argument("--time-hidden", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=16, help="LossConfig.chunk_size")
    parser.add_argument("--vocab-chunk-size", type=int, default=4096)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--tpu", default="v5p-8", help="TPU target of the memory rows (sdpo_jax.aot "
                        "topology names)")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}", flush=True)

    rows, cpu_rows = [], []
    if not args.skip_memory:
        generation, topology = libtpu_topology(args.tpu)
        rows = memory_rows(args.chunk_size, args.vocab_chunk_size, f"{generation} TPU",
                           compile_only_devices(topology)[0])
        cpu_rows = memory_rows(args.chunk_size, args.vocab_chunk_size, "XLA:CPU")

    batch_size, length = (int(x) for x in args.time_tokens.split("x"))
    inputs = real_inputs(batch_size, length, args.time_hidden, VOCAB)
    timings = {}
    for support in args.time_supports.split(","):
        config = config_for(support, chunk_size=args.chunk_size, vocab_chunk_size=args.vocab_chunk_size)
        timing = time_both(config, inputs, args.repeats)
        fused, naive = timing["fused"], timing["naive"]
        loss_err = abs(fused["loss"] - naive["loss"]) / max(1.0, abs(naive["loss"]))
        timings[support] = {"fused_s": fused["median_s"], "naive_s": naive["median_s"],
                            "ratio": fused["median_s"] / naive["median_s"],
                            "fused_peak": fused["peak"], "naive_peak": naive["peak"]}
        print(f"time {support:>13} + GRPO at B={batch_size} T={length} H={args.time_hidden} V={VOCAB} "
              f"float32, median of {args.repeats} alternating: fused {fused['median_s']:.2f} s, naive "
              f"{naive['median_s']:.2f} s, ratio {timings[support]['ratio']:.3f}; compiled peak fused "
              f"{fused['peak'] / 2**20:.0f} MiB, naive {naive['peak'] / 2**20:.0f} MiB; loss relative "
              f"difference {loss_err:.1e}", flush=True)

    headline = next((r for r in rows if r["support"] == "full" and r["head"] == "bfloat16"), None)
    def summary(rows: list[dict]) -> list[dict]:
        return [{k: r[k] for k in ("support", "head", "ratio")} | {
            "fused_temp": r["fused"]["temp"], "naive_temp": r["naive"]["temp"],
            "fused_head_upcast": r["fused"]["head_upcast_bytes"]} for r in rows]

    record = {"benchmark": "loss_memory",
              "ours": headline["fused"]["temp"] if headline else None,
              "baseline": headline["naive"]["temp"] if headline else None,
              "ratio": headline["ratio"] if headline else None,
              "unit": f"bytes (compiled temp, 8B, bf16, {args.tpu} chip)",
              "rows": summary(rows), "cpu_rows": summary(cpu_rows),
              "time_ratio": timings.get("full", {}).get("ratio"), "timings": timings,
              "time_shape": [batch_size, length, args.time_hidden, VOCAB]}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
