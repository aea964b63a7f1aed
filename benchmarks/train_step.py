"""Train-loop throughput on the real chart env: overlapped rollouts vs a strictly sequential loop.

For each model (the toy default with its sentencepiece tokenizer, and the tiny size with the real
Qwen3 tokenizer) on the default's synthetic chart tasks, runs the real trainer
twice on the same tasks: `max_off_policy_lag=1` (ours: batch k+1 is sampled while batch k
renders) and `max_off_policy_lag=0` (baseline: sample, render, train, in turn). Reports the median
steady-state step time (the first step, which compiles, is left out), response tokens/s, the
time split, the share of wall-clock the device waits for the envs, and peak RSS.

    .venv/bin/python benchmarks/train_step.py [--steps 4]
Ends with one JSON line: ours = overlapped steps/s of the last model, baseline = sequential.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs.default import get_config  # noqa: E402
from sdpo_jax.metrics import read_metrics  # noqa: E402
from sdpo_jax.trainer import Trainer  # noqa: E402

MODELS = {"tiny": dict(size="tiny", tokenizer="qwen3"),
          "toy": dict(size="toy", tokenizer="synthetic_charts")}


def run(model: str, lag: int, steps: int) -> dict[str, float]:
    c = get_config()
    c.model.update(MODELS[model])
    c.eval.every = 0  # the loop's own throughput
    c.rollout.max_off_policy_lag = lag
    c.train.num_steps = steps
    c.train.checkpoint_every = steps
    with tempfile.TemporaryDirectory() as workdir:
        Trainer(c, workdir).run()
        rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))[1:]
    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    return {"step_s": med("time/step_s"), "tokens_per_s": med("throughput/response_tokens_per_s"),
            "sample_s": med("time/sample_s"), "env_wait_s": med("time/env_wait_s"),
            "train_s": med("time/train_s"), "env_wait_share": med("time/env_wait_share")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    results = {}
    for model in args.models:
        for name, lag in (("overlapped", 1), ("sequential", 0)):
            results[f"{model}/{name}"] = r = run(model, lag, args.steps)
            print(f"{model:5s} {name:10s}: {r['step_s']:.2f} s/step, {r['tokens_per_s']:.1f} "
                  f"response tok/s, sample {r['sample_s']:.2f} s, env wait {r['env_wait_s']:.2f} s "
                  f"({100 * r['env_wait_share']:.1f}% of the step), train {r['train_s']:.2f} s",
                  flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    main_model = args.models[-1]
    ours, base = results[f"{main_model}/overlapped"], results[f"{main_model}/sequential"]
    ratio = base["step_s"] / ours["step_s"]
    print(f"{main_model} model: overlapped loop {ratio:.2f}x the sequential loop's steps/s; "
          f"peak RSS {peak:.2f} GiB")
    print(json.dumps({"benchmark": "train_step", "model": main_model, "ours": 1 / ours["step_s"],
                      "baseline": 1 / base["step_s"], "ratio": ratio, "unit": "steps/s",
                      "env_wait_share": ours["env_wait_share"], "peak_rss_gib": peak,
                      "details": results}))


if __name__ == "__main__":
    main()
