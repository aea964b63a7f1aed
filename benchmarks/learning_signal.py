"""Does the loop make a policy better? Visual-SDPO against GRPO, its ablations and OPSD, at toy
scale, from one warm start, on the synthetic chart tasks.

Each arm is a config (configs/toy_*.py, one knob from configs/toy_sdpo.py). Every run trains with
the same rollouts per step and steps, and is evaluated by the trainer on the same held-out tasks
(config.eval: the first 200 of synthetic:test, greedy) every few steps. GRPO's learning rate is
swept first on the *validation* split (never the test tasks), and its arm then runs at the best.
Runs go through the real entry point (`python -m sdpo_jax.main`) as subprocesses into
OUT/<run>/ and are resumable: a finished run (OUT/<run>/done.json) is never re-run, an
interrupted one continues from its last checkpoint.

    python benchmarks/learning_signal.py --out runs/signal   # from the bundled warm start
    python benchmarks/learning_signal.py --quick --out runs/signal_quick
    python benchmarks/learning_signal.py --warm_start runs/sft_toy/model --out runs/signal_own

Writes OUT/results.json (per arm and seed: eval curves and diagnostics), OUT/results.md (the
table), OUT/curves.png (defect-free rate against steps and against rollouts, mean and range
over seeds) and OUT/examples/ (Visual-SDPO seed 0's first flawed held-out attempts before
training and the same tasks after it, for notebooks/learning_signal.ipynb), and ends with one
JSON line: per arm the final defect-free rate (mean, min, max) and the rollouts Visual-SDPO
needs to reach GRPO's final rate, as a fraction of GRPO's rollouts.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from configs.default import WARM_START  # noqa: E402
from sdpo_jax.metrics import read_metrics  # noqa: E402

ARMS = ("sdpo", "grpo", "uniform_credit", "no_failed_exec_path", "text_feedback", "opsd")
HEADLINE = "eval/defect_free_rate"
DIAGNOSTICS = ("diag/logp_gap_blamed", "diag/logp_gap_rest", "diag/credit_mass_blamed",
               "diag/blamed_token_frac", "teacher/prompts_cut", "teacher/distill_rows",
               "reward/mean")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: an arm's config at a seed (and, for the GRPO sweep, a learning rate)."""

    arm: str
    seed: int
    overrides: tuple[str, ...] = ()
    tag: str = ""

    @property
    def name(self) -> str:
        return f"{self.arm}{self.tag}/seed_{self.seed}"


def train(run: Run, out: str, warm_start: str, common: tuple[str, ...]) -> str:
    """Run (or resume) one training; returns its workdir. Skipped when already finished."""
    workdir = os.path.join(out, run.name)
    if os.path.exists(os.path.join(workdir, "done.json")):
        print(f"[signal] {run.name}: finished earlier, kept", flush=True)
        return workdir
    os.makedirs(workdir, exist_ok=True)
    command = [sys.executable, "-m", "sdpo_jax.main", f"--config=configs/toy_{run.arm}.py",
               f"--workdir={workdir}", f"--config.seed={run.seed}",
               f"--config.model.checkpoint={warm_start}", *common, *run.overrides]
    print(f"[signal] {run.name}: {' '.join(command[2:])}", flush=True)
    start = time.perf_counter()
    with open(os.path.join(workdir, "train.log"), "a", encoding="utf-8") as log:
        code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"[signal] {run.name} failed (exit {code}); see {workdir}/train.log. "
                         f"Run the same command again to resume it.")
    with open(os.path.join(workdir, "done.json"), "w", encoding="utf-8") as f:
        json.dump({"seconds": time.perf_counter() - start, "command": command[2:]}, f)
    return workdir


def run_record(workdir: str) -> dict:
    """The eval curve (step, headline, every eval/* figure) and the mean of each diagnostic."""
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    evals = [{k: v for k, v in r.items() if k == "step" or k.startswith("eval/")}
             for r in rows if HEADLINE in r]
    trained = [r for r in rows if "loss/total" in r]
    diagnostics = {k: statistics.fmean(r[k] for r in trained if k in r)
                   for k in DIAGNOSTICS if any(k in r for r in trained)}
    return {"evals": evals, "diagnostics": diagnostics}


def final(records: list[dict], key: str = HEADLINE) -> list[float]:
    return [r["evals"][-1].get(key, 0.0) for r in records if r["evals"]]


def mean_curve(records: list[dict]) -> list[tuple[int, float, float, float]]:
    """(step, mean, min, max) of the headline over seeds, at the steps every seed evaluated."""
    steps = sorted(set.intersection(*[{e["step"] for e in r["evals"]} for r in records]))
    out = []
    for step in steps:
        values = [next(e[HEADLINE] for e in r["evals"] if e["step"] == step) for r in records]
        out.append((step, statistics.fmean(values), min(values), max(values)))
    return out


def rollouts_fraction(sdpo: list[dict], grpo: list[dict], grpo_steps: int) -> float | None:
    """Rollouts Visual-SDPO's mean curve needs to reach GRPO's final mean defect-free rate, over
    GRPO's rollouts: both arms sample the same rollouts per step, so it is the first evaluated
    step at or above that rate over GRPO's steps (None when never reached, and when GRPO ended
    no better than where it started: then there is nothing to reach)."""
    target = statistics.fmean(final(grpo))
    if target <= mean_curve(grpo)[0][1]:
        return None
    reached = next((step for step, mean, _, _ in mean_curve(sdpo) if mean >= target), None)
    return None if reached is None else reached / grpo_steps


def best_grpo_lr(records: dict[float, list[dict]]) -> float:
    """The learning rate whose GRPO runs end best on the validation split."""
    return max(records, key=lambda lr: statistics.fmean(final(records[lr])))


def table(results: dict[str, list[dict]], sweep: dict[float, float]) -> str:
    lines = ["| arm | seeds | defect-free (mean, min-max) | exec | reward | logp gap blamed / rest"
             " | credit mass on blamed | prompts cut |", "|---|---|---|---|---|---|---|---|"]
    for arm, records in results.items():
        free, execs, rewards = final(records), final(records, "eval/exec_rate"), final(
            records, "eval/reward")
        diag = {k: statistics.fmean(r["diagnostics"].get(k, 0.0) for r in records)
                for k in DIAGNOSTICS}
        lines.append(
            f"| {arm} | {len(records)} | {statistics.fmean(free):.3f} ({min(free):.3f}-"
            f"{max(free):.3f}) | {statistics.fmean(execs):.3f} | {statistics.fmean(rewards):.3f} "
            f"| {diag['diag/logp_gap_blamed']:.3f} / {diag['diag/logp_gap_rest']:.3f} | "
            f"{diag['diag/credit_mass_blamed']:.3f} | {diag['teacher/prompts_cut']:.3f} |")
    if sweep:
        lines.append("")
        lines.append("GRPO learning-rate sweep (validation split, final defect-free rate): "
                     + ", ".join(f"{lr:g}: {value:.3f}" for lr, value in sorted(sweep.items())))
    return "\n".join(lines)


def plot(results: dict[str, list[dict]], rollouts_per_step: int, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for arm, records in results.items():
        curve = mean_curve(records)
        steps = [c[0] for c in curve]
        for ax, scale in zip(axes, (1, rollouts_per_step)):
            xs = [s * scale for s in steps]
            ax.plot(xs, [c[1] for c in curve], marker="o", label=arm)
            ax.fill_between(xs, [c[2] for c in curve], [c[3] for c in curve], alpha=0.2)
    axes[0].set_xlabel("train step")
    axes[1].set_xlabel("rollouts")
    axes[0].set_ylabel("defect-free rate (held-out test tasks)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def export_examples(workdir: str, out: str, count: int = 4) -> list[str]:
    """Copy the first `count` held-out tasks whose attempt before training failed or had a defect
    (in task order: not chosen by how they ended) as out/<task>/before and /after (the last
    evaluation), each with its program, feedback, render and defect overlay."""
    from sdpo_jax.evaluation import item_folder  # imports jax: only when examples are exported
    evals = sorted(os.listdir(os.path.join(workdir, "eval")))
    first, last = (os.path.join(workdir, "eval", step) for step in (evals[0], evals[-1]))
    with open(os.path.join(first, "summary.json"), encoding="utf-8") as f:
        items = json.load(f)["items"]
    flawed = [item["task_id"] for item in items
              if item.get("sample", 0) == 0 and not item.get("defect_free")][:count]
    for task_id in flawed:
        for when, folder in (("before", first), ("after", last)):
            source = item_folder(folder, task_id, 0)
            target = os.path.join(out, os.path.basename(os.path.dirname(source)), when)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("revision"))
    return flawed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--warm_start", default=WARM_START,
                        help="an exported policy folder (default: the bundled warm start)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of sdpo and grpo")
    parser.add_argument("--ablation_seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, help="train steps (default: the arm config's)")
    parser.add_argument("--eval_count", type=int, help="held-out tasks (default: the config's 200)")
    parser.add_argument("--grpo_lrs", type=float, nargs="*", default=[3e-6, 1e-5, 3e-5])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every arm, e.g. optim.learning_rate=1e-5")
    parser.add_argument("--quick", action="store_true",
                        help="sdpo and grpo, one seed, 10 steps, 64 eval tasks, no sweep")
    args = parser.parse_args()
    common: tuple[str, ...] = ()
    if args.quick:
        args.arms, args.seeds, args.grpo_lrs = ["sdpo", "grpo"], 1, []
        args.steps = args.steps or 10
        common = ("--config.eval.every=5",)
        args.eval_count = args.eval_count or 64
    if args.eval_count:
        common += (f"--config.eval.count={args.eval_count}",)
    if args.steps:
        common += (f"--config.train.num_steps={args.steps}",)
    common += tuple(f"--config.{override}" for override in args.set)
    warm_start = args.warm_start
    if not os.path.isdir(warm_start):
        raise SystemExit(f"--warm_start {warm_start!r} is not a folder: train one with "
                         f"python -m sdpo_jax.main --config=configs/sft_toy.py --workdir=W, then "
                         f"pass W/model (or leave it out: the bundled warm start)")
    sweep: dict[float, float] = {}
    grpo_overrides: tuple[str, ...] = ()
    if "grpo" in args.arms and len(args.grpo_lrs) > 1:
        swept = {lr: [run_record(train(
            Run("grpo", 0, (f"--config.optim.learning_rate={lr}",
                            "--config.eval.path=synthetic:validation"), tag=f"_sweep_lr{lr:g}"),
            args.out, warm_start, common))] for lr in args.grpo_lrs}
        sweep = {lr: statistics.fmean(final(records)) for lr, records in swept.items()}
        grpo_overrides = (f"--config.optim.learning_rate={best_grpo_lr(swept)}",)
    results: dict[str, list[dict]] = {}
    for arm in args.arms:
        seeds = args.seeds if arm in ("sdpo", "grpo") else args.ablation_seeds
        overrides = grpo_overrides if arm == "grpo" else ()
        results[arm] = [run_record(train(Run(arm, seed, overrides), args.out, warm_start, common))
                        for seed in range(seeds)]

    from configs.toy_sdpo import get_config
    config = get_config()
    rollouts_per_step = config.rollout.prompts_per_step * config.rollout.group_size
    steps = args.steps or config.train.num_steps
    fraction = (rollouts_fraction(results["sdpo"], results["grpo"], steps)
                if {"sdpo", "grpo"} <= results.keys() else None)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"results": results, "grpo_sweep": sweep, "rollouts_per_step": rollouts_per_step,
                   "steps": steps, "rollouts_fraction": fraction}, f, indent=1)
    markdown = table(results, sweep)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown + "\n")
    plot(results, rollouts_per_step, os.path.join(args.out, "curves.png"))
    if "sdpo" in args.arms:
        export_examples(os.path.join(args.out, Run("sdpo", 0).name),
                        os.path.join(args.out, "examples"))
    print(markdown)
    arms = {arm: {"mean": statistics.fmean(final(r)), "min": min(final(r)), "max": max(final(r)),
                  "seeds": len(r)} for arm, r in results.items()}
    sdpo, grpo = arms.get("sdpo", {}).get("mean"), arms.get("grpo", {}).get("mean")
    print(json.dumps({"benchmark": "learning_signal", "ours": sdpo, "baseline": grpo,
                      "ratio": sdpo / grpo if sdpo is not None and grpo else None,
                      "unit": "defect-free rate",
                      "rollouts_fraction": fraction, "arms": arms, "steps": steps,
                      "rollouts_per_step": rollouts_per_step, "quick": args.quick}))


if __name__ == "__main__":
    main()
