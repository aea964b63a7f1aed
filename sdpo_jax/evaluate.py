"""Evaluate a policy on held-out tasks: sample, judge, and write what happened.

    python -m sdpo_jax.evaluate --config=configs/sft_toy.py --checkpoint=runs/sft_toy/model \
        --data=synthetic:test:200 --out=runs/sft_toy/test [--samples=1 --temperature=0] \
        [--with_feedback] [--config.key=value ...]

The config gives the architecture, tokenizer, env settings and the teacher context (for
--with_feedback); --checkpoint is a checkpoint folder (a run's exported workdir/model, a Flax
or a Hugging Face folder; default: the config's model.checkpoint). --data is a data source (a
JSONL file in --format, or synthetic:<split>[:<count>]); the first --count tasks are used.
Writes per attempt its program, render, defect overlay and feedback, plus summary.json and
summary.md (sdpo_jax.evaluation) in --out; prints the table and ends with one JSON line.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "checkpoint folder of the policy")
_DATA = flags.DEFINE_string("data", None, "data source: JSONL path or synthetic:<split>[:<n>]")
_FORMAT = flags.DEFINE_string("format", None, "the data's format (default: synthetic_chart for "
                              "synthetic: sources); see envs.registry.FORMATS")
_OUT = flags.DEFINE_string("out", None, "output folder")
_COUNT = flags.DEFINE_integer("count", 200, "tasks evaluated (the first ones of the source)")
_SAMPLES = flags.DEFINE_integer("samples", None, "attempts per task (default: config.eval)")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "sampling temperature (0: greedy)")
_WITH_FEEDBACK = flags.DEFINE_bool("with_feedback", None, "also revise flawed attempts with "
                                   "their feedback and report the teacher uplift")
flags.mark_flags_as_required(["config", "data", "out"])


def evaluate(config, *, checkpoint: str | None, data: str, data_format: str | None, out: str,
             count: int, overrides: dict) -> dict:
    """Run the evaluation (see the module docstring); returns the summary."""
    from envs.pool import EnvPool
    from models.sharding import make_mesh
    from sdpo_jax.data import GENERATED, Source, load_tasks
    from sdpo_jax.evaluation import Evaluator
    from sdpo_jax.model_loading import build_model, build_processor
    from sdpo_jax.run_config import RunConfig
    from sdpo_jax.targets import TargetImages
    from sdpo_jax.trainer import unsampleable_ids

    rc = RunConfig.from_config(config)
    if checkpoint:
        rc = dataclasses.replace(rc, model=dataclasses.replace(rc.model, checkpoint=checkpoint))
    data_format = data_format or ("synthetic_chart" if data.startswith(GENERATED) else None)
    if data_format is None:
        raise ValueError(f"--format is needed for {data}: one of the formats of "
                         f"envs.registry.FORMATS (e.g. chartmimic)")
    tasks = list(load_tasks(Source(data, data_format, 1.0))[:count])
    mesh = make_mesh(**dataclasses.asdict(rc.mesh))
    model_config, model = build_model(rc, mesh)
    processor = build_processor(rc, model_config)
    eval_config = dataclasses.replace(rc.eval, **{k: v for k, v in overrides.items()
                                                  if v is not None})
    with EnvPool(rc.env.num_workers, rc.env.domains, item_timeout_s=rc.env.timeout_s) as pool:
        evaluator = Evaluator(processor, pool, eval_config, rc.context,
                              unsampleable_ids(model_config, processor.tokenizer), mesh)
        report = evaluator(model, tasks, TargetImages(pool, rc.shows_targets)(tasks),
                           seed=rc.seed)
    report.write(out)
    return report.summary | {"table": report.table()}


def main(argv) -> int:
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    from models.qwen3_vl.config import ConfigError as ModelConfigError
    from sdpo_jax.data import DataError
    from sdpo_jax.run_config import ConfigError
    start = time.perf_counter()
    try:
        summary = evaluate(_CONFIG.value, checkpoint=_CHECKPOINT.value, data=_DATA.value,
                           data_format=_FORMAT.value, out=_OUT.value, count=_COUNT.value,
                           overrides=dict(samples=_SAMPLES.value, temperature=_TEMPERATURE.value,
                                          with_feedback=_WITH_FEEDBACK.value))
    except (ConfigError, ModelConfigError, DataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.pop("table"))
    print(f"outputs in {os.path.abspath(_OUT.value)} ({time.perf_counter() - start:.0f} s)")
    print(json.dumps({"evaluate": _DATA.value, "checkpoint": _CHECKPOINT.value, **summary}))
    return 0


if __name__ == "__main__":
    app.run(main)
