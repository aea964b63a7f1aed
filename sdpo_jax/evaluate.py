"""Evaluate a policy on held-out tasks or a benchmark: sample, judge, and write what happened.

    python -m sdpo_jax.evaluate --config=configs/sft_toy.py --checkpoint=runs/sft_toy/model \
        --data=synthetic:test:200 --out=runs/sft_toy/test [--samples=1 --temperature=0] \
        [--with_feedback] [--config.key=value ...]
    python -m sdpo_jax.evaluate --config=configs/default.py --benchmark=chartmimic \
        --candidate=reference --out=runs/bench/chartmimic_reference \
        [--judge-url=URL --judge-model=NAME [--judge-key-env=VAR]] [--clip-model=DIR]

The config gives the architecture, tokenizer, env settings (config.env: workers, time-out) and
the teacher context (for --with_feedback); --checkpoint is a checkpoint folder (a run's exported
workdir/model, a Flax or a Hugging Face folder; default: the config's model.checkpoint). --data
is a data source (a JSONL file in --format, or synthetic:<split>[:<count>]); the first --count
tasks are used. --benchmark chartmimic|design2code|aeslides reads the benchmark's file of the
data folder (or --data), shows the student the reference's render, and adds the paper's columns
(sdpo_jax.benchmark_scores): High only with a judge (any OpenAI-compatible endpoint; its key
from the environment variable --judge-key-env), CLIP only with --clip-model. --candidate=reference
scores the tasks' own references instead of a model: the ceiling.

Writes per attempt its program, render, defect overlay, feedback and row (scores.json, last),
then summary.json and summary.md (sdpo_jax.evaluation) in --out; prints the table and ends with
one JSON line. Run again with the same flags and it resumes: finished items are kept, not re-run.
"""
from __future__ import annotations

import dataclasses
import json
import functools
import logging
import os
import sys
import time
import types

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from sdpo_jax.judge import ChartJudge, JudgeConfig

DEFAULT_COUNT = 200
log = logging.getLogger("sdpo_jax.evaluate")  # __name__ is __main__ under -m


@dataclasses.dataclass(frozen=True)
class Scoring:
    """What a benchmark evaluation adds: the benchmark, the judge (ChartMimic's High) and the
    CLIP folder (Design2Code's CLIP)."""

    benchmark: str | None = None
    judge: JudgeConfig | None = None
    clip_model: str | None = None

    @classmethod
    def from_flags(cls, benchmark: str | None, judge_url: str | None, judge_model: str | None,
                   judge_key_env: str, clip_model: str | None) -> "Scoring":
        if bool(judge_url) != bool(judge_model):
            raise ValueError("a judge needs both --judge-url and --judge-model")
        judge = JudgeConfig(url=judge_url, model=judge_model, api_key_env=judge_key_env) \
            if judge_url else None
        return cls(benchmark, judge, clip_model)

    def check(self) -> None:
        if self.judge is not None and self.benchmark != "chartmimic":
            raise ValueError("the judge gives ChartMimic's High column: use it with "
                             "--benchmark=chartmimic")
        if self.clip_model and self.benchmark != "design2code":
            raise ValueError("--clip-model gives Design2Code's CLIP column: use it with "
                             "--benchmark=design2code")
        if self.clip_model and not os.path.isdir(self.clip_model):
            raise FileNotFoundError(f"--clip-model={self.clip_model} is not a folder: give a "
                                    f"local Hugging Face CLIP folder (config.json, "
                                    f"model.safetensors, preprocessor_config.json)")

    def clip(self):
        """Design2Code's CLIP column (loads the model), or None without a CLIP folder."""
        from sdpo_jax.benchmark_scores import PageClip
        from sdpo_jax.clip_score import ClipScorer
        return PageClip(ClipScorer.from_folder(self.clip_model)) if self.clip_model else None


def evaluate(config, *, checkpoint: str | None, data: str | None, data_format: str | None,
             out: str, count: int | None, overrides: dict, candidate: str = "model",
             scoring: Scoring = Scoring()) -> dict:
    """Run the evaluation (see the module docstring); returns the summary."""
    from sdpo_jax import benchmark_scores
    from sdpo_jax.data import Source, load_tasks
    from sdpo_jax.evaluation import ItemStore, summarise, summary_table, write_summary
    from sdpo_jax.run_config import RunConfig

    scoring.check()
    rc = RunConfig.from_config(config)
    if checkpoint:
        rc = dataclasses.replace(rc, model=dataclasses.replace(rc.model, checkpoint=checkpoint))
    bench = benchmark_scores.benchmark(scoring.benchmark) if scoring.benchmark else None
    data, data_format = _source(data, data_format, bench)
    eval_config = dataclasses.replace(rc.eval, **{k: v for k, v in overrides.items()
                                                  if v is not None})
    if candidate == "reference" and (eval_config.with_feedback or eval_config.samples != 1):
        raise ValueError("--candidate=reference scores each reference once: drop "
                         "--with_feedback and --samples (they need a model)")
    count = count if count is not None else (None if bench else DEFAULT_COUNT)
    tasks = list(load_tasks(Source(data, data_format, 1.0))[:count])
    store = ItemStore(out, {
        "candidate": candidate, "checkpoint": rc.model.checkpoint if candidate == "model"
        else None, "data": data, "format": data_format, "benchmark": scoring.benchmark,
        "judge": scoring.judge and scoring.judge.model, "clip_model": scoring.clip_model,
        **(dataclasses.asdict(eval_config) if candidate == "model" else {})})
    todo = [t for t in tasks if not store.done(t, eval_config.samples)]
    log.info("%d of %d tasks already evaluated in %s; %d to go", len(tasks) - len(todo),
                 len(tasks), out, len(todo))
    if todo:
        _evaluate_items(rc, eval_config, tasks, todo, out, candidate, scoring, bench)
    rows = store.rows(tasks, eval_config.samples)
    summary = summarise(rows)
    markdown = summary_table(summary)
    if bench is not None:
        summary |= benchmark_scores.aggregate(bench, rows)
        label = "reference" if candidate == "reference" else rc.model.checkpoint or "model"
        markdown = (f"{benchmark_scores.paper_table(bench, summary, label)}\n\n"
                    f"{summary_table(summary)}")
    write_summary(out, summary, rows, markdown)
    return summary | {"table": markdown, "data": data}


def _source(data: str | None, data_format: str | None, bench) -> tuple[str, str]:
    """The data source and its format: as given, else the benchmark's, else synthetic."""
    from sdpo_jax.data import GENERATED
    data = data or (bench.default_data() if bench else None)
    if data is None:
        raise ValueError("--data is needed (a JSONL file or synthetic:<split>[:<count>]), or "
                         "--benchmark to read a benchmark's file of the data folder")
    data_format = data_format or (bench.data_format if bench else None) or (
        "synthetic_chart" if data.startswith(GENERATED) else None)
    if data_format is None:
        raise ValueError(f"--format is needed for {data}: one of the formats of "
                         f"envs.registry.FORMATS (e.g. chartmimic)")
    return data, data_format


def _evaluate_items(rc, eval_config, tasks, todo, out: str, candidate: str, scoring: Scoring,
                    bench) -> None:
    """Answer, judge and score `todo` (of `tasks`) a sampler call's worth at a time, writing
    each finished chunk's items before the next starts (what a resumed run keeps)."""
    from envs.pool import EnvPool
    from sdpo_jax.benchmark_scores import BenchmarkScorer
    from sdpo_jax.evaluation import EvalReport, judge_replies, reference_replies
    from sdpo_jax.targets import TargetImages

    judge = ChartJudge(scoring.judge) if scoring.judge else None
    clip = scoring.clip()
    scorer = BenchmarkScorer(bench, judge, clip) if bench else None
    try:
        with EnvPool(rc.env.num_workers, rc.env.domains, item_timeout_s=rc.env.timeout_s) as pool:
            targets = TargetImages(pool, rc.shows_targets or bench is not None)
            if candidate == "reference":
                def attempt(chunk):
                    return EvalReport(judge_replies(pool, chunk, reference_replies(chunk)), {})
            else:
                evaluator, model = _model_evaluator(rc, pool, eval_config)
                position = {t.task_id: i for i, t in enumerate(tasks)}

                def attempt(chunk):  # seeded by where the chunk starts in the source
                    return evaluator(model, chunk, targets(chunk),
                                     seed=rc.seed + position[chunk[0].task_id])
            needs_targets = candidate == "model" or judge is not None
            step = eval_config.prompts_per_call
            for start in range(0, len(todo), step):
                chunk = todo[start:start + step]
                report = attempt(chunk)
                if scorer is not None:
                    scorer(chunk, report.attempts,
                           targets(chunk) if needs_targets else [None] * len(chunk))
                report.write_items(out)
                log.info("evaluated %d of %d tasks", start + len(chunk), len(todo))
    finally:
        if clip is not None:
            clip.close()


def _model_evaluator(rc, pool, eval_config):
    """The policy of the run config and an Evaluator sampling it."""
    from models.sharding import make_mesh
    from sdpo_jax.evaluation import Evaluator
    from sdpo_jax.model_loading import build_model, build_processor
    from sdpo_jax.trainer import unsampleable_ids

    mesh = make_mesh(**dataclasses.asdict(rc.mesh))
    model_config, model = build_model(rc, mesh)
    processor = build_processor(rc, model_config)
    return Evaluator(processor, pool, eval_config, rc.context,
                     unsampleable_ids(model_config, processor.tokenizer), mesh), model


def _define_flags() -> types.SimpleNamespace:
    """The command line; defined only when this module runs as a program, so that importing it
    (to call `evaluate`) never clashes with another tool's flags in the same process."""
    defined = types.SimpleNamespace(
        config=config_flags.DEFINE_config_file("config", None, "ml_collections config file"),
        checkpoint=flags.DEFINE_string("checkpoint", None, "checkpoint folder of the policy"),
        data=flags.DEFINE_string("data", None, "data source: JSONL path or "
                                 "synthetic:<split>[:<n>] (default with --benchmark: its file in "
                                 "the data folder)"),
        format=flags.DEFINE_string("format", None, "the data's format (default: synthetic_chart "
                                   "for synthetic: sources, the benchmark's); see "
                                   "envs.registry.FORMATS"),
        out=flags.DEFINE_string("out", None, "output folder (an interrupted one is resumed)"),
        count=flags.DEFINE_integer("count", None, "tasks evaluated, the first ones of the source "
                                  "(default: 200; with --benchmark: all)"),
        samples=flags.DEFINE_integer("samples", None, "attempts per task (default: config.eval)"),
        temperature=flags.DEFINE_float("temperature", None, "sampling temperature (0: greedy)"),
        with_feedback=flags.DEFINE_bool("with_feedback", None, "also revise flawed attempts with "
                                       "their feedback and report the teacher uplift"),
        benchmark=flags.DEFINE_enum("benchmark", None, ["chartmimic", "design2code", "aeslides"],
                                   "score in this benchmark's columns"),
        candidate=flags.DEFINE_enum("candidate", "model", ["model", "reference"],
                                   "model: the checkpoint's replies; reference: each task's own "
                                   "reference program or page (the ceiling)"),
        judge_url=flags.DEFINE_string("judge-url", None, "ChartMimic High: the judge's "
                                     "OpenAI-compatible API base (.../v1)"),
        judge_model=flags.DEFINE_string("judge-model", None, "the judge's model name"),
        judge_key_env=flags.DEFINE_string("judge-key-env", "OPENAI_API_KEY", "environment variable "
                                         "holding the judge's API key (none sent if unset)"),
        clip_model=flags.DEFINE_string("clip-model", None, "Design2Code CLIP: a local Hugging Face "
                                      "CLIP folder (openai/clip-vit-base-patch32 as published)"))
    flags.mark_flags_as_required(["config", "out"])
    return defined


def main(argv, cli: types.SimpleNamespace) -> int:
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax is loud at INFO
    logging.getLogger("sdpo_jax").setLevel(logging.INFO)  # but our progress lines are wanted
    from models.qwen3_vl.config import ConfigError as ModelConfigError
    from sdpo_jax.data import DataError
    from sdpo_jax.run_config import ConfigError
    start = time.perf_counter()
    try:
        summary = evaluate(cli.config.value, checkpoint=cli.checkpoint.value,
                           data=cli.data.value, data_format=cli.format.value,
                           out=cli.out.value, count=cli.count.value,
                           overrides=dict(samples=cli.samples.value,
                                          temperature=cli.temperature.value,
                                          with_feedback=cli.with_feedback.value),
                           candidate=cli.candidate.value,
                           scoring=Scoring.from_flags(
                               cli.benchmark.value, cli.judge_url.value, cli.judge_model.value,
                               cli.judge_key_env.value, cli.clip_model.value))
    except (ConfigError, ModelConfigError, DataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.pop("table"))
    data = summary.pop("data")
    print(f"outputs in {os.path.abspath(cli.out.value)} ({time.perf_counter() - start:.0f} s)")
    print(json.dumps({"evaluate": data, "benchmark": cli.benchmark.value,
                      "candidate": cli.candidate.value, "checkpoint": cli.checkpoint.value,
                      **summary}))
    return 0


if __name__ == "__main__":
    app.run(functools.partial(main, cli=_define_flags()))
