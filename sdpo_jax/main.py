"""Train a code-writing VLM with Visual-SDPO.

    python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny [--config.key=value ...]

Every host of a TPU pod runs this same command (launch/tpu_pod.sh); `jax.distributed` is
initialised when the environment says this is one process of several (TPU VM slices set it up,
or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID for manual multi-process runs).
The logic lives in sdpo_jax.trainer; this file only parses flags.
"""
from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file (configs/*.py)")
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and plots go")
flags.mark_flags_as_required(["config", "workdir"])


def maybe_initialize_distributed() -> None:
    """Join the multi-process runtime on pods (TPU metadata) or when JAX_* variables ask for it."""
    import jax

    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]))
    elif os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0 or \
            os.environ.get("CLOUD_TPU_TASK_ID") is not None:
        jax.distributed.initialize()


def main(argv) -> int:
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file it writes at INFO
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    maybe_initialize_distributed()
    from envs.pool import EnvSetupError
    from models.qwen3_vl.config import ConfigError as ModelConfigError
    from sdpo_jax.data import DataError
    from sdpo_jax.run_config import ConfigError
    from sdpo_jax.trainer import Trainer
    try:
        trainer = Trainer(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, ModelConfigError, DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        trainer.run()  # returns at once when the workdir already holds a finished run
    except EnvSetupError as err:
        print(f"error: {err}\nThe run stopped; its last checkpoint is kept in {_WORKDIR.value}: "
              f"run the same command again to resume once the envs work.", file=sys.stderr)
        return 2
    if trainer.is_main:
        print(summary(trainer.run_config, _WORKDIR.value))
    return 0


def summary(run_config, workdir: str) -> str:
    """What was trained, how it moved on the held-out tasks, and where the outputs are."""
    from sdpo_jax.metrics import read_metrics
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    rc = run_config
    lines = [f"done: {rc.mode} on {', '.join(s.path for s in rc.data.sources)}, model "
             f"{rc.model.checkpoint or rc.model.size}, {rc.train.num_steps} steps, final loss "
             f"{rows[-1]['loss/total']:.4f}"]
    evaluated = [r for r in rows if "eval/defect_free_rate" in r]
    if evaluated:
        first, last = evaluated[0], evaluated[-1]
        lines.append(f"held-out ({rc.eval.path}, {rc.eval.count} tasks): "
                     + ", ".join(f"{name} {first[f'eval/{name}']:.2f} -> {last[f'eval/{name}']:.2f}"
                                 for name in ("exec_rate", "defect_free_rate", "reward")))
    lines.append(f"outputs in {workdir}: model/ (the policy), checkpoints/, metrics.jsonl, tb/, "
                 f"plots.png" + (", eval/" if evaluated else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
